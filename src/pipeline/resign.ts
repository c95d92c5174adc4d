/** re-sign: the client's request as the backend must see it, signed with the bucket's backend keys. */

import type { BackendCredentials } from "../hooks.ts";
import { Signer, type HeaderMap } from "../sigv4/sigv4.ts";

/**
 * Headers that belong to the client's hop or to its signature. Everything else (SSE and SSE-C,
 * storage class, ACLs and grants, object lock, checksums, metadata, tagging, conditionals,
 * copy-source conditionals, Content-MD5, ...) reaches the backend unchanged.
 */
const NOT_FORWARDED = new Set([
  "authorization", "host", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
  "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
  "expect", // Bun's fetch forwards it without waiting for 100 Continue
]);

/** The client's headers as they go upstream; an override of null removes a header. */
export function forwardedHeaders(headers: HeaderMap, overrides: Record<string, string | null>): Headers {
  const connectionTokens = new Set((headers.get("connection") ?? []).flatMap((v) => v.split(",").map((t) => t.trim().toLowerCase())));
  const out = new Headers();
  for (const [name, values] of headers) {
    if (NOT_FORWARDED.has(name) || connectionTokens.has(name) || name in overrides) continue;
    for (const v of values) out.append(name, v);
  }
  for (const [name, v] of Object.entries(overrides)) if (v !== null) out.set(name, v);
  return out;
}

export async function resign(method: string, url: string, headers: Headers, creds: BackendCredentials, region: string): Promise<Headers> {
  const signed = await new Signer({
    method, url, headers,
    accessKeyId: creds.accessKey,
    secretAccessKey: creds.secretKey,
    sessionToken: creds.sessionToken,
    service: "s3",
    region,
  }).sign();
  return signed.headers;
}
