/** Helpers shared by the integration tests: clients bound to the harness' osp and backends, and raw HTTP. */
import { S3Client } from "@aws-sdk/client-s3";
import { request } from "node:http";
import { testEnv, type Backend } from "../harness/env.ts";

export const env = testEnv();

export function sdkClient(endpoint = env.ospEndpoint, accessKey = env.accessKey, secretKey = env.secretKey): S3Client {
  return new S3Client({
    endpoint, region: env.region, forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  });
}

export const backendClient = (b: Backend) => sdkClient(b.endpoint, b.accessKey, b.secretKey);

export const uniquePrefix = (name: string) => `${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}/`;

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

export const sha256 = (b: Uint8Array | ArrayBuffer) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP request whose target is sent byte for byte (fetch() would normalise it). */
export function rawRequest(base: string, method: string, target: string, headers: Record<string, string>, body?: Uint8Array | string): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path: target, headers }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: data }));
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

export const xmlCode = (body: string) => /<Code>([^<]*)<\/Code>/.exec(body)?.[1];

/**
 * SigV4 header auth for a raw target, for requests no SDK would send (dot segments, Expect with a
 * bad key). Built from the canonical forms of src/sigv4.ts, whose vectors are tested on their own.
 */
export async function signRaw(method: string, base: string, target: string, headers: Record<string, string>, accessKey: string, secret: string, when = new Date()) {
  const { canonicalHeaders, canonicalQuery, canonicalUri, headerMap, parseQuery, signature } = await import("../../src/sigv4.ts");
  const datetime = when.toISOString().replace(/[:-]|\.\d{3}/g, "");
  const all: Record<string, string> = { ...headers, host: new URL(base).host, "x-amz-date": datetime, "x-amz-content-sha256": headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD" };
  const signed = Object.keys(all).map((h) => h.toLowerCase()).sort();
  const q = target.indexOf("?");
  const sig = await signature({
    method,
    encodedPath: canonicalUri(q < 0 ? target : target.slice(0, q)),
    encodedSearch: canonicalQuery(parseQuery(q < 0 ? "" : target.slice(q + 1))),
    signedHeaders: signed,
    canonicalHeaders: canonicalHeaders(headerMap(Object.entries(all).flat()), signed),
    payloadHash: all["x-amz-content-sha256"]!,
  }, { datetime, region: env.region, service: "s3" }, secret);
  all.authorization = `AWS4-HMAC-SHA256 Credential=${accessKey}/${datetime.slice(0, 8)}/${env.region}/s3/aws4_request, SignedHeaders=${signed.join(";")}, Signature=${sig}`;
  return all;
}
