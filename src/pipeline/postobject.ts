/**
 * POST Object: a browser form upload (multipart/form-data on a bucket URL). Its fields are read,
 * its policy's signature and conditions checked (postpolicy.ts), the key authorized as
 * PutObject, and its file streamed to the backend as a PUT signed with the backend's keys. A
 * violated condition is found before anything is sent upstream; a malformed end of the body stops
 * the upload short of its length (formdata.ts), so the backend writes nothing either way.
 */
import { S3Error, xmlEscape } from "../errors.ts";
import type { Pipeline } from "./proxy.ts";
import type { ParsedRequest } from "./request.ts";
import { requireAllowed } from "./authorize.ts";
import { upstreamAuth } from "../state/credentials.ts";
import { bucketFor, upstreamUrl } from "./route.ts";
import { resign } from "./resign.ts";
import { forward, type BackendHeaders } from "./forward.ts";
import { respond } from "./respond.ts";
import { header, uriEncode } from "../sigv4/sigv4.ts";
import { bodyDeadline } from "./deadline.ts";
import { closingLength, fileStream, formBoundary, malformedForm, readFormHead } from "./formdata.ts";
import { checkConditions, parsePolicy, verifyPolicySignature } from "./postpolicy.ts";

export const isPostObject = (req: ParsedRequest) =>
  req.operation === "PostObject" && req.key === "" && /^multipart\/form-data\s*;/i.test(header(req.headers, "content-type") ?? "");

/**
 * Form fields that become headers of the PUT under their own name: those that describe the stored
 * object. Only these: another x-amz-* header (a copy source, say) would make the PUT do something
 * that was not authorized as PutObject.
 */
const OBJECT_HEADER = /^(content-type|cache-control|content-disposition|content-encoding|content-language|expires|x-amz-meta-.+|x-amz-storage-class|x-amz-website-redirect-location|x-amz-server-side-encryption(-.+)?|x-amz-object-lock-(mode|retain-until-date|legal-hold)|x-amz-checksum-[a-z0-9]+|x-amz-checksum-algorithm|x-amz-grant-[a-z-]+|x-amz-expected-bucket-owner)$/;
/** The form's own signature fields: they authenticate the form, not the object. */
const SIGNATURE_FIELDS = new Set(["x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature", "x-amz-security-token"]);

/** A field value as a header's bytes (UTF-8); control characters cannot be sent. */
function headerValue(name: string, value: string): string {
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new S3Error(400, "InvalidArgument", `The form field ${name} holds a control character`);
  return Buffer.from(value, "utf8").toString("latin1");
}

const XML_UNESCAPES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const xmlText = (s: string) => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => XML_UNESCAPES[e]!);

/** The tagging field's XML <Tagging> document as an x-amz-tagging header (a URL-encoded query). */
export function taggingHeader(xml: string): string {
  const tags = [...xml.matchAll(/<Tag>\s*<Key>([^<]*)<\/Key>\s*<Value>([^<]*)<\/Value>\s*<\/Tag>/g)];
  if (!/^\s*<Tagging[\s>]/.test(xml) || tags.length === 0 && /<Tag>/.test(xml))
    throw new S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema");
  return tags.map(([, k, v]) => `${uriEncode(xmlText(k!), false)}=${uriEncode(xmlText(v!), false)}`).join("&");
}

/** The headers of the object as the form describes it. */
export function objectHeaders(fields: Map<string, string>, fileType: string | undefined): BackendHeaders {
  const h: BackendHeaders = new Map();
  if (fileType) h.set("content-type", headerValue("file", fileType));
  for (const [name, value] of fields) {
    if (OBJECT_HEADER.test(name)) {
      if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new S3Error(400, "InvalidArgument", `The form field ${name} is not a valid header name`);
      h.set(name, headerValue(name, value));
    } else if (name === "acl") h.set("x-amz-acl", headerValue(name, value));
    else if (name === "tagging") h.set("x-amz-tagging", taggingHeader(value));
    else if (name.startsWith("x-amz-") && !SIGNATURE_FIELDS.has(name))
      throw new S3Error(400, "InvalidArgument", `The form field ${name} is not supported in a POST upload`);
  }
  return h;
}

