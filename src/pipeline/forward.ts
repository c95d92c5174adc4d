/** forward: send the re-signed request to the backend, streaming the body, within a deadline. */
import type { BucketConfig } from "../config.ts";
import { S3Error, requestAborted } from "../errors.ts";

export interface UpstreamRequest {
  method: string;
  url: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
  tls: BucketConfig["tls"];
}

/** Certificate verification failures as BoringSSL names them, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED. */
const UNTRUSTED_CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/**
 * The deadline covers the wait for response headers only: a long download or upload is not
 * cut short, but a backend that does not answer is. `request` is the client's request: aborted
 * when the client goes away, and here when the backend does not answer, which ends the request
 * too (one controller per request costs less than one per fetch joined by AbortSignal.any).
 */
export async function forward(up: UpstreamRequest, bucket: string, request: AbortController, timeoutSeconds: number): Promise<Response> {
  if (request.signal.aborted) throw requestAborted();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    request.abort();
  }, timeoutSeconds * 1000);
  try {
    return await fetch(up.url, {
      method: up.method,
      headers: up.headers,
      body: up.body,
      signal: request.signal,
      redirect: "manual",
      decompress: false,
      duplex: "half", // a streamed request body
      tls: up.tls,
    });
  } catch (e) {
    if (timedOut) throw backendTimeout(bucket, timeoutSeconds);
    if (request.signal.aborted) throw requestAborted();
    throw backendUnreachable(bucket, e);
  } finally {
    clearTimeout(timer);
  }
}

export const backendTimeout = (bucket: string, seconds: number) =>
  new S3Error(504, "GatewayTimeout", `The backend of bucket ${bucket} did not answer within ${seconds} s`);

export function backendUnreachable(bucket: string, e: unknown): S3Error {
  const reason = e instanceof Error ? ((e as { code?: string }).code ?? e.name) : "error";
  if (UNTRUSTED_CERTIFICATE.test(reason))
    return new S3Error(502, "BadGateway", `The backend of bucket ${bucket} could not be reached: its TLS certificate is not trusted (${reason}); a private CA goes in ca_file`);
  return new S3Error(502, "BadGateway", `The backend of bucket ${bucket} could not be reached (${reason})`);
}
