/** ListBuckets (GET /): answered by osp itself, listing only the buckets the caller may use. */
import { xmlEscape } from "../errors.ts";

export function listBucketsXml(names: string[], owner: string, created: Date): string {
  const date = created.toISOString();
  const buckets = names.map((n) => `<Bucket><Name>${xmlEscape(n)}</Name><CreationDate>${date}</CreationDate></Bucket>`).join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Owner><ID>${xmlEscape(owner)}</ID><DisplayName>${xmlEscape(owner)}</DisplayName></Owner>` +
    `<Buckets>${buckets}</Buckets></ListAllMyBucketsResult>`
  );
}
