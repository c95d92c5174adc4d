/** re-sign: the client's request as the backend must see it, signed with the bucket's backend keys or carrying its IAM bearer token. */

import type { BucketConfig } from "../config.ts";
import type { UpstreamAuth } from "../state/credentials.ts";
import { canonicalHeaders, signature, type HeaderMap } from "../sigv4/sigv4.ts";
import type { BackendHeaders } from "./forward.ts";

/** Headers of the client's hop or of its own signature: never forwarded, signed or not. */
const NOT_FORWARDED = new Set([
  "authorization", "host", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
  "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
  "expect", // Bun's fetch forwards it without waiting for 100 Continue
]);

/**
 * Headers forwarded although the client did not sign them. osp's signature vouches for
 * everything the backend receives, so any other header reaches it only when the client signed
 * it (an unsigned x-amz-* header is refused outright, in authenticate.ts). These are harmless by
 * definition, and S3 itself accepts them unsigned (browsers and curl send them with presigned URLs):
 */
const FORWARDED_UNSIGNED = new Set([
  // framing: the body is checked against it (osp sets it itself for aws-chunked bodies)
  "content-length",
  // they describe the body, which the holder of an upload URL chooses anyway
  "content-type", "content-encoding", "content-language", "content-disposition", "cache-control", "expires",
  // they can only make the backend refuse, or narrow what it returns: integrity, conditions, ranges
  "content-md5", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "range",
  // negotiation, CORS and diagnostics: they shape the answer, never what is read or written
  "accept", "accept-encoding", "user-agent", "origin", "access-control-request-method", "access-control-request-headers",
]);

/**
 * The client's headers as they go upstream: those it signed and the harmless ones above, minus
 * its hop and signature; an override of null removes a header.
 */
export function forwardedHeaders(headers: HeaderMap, signed: readonly string[], overrides: Record<string, string | null>): BackendHeaders {
  const connection = headers.get("connection");
  const connectionTokens = connection && new Set(connection.flatMap((v) => v.split(",").map((t) => t.trim().toLowerCase())));
  const out: BackendHeaders = new Map();
  for (const [name, values] of headers) {
    if (NOT_FORWARDED.has(name) || connectionTokens?.has(name) || name in overrides) continue;
    if (!FORWARDED_UNSIGNED.has(name) && !signed.includes(name)) continue;
    // repeated headers as one, the way HTTP allows and fetch's Headers did
    out.set(name, values.length === 1 ? values[0]! : values.join(", "));
  }
  for (const name in overrides) {
    const v = overrides[name];
    if (v != null) out.set(name, v);
  }
  return out;
}

/** Headers left out of the backend signature, as aws4fetch leaves them: a transport may set or change them. */
const UNSIGNED = new Set(["authorization", "content-type", "content-length", "user-agent", "presigned-expires", "expect", "x-amzn-trace-id", "range", "connection"]);

/** x-amz-date of now; formatted once a second. */
let amzSecond = -1;
let amzDatetime = "";
function amzDate(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== amzSecond) {
    amzSecond = second;
    amzDatetime = new Date(second * 1000).toISOString().replace(/[:-]|\.\d{3}/g, "");
  }
  return amzDatetime;
}

/**
 * Signs with HMAC keys, or, for IBM COS with an IAM API key, carries the bearer token instead
 * (with the bucket's service instance, which bucket creation needs, unless the client signed its own).
 * `url` is upstreamUrl's: its path and query are already S3-encoded and sorted, so they are signed
 * as they are, without aws4fetch's constructor parsing the URL and copying the headers again.
 */
export async function resign(method: string, url: string, headers: BackendHeaders, auth: UpstreamAuth, bucket: Pick<BucketConfig, "region" | "serviceInstanceId">): Promise<BackendHeaders> {
  if (auth.kind === "bearer") {
    headers.set("authorization", `Bearer ${auth.token}`);
    if (bucket.serviceInstanceId && !headers.has("ibm-service-instance-id")) headers.set("ibm-service-instance-id", bucket.serviceInstanceId);
    return headers;
  }
  const datetime = amzDate(Date.now());
  headers.set("x-amz-date", datetime);
  if (!headers.has("x-amz-content-sha256")) headers.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
  if (auth.sessionToken) headers.set("x-amz-security-token", auth.sessionToken);
  const authority = url.indexOf("//") + 2;
  const pathStart = url.indexOf("/", authority);
  const query = url.indexOf("?", pathStart);
  const values: HeaderMap = new Map([["host", [url.slice(authority, pathStart)]]]);
  for (const [name, value] of headers) if (!UNSIGNED.has(name)) values.set(name, [value]);
  const signedHeaders = [...values.keys()].sort();
  const scope = { datetime, region: bucket.region, service: "s3" };
  const sig = await signature({
    method,
    encodedPath: query < 0 ? url.slice(pathStart) : url.slice(pathStart, query),
    encodedSearch: query < 0 ? "" : url.slice(query + 1),
    signedHeaders,
    canonicalHeaders: canonicalHeaders(values, signedHeaders),
    payloadHash: headers.get("x-amz-content-sha256")!,
  }, scope, auth.secretKey);
  headers.set("authorization", `AWS4-HMAC-SHA256 Credential=${auth.accessKey}/${datetime.slice(0, 8)}/${bucket.region}/s3/aws4_request, SignedHeaders=${signedHeaders.join(";")}, Signature=${sig}`);
  return headers;
}
