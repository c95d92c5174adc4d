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
import type { BackendAnswer } from "./forward.ts";
import { resumableExtent, StreamedResponse, type Refetch } from "./resume.ts";
import type { Release } from "../state/slots.ts";

/** The backend slot a request holds, and for a GetObject how to ask for the rest of its body. */
export interface Slot {
  release: Release;
  refetch?: Refetch;
}

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

/**
 * A body the server pipes from the backend is a StreamedResponse, which gives the slot back when it
 * ends; any other answer is complete here, and the slot is given back at once.
 */
export async function respond(upstream: BackendAnswer, req: ParsedRequest, bucket: BucketConfig, slot: Slot): Promise<Response> {
  const res = await passOn(upstream, req, bucket, slot).catch((e) => {
    slot.release();
    return Promise.reject(e);
  });
  if (!(res instanceof StreamedResponse)) slot.release();
  return res;
}

async function passOn(upstream: BackendAnswer, req: ParsedRequest, bucket: BucketConfig, { release, refetch }: Slot): Promise<Response> {
  const { headers } = upstream;
  const init = { status: upstream.status, statusText: upstream.statusText, headers };
  if (!upstream.body) return new Response(null, init);
  const decode = bucket.backendBucket !== bucket.name && namesBucket(upstream, req) ? decoder(headers.get("content-encoding")) : undefined;
  if (decode) {
    const host = req.headers.get("host")?.[0] ?? "localhost";
    const location = `${req.scheme}://${host}/${req.virtualHosted ? "" : bucket.name + "/"}${uriEncode(req.key, true)}`;
    const bytes = await upstream.body.bytes();
    let text: string;
    try {
      text = decode(bytes).toString("utf8");
    } catch {
      throw new S3Error(502, "BadGateway", `The backend of bucket ${bucket.name} sent a document that could not be decoded`);
    }
    const xml = renameBucketInXml(text, bucket.backendBucket, bucket.name, location);
    // the rewritten document goes out as plain text with its own length
    headers.set("content-length", String(Buffer.byteLength(xml)));
    headers.delete("content-encoding");
    return new Response(xml, init);
  }
  // a small body is read whole and sent in one write with its length: cheaper than passing it on
  // chunk by chunk
  const length = headers.get("content-length");
  if (length !== null && Number(length) <= SMALL_BODY) return new WholeResponse(await upstream.body.bytes(), init);
  // only a streamed body can be cut, so only its extent is read
  const extent = refetch ? resumableExtent(upstream.status, headers) : undefined;
  return new StreamedResponse({ source: upstream.body.stream(), release, resume: refetch && extent ? { extent, refetch } : undefined }, init);
}

/** The largest body read whole and written in one call. */
export const SMALL_BODY = 64 * 1024;

/**
 * A backend's small body, read whole: the server writes it in one call, without the web stream a
 * Response body would make of it.
 */
export class WholeResponse extends Response {
  constructor(readonly data: Uint8Array, init: ResponseInit) {
    super(null, init);
  }
}
const limits = { maxOutputLength: 4 * MAX_REWRITTEN_BYTES };

/**
 * How to read a document in the encoding the backend chose (clients ask for gzip, and MinIO
 * gzips larger listings); undefined for an encoding osp cannot read, which then passes unchanged.
 */
function decoder(contentEncoding: string | null): ((body: Uint8Array) => Buffer) | undefined {
  switch ((contentEncoding ?? "identity").trim().toLowerCase()) {
    case "identity": case "": return (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    case "gzip": case "x-gzip": return (b) => gunzipSync(b, limits);
    case "deflate": return (b) => inflateSync(b, limits);
    case "br": return (b) => brotliDecompressSync(b, limits);
  }
}

function namesBucket(upstream: BackendAnswer, req: ParsedRequest): boolean {
  const type = upstream.headers.get("content-type") ?? "";
  const length = Number(upstream.headers.get("content-length") ?? 0);
  return /xml/.test(type) && length <= MAX_REWRITTEN_BYTES && (upstream.status >= 400 || NAMING_BUCKET.has(req.operation));
}