/** What S3 answers a successful POST with: a redirect, 201 with a PostResponse document, 200 or (by default) 204. */
export function postAnswer(fields: Map<string, string>, location: string, bucket: string, key: string, upstream: Headers): Response {
  const etag = upstream.get("etag") ?? "";
  const headers: Record<string, string> = { etag, location };
  const version = upstream.get("x-amz-version-id");
  if (version) headers["x-amz-version-id"] = version;
  const redirect = fields.get("success_action_redirect") ?? fields.get("redirect");
  if (redirect && URL.canParse(redirect)) {
    const url = new URL(redirect);
    for (const [k, v] of [["bucket", bucket], ["key", key], ["etag", etag]] as const) url.searchParams.append(k, v);
    return new Response(null, { status: 303, headers: { ...headers, location: url.href } });
  }
  const status = fields.get("success_action_status");
  if (status === "201") {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Location>${xmlEscape(location)}</Location>` +
      `<Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag></PostResponse>`;
    return new Response(xml, { status: 201, headers: { ...headers, "content-type": "application/xml" } });
  }
  return new Response(null, { status: status === "200" ? 200 : 204, headers });
}

export async function postObject(p: Pipeline, req: ParsedRequest, body: ReadableStream<Uint8Array> | null, request: AbortController): Promise<Response> {
  const boundary = formBoundary(header(req.headers, "content-type")!);
  if (!boundary) throw malformedForm("its Content-Type names no boundary");
  const total = header(req.headers, "content-length");
  if (total === undefined || !/^\d{1,15}$/.test(total)) throw new S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
  if (!body) throw malformedForm("it is empty");
  const { bodyTimeout, minBodyRate, upstreamTimeout } = p.config.server;
  const guarded = bodyDeadline(body, bodyTimeout, minBodyRate);
  const reader = guarded.body.getReader();
  const { head, first } = await readFormHead(reader, boundary);
  const fields = head.fields;
  const accessKey = await verifyPolicySignature(fields, p.lookupSecret, p.config.server.sigv2);
  const conditions = parsePolicy(fields.get("policy")!, Date.now());
  const bucket = bucketFor(p.config, req.bucket);

  const keyField = fields.get("key");
  if (!keyField) throw new S3Error(400, "InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.");
  const key = keyField.replaceAll("${filename}", head.filename);
  const length = Number(total) - head.headLength - closingLength(boundary);
  if (length < 0) throw malformedForm("it is shorter than its Content-Length says");
  checkConditions(conditions, new Map([...fields, ["bucket", req.bucket], ["key", key]]), length);
  await requireAllowed(p.authorize, accessKey, req, bucket, "PutObject", key);

  const auth = await upstreamAuth(await p.credentials(accessKey, bucket), p.tokens);
  const url = upstreamUrl(bucket, key, []);
  const headers = objectHeaders(fields, head.fileType);
  headers.set("content-length", String(length));
  headers.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
  let malformed: S3Error | undefined;
  const failure = () => malformed ?? guarded.failure();
  const file = fileStream(first, reader, length, boundary, (e) => (malformed = e));
  // an empty file would be complete upstream before the body's end is checked: check it first
  if (length === 0) await new Response(file).arrayBuffer().catch(() => {});
  if (failure()) throw failure();
  const signed = await resign("PUT", url, headers, auth, bucket);
  const release = await p.backendSlot(bucket.endpoint.origin, request.signal);
  const upstream = await forward({ method: "PUT", url, headers: signed, tls: bucket.tls }, length === 0 ? null : file, bucket.name, request, upstreamTimeout)
    .catch((e) => {
      release();
      return Promise.reject(failure() ?? e);
    });
  if (upstream.status < 300 || failure()) {
    release();
    upstream.body?.discard();
    if (failure()) throw failure();
    const location = `${req.scheme}://${header(req.headers, "host")}/${bucket.name}/${uriEncode(key, true)}`;
    return postAnswer(fields, location, bucket.name, key, upstream.headers);
  }
  // the backend's error document holds the slot until it has been passed on
  return respond(upstream, req, bucket, { release });
}
