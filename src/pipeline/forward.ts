/**
 * forward: send the re-signed request to the backend and wait for its answer, within a deadline.
 *
 * By osp's own HTTP/1.1 client on Bun's sockets (src/http1/; README.md, "Which client asks the
 * backend"): requests without a body, uploads piped from the client (aws-chunked ones decoded on
 * the way), and form uploads' files as osp reads them (upload.ts). Bodies go both ways without
 * web streams in between, each side read only as fast as the other takes it.
 */
import type { BucketConfig } from "../config.ts";
import { S3Error, requestAborted } from "../errors.ts";
import { ProtocolError, request as http1Request, type BodySink } from "../http1/client.ts";
import { pumpBody, pumpStream, type PipedBody, type Pump } from "./upload.ts";
import type { Flow } from "./resume.ts";

/** A backend request's headers: lower-case names, one value each. */
export type BackendHeaders = Map<string, string>;

export interface UpstreamRequest {
  method: string;
  url: string;
  headers: BackendHeaders;
  tls: BucketConfig["tls"];
}

/** The backend's answer. Its headers are the end-to-end ones (RFC 9110 7.6.1), osp's to change. */
export interface BackendAnswer {
  status: number;
  statusText: string;
  headers: Headers;
  /** null for HEAD, 204 and 304. Whoever takes the answer reads its body or discards it. */
  body: AnswerBody | null;
}

export interface AnswerBody {
  /** The whole body, for the small documents osp reads itself. */
  bytes(): Promise<Uint8Array>;
  /** The body as it comes, to pass on. */
  stream(): Flow;
  /** Not wanted: its connection is let go. */
  discard(): void;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "te", "proxy-connection"]);
const noBody = (method: string, status: number) => method === "HEAD" || status === 204 || status === 304;
const cutShort = (bucket: string) => new S3Error(502, "BadGateway", `The backend of bucket ${bucket} ended its answer early`);

/** Certificate verification failures as BoringSSL names them, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED. */
const UNTRUSTED_CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/**
 * By osp's HTTP/1.1 client (src/http1/): without a body, with one piped from the client, or with
 * a form upload's file (a web stream with its Content-Length set). The deadline covers the wait for the
 * answer's head, from the moment the whole request has been sent: a long upload is not cut short,
 * but a backend that does not answer is. `request` is the client's request: aborted when the client
 * goes away, and here when the deadline passes or the body fails (too slow, not verified), which
 * ends the request too.
 */
export async function forward(up: UpstreamRequest, body: PipedBody | ReadableStream<Uint8Array> | null, bucket: string, request: AbortController, timeoutSeconds: number): Promise<BackendAnswer> {
  const authority = up.url.indexOf("//") + 2;
  const path = up.url.indexOf("/", authority);
  const target = up.url.slice(path);
  // upstreamUrl's paths and queries are S3-encoded: nothing in them can end the request line
  if (!/^\/[!-~]*$/.test(target)) throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
  let head = `${up.method} ${target} HTTP/1.1\r\nhost: ${up.url.slice(authority, path)}\r\n`;
  // every value is one HTTP/1.1 allows (isFieldValue, src/http1/response.ts)
  for (const [name, value] of up.headers) head += `${name}: ${value}\r\n`;
  // a PUT or POST without a body says so: S3 wants a length where a body could be (a body has its own)
  if (!BODYLESS.has(up.method) && !up.headers.has("content-length")) head += "content-length: 0\r\n";
  if (request.signal.aborted) throw requestAborted();
  let pump: Pump | undefined;
  let failure: unknown;
  let timedOut = false;
  let timer: Timer | undefined;
  // the deadline: a backend that has not answered `timeoutSeconds` after the whole request was sent
  const sent = () => {
    timer = setTimeout(() => {
      timedOut = true;
      request.abort();
    }, timeoutSeconds * 1000);
  };
  const fail = (e: unknown) => {
    failure = e;
    request.abort();
  };
  const upload = body ? (sink: BodySink) => {
    pump = body instanceof ReadableStream ? pumpStream(body, sink, sent, fail) : pumpBody(body, sink, sent, fail);
  } : undefined;
  if (!body) sent();
  try {
    const answer = await http1Request(up.url.slice(0, path), up.tls, up.method, Buffer.from(head + "\r\n", "latin1"), request.signal, upload);
    const { status, statusText, rawHeaders } = answer.head;
    return flowAnswer(up.method, status, statusText, rawHeaders, answer.body, bucket);
  } catch (e) {
    if (failure) throw failure;
    if (timedOut) throw backendTimeout(bucket, timeoutSeconds);
    if (request.signal.aborted) throw requestAborted();
    if (e instanceof ProtocolError) throw new S3Error(502, "BadGateway", `The backend of bucket ${bucket} sent an answer that is not HTTP/1.1 as osp reads it: ${e.message}`);
    throw backendUnreachable(bucket, e);
  } finally {
    clearTimeout(timer);
    // answered (a refusal may come before the whole body) or failed: the client is read no further
    pump?.();
  }
}

const BODYLESS = new Set(["GET", "HEAD", "DELETE", "OPTIONS"]);

/**
 * An answer whose body is a Flow: its end-to-end headers, and its body unless it has none. The
 * backend's own CORS headers are left out: osp answers CORS by its rules alone (cors.ts).
 */
function flowAnswer(method: string, status: number, statusText: string, raw: string[], flow: Flow, bucket: string): BackendAnswer {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && !name.startsWith("access-control-")) headers.append(name, raw[i + 1]!);
  }
  const body: AnswerBody = {
    bytes: () =>
      new Promise((resolve, reject) => {
        const parts: Uint8Array[] = [];
        let ended = false;
        flow.on("data", (chunk: Uint8Array) => parts.push(chunk));
        flow.once("end", () => {
          ended = true;
          resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
        });
        flow.once("close", () => ended || reject(cutShort(bucket)));
        flow.resume();
      }),
    stream: () => flow,
    discard: () => void flow.destroy(),
  };
  return { status, statusText, headers, body: noBody(method, status) ? null : body };
}

export const backendTimeout = (bucket: string, seconds: number) =>
  new S3Error(504, "GatewayTimeout", `The backend of bucket ${bucket} did not answer within ${seconds} s`);

export function backendUnreachable(bucket: string, e: unknown): S3Error {
  const reason = e instanceof Error ? ((e as { code?: string }).code ?? e.name) : "error";
  if (UNTRUSTED_CERTIFICATE.test(reason))
    return new S3Error(502, "BadGateway", `The backend of bucket ${bucket} could not be reached: its TLS certificate is not trusted (${reason}); a private CA goes in ca_file`);
  return new S3Error(502, "BadGateway", `The backend of bucket ${bucket} could not be reached (${reason})`);
}
