/**
 * respond: the backend's answer passed on as it came (status, headers, length, streamed body).
 * One exception: where a frontend bucket has another name on its backend, the small XML
 * documents that name the bucket (listings, multipart results, errors) are rewritten to say the
 * name the client used.
 */
import type { BucketConfig } from "../config.ts";
import type { ParsedRequest } from "./request.ts";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { uriEncode } from "../sigv4/sigv4.ts";
import { S3Error } from "../errors.ts";

const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "te", "proxy-connection"];

/** Operations whose XML result names the bucket. Object bodies are never touched. */
const NAMING_BUCKET = new Set([
  "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads", "ListParts",
  "CreateMultipartUpload", "CompleteMultipartUpload",
]);
const MAX_REWRITTEN_BYTES = 16 * 1024 * 1024;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Replaces the backend bucket name by the frontend one in an S3 XML document. */
export function renameBucketInXml(xml: string, from: string, to: string, location: string): string {
  const name = escapeRegExp(from);
  return xml
    .replace(new RegExp(`<(Name|Bucket|BucketName)>${name}</\\1>`, "g"), `<$1>${to}</$1>`)
    .replace(new RegExp(`<Resource>/${name}(/|<)`, "g"), `<Resource>/${to}$1`)
    .replace(/<Location>[^<]*<\/Location>/g, `<Location>${location}</Location>`);
}

export async function respond(upstream: Response, req: ParsedRequest, bucket: BucketConfig): Promise<Response> {
  const headers = new Headers(upstream.headers);
  for (const h of HOP_BY_HOP) headers.delete(h);
  const init = { status: upstream.status, statusText: upstream.statusText, headers };
  if (req.method === "HEAD" || upstream.status === 204 || upstream.status === 304) {
    upstream.body?.cancel().catch(() => {});
    return new Response(null, init);
  }
  const decode = bucket.backendBucket !== bucket.name && namesBucket(upstream, req) ? decoder(upstream.headers.get("content-encoding")) : undefined;
  if (decode) {
    const host = req.headers.get("host")?.[0] ?? "localhost";
    const location = `${req.scheme}://${host}/${req.virtualHosted ? "" : bucket.name + "/"}${uriEncode(req.key, true)}`;
    let text: string;
    try {
      text = decode(await upstream.bytes()).toString("utf8");
    } catch {
      throw new S3Error(502, "BadGateway", `The backend of bucket ${bucket.name} sent a document that could not be decoded`);
    }
    const xml = renameBucketInXml(text, bucket.backendBucket, bucket.name, location);
    // the rewritten document goes out as plain text with its own length
    headers.set("content-length", String(Buffer.byteLength(xml)));
    headers.delete("content-encoding");
    return new Response(xml, init);
  }
  // a small body is read whole and sent in one write with its length: cheaper than streaming it
  // chunk by chunk through web and node streams, and bounded (Bun runs at most 256 fetches at once)
  const length = upstream.headers.get("content-length");
  if (length !== null && Number(length) <= SMALL_BODY) return new Response(await upstream.bytes(), init);
  return new Response(upstream.body, init);
}

export const SMALL_BODY = 64 * 1024;
const limits = { maxOutputLength: 4 * MAX_REWRITTEN_BYTES };

/**
 * How to read a document in the encoding the backend chose (clients ask for gzip, and MinIO
 * gzips larger listings); undefined for an encoding osp cannot read, which then passes unchanged.
 */
function decoder(contentEncoding: string | null): ((body: Uint8Array) => Buffer) | undefined {
  switch ((contentEncoding ?? "identity").trim().toLowerCase()) {
    case "identity": case "": return (b) => Buffer.from(b);
    case "gzip": case "x-gzip": return (b) => gunzipSync(b, limits);
    case "deflate": return (b) => inflateSync(b, limits);
    case "br": return (b) => brotliDecompressSync(b, limits);
  }
}

function namesBucket(upstream: Response, req: ParsedRequest): boolean {
  const type = upstream.headers.get("content-type") ?? "";
  const length = Number(upstream.headers.get("content-length") ?? 0);
  return /xml/.test(type) && length <= MAX_REWRITTEN_BYTES && (upstream.status >= 400 || NAMING_BUCKET.has(req.operation));
}
