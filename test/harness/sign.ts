/**
 * SigV4 header auth for a raw request target, for requests no SDK would send (dot segments,
 * Expect with a bad key, hand-built aws-chunked bodies). Built from the canonical forms of
 * src/sigv4.ts, whose vectors are tested on their own.
 */
import { canonicalHeaders, canonicalQuery, canonicalUri, headerMap, parseQuery, signature } from "../../src/sigv4/sigv4.ts";

export interface RawSigning {
  base: string;
  region: string;
  accessKey: string;
  secret: string;
  when?: Date;
}

/** The headers of a signed request: `headers` plus host, x-amz-date, x-amz-content-sha256 and authorization. */
export async function signRawRequest(method: string, target: string, headers: Record<string, string>, s: RawSigning): Promise<Record<string, string>> {
  const datetime = (s.when ?? new Date()).toISOString().replace(/[:-]|\.\d{3}/g, "");
  const all: Record<string, string> = { ...headers, host: new URL(s.base).host, "x-amz-date": datetime, "x-amz-content-sha256": headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD" };
  const signed = Object.keys(all).map((h) => h.toLowerCase()).sort();
  const q = target.indexOf("?");
  const sig = await signature({
    method,
    encodedPath: canonicalUri(q < 0 ? target : target.slice(0, q)),
    encodedSearch: canonicalQuery(parseQuery(q < 0 ? "" : target.slice(q + 1))),
    signedHeaders: signed,
    canonicalHeaders: canonicalHeaders(headerMap(Object.entries(all).flat()), signed),
    payloadHash: all["x-amz-content-sha256"]!,
  }, { datetime, region: s.region, service: "s3" }, s.secret);
  all.authorization = `AWS4-HMAC-SHA256 Credential=${s.accessKey}/${datetime.slice(0, 8)}/${s.region}/s3/aws4_request, SignedHeaders=${signed.join(";")}, Signature=${sig}`;
  return all;
}
