/** SigV4 helpers for the benchmark driver (seeding, fixed-signature autocannon runs, curl transfers). */
import { AwsV4Signer } from "aws4fetch";

export interface Creds {
  accessKey: string;
  secretKey: string;
  region?: string;
}

export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Headers (authorization, x-amz-date, x-amz-content-sha256) that sign `method url` for S3. */
export async function signHeaders(method: string, url: string, creds: Creds, payloadHash = EMPTY_SHA256): Promise<Record<string, string>> {
  const signed = await new AwsV4Signer({
    method,
    url,
    headers: { "x-amz-content-sha256": payloadHash },
    accessKeyId: creds.accessKey,
    secretAccessKey: creds.secretKey,
    service: "s3",
    region: creds.region ?? "us-east-1",
  }).sign();
  const out: Record<string, string> = {};
  signed.headers.forEach((v, k) => {
    if (k !== "host") out[k] = v;
  });
  return out;
}

/** A signed fetch; the body, if any, is sent as UNSIGNED-PAYLOAD. */
export async function s3(method: string, url: string, creds: Creds, body?: RequestInit["body"]): Promise<Response> {
  const headers = await signHeaders(method, url, creds, body ? "UNSIGNED-PAYLOAD" : EMPTY_SHA256);
  const res = await fetch(url, { method, headers, body: body ?? null, duplex: "half" } as RequestInit);
  return res;
}

/** s3() that throws unless the answer is 2xx; returns the body text. */
export async function s3ok(method: string, url: string, creds: Creds, body?: RequestInit["body"]): Promise<string> {
  const res = await s3(method, url, creds, body);
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return text;
}
