/**
 * forward: send the re-signed request to the backend and wait for its answer, within a deadline.
 *
 * Three clients, each where it costs least (bench/README.md, "Which client asks the backend"):
 * - osp's own HTTP/1.1 client on Bun's sockets (src/http1/) for every request without a body: all
 *   downloads, HEAD, listings, deletes. Its answer's body is read from the socket only as fast as
 *   the client takes it.
 * - node:http's client for a plain body piped from the client (upload.ts), without web streams.
 * - fetch() for the bodies osp decodes itself (aws-chunked, form uploads), which are web streams.
 */
import { request as httpRequest, Agent, type ClientRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, Agent as HttpsAgent } from "node:https";
import type { BucketConfig } from "../config.ts";
import { S3Error, requestAborted } from "../errors.ts";
import { ProtocolError, request as http1Request } from "../http1/client.ts";
import { pumpBody, type PipedBody, type Pump } from "./upload.ts";
import { webFlow, type Flow } from "./resume.ts";

export interface UpstreamRequest {
  method: string;
  url: string;
  headers: Headers;
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
const ignore = () => {};
const cutShort = (bucket: string) => new S3Error(502, "BadGateway", `The backend of bucket ${bucket} ended its answer early`);

/** Certificate verification failures as BoringSSL names them, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED. */
const UNTRUSTED_CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/** An idle connection is closed by osp after 4 s, before the backend closes it (Apache's default is 5 s). */
const POOL = { keepAlive: true, timeout: 4000 };
const plainAgent = new Agent(POOL);
const tlsAgents = new WeakMap<BucketConfig["tls"], HttpsAgent>();
const agentFor = (tls: BucketConfig["tls"]) => {
  let agent = tlsAgents.get(tls);
  if (!agent) tlsAgents.set(tls, (agent = new HttpsAgent({ ...POOL, ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized })));
  return agent;
};

/**
 * By node:http's client, with a body piped from the client. The deadline covers the wait for the
 * answer's headers, from the moment the whole request has been sent: a long upload is not cut
 * short, but a backend that does not answer is. `signal` is the client's request: when it is
 * aborted, so is the backend's.
 */
export function forward(up: UpstreamRequest, piped: PipedBody, bucket: string, signal: AbortSignal, timeoutSeconds: number): Promise<BackendAnswer> {
  if (signal.aborted) return Promise.reject(requestAborted());
  const url = new URL(up.url);
  const headers = headerRecord(up.headers, { host: url.host });
  const https = url.protocol === "https:";
  const upstream: ClientRequest = (https ? httpsRequest : httpRequest)(url, { method: up.method, headers, agent: https ? agentFor(up.tls) : plainAgent });
  return new Promise<BackendAnswer>((resolve, reject) => {
    let settled = false;
    let timer: Timer | undefined;
    let pump: Pump | undefined;
    const finish = (e?: S3Error, answer?: BackendAnswer | Promise<BackendAnswer>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      pump?.stop();
      if (e) {
        upstream.destroy();
        reject(e);
      } else resolve(answer!);
    };
    const onAbort = () => finish(requestAborted());
    const sent = () => (timer = setTimeout(() => finish(backendTimeout(bucket, timeoutSeconds)), timeoutSeconds * 1000));
    upstream.on("response", (res: IncomingMessage) => {
      // answered before the whole body was sent (a refusal): that upstream connection is spent
      if (pump && !pump.ended) res.once("close", () => upstream.destroy());
      finish(undefined, nodeAnswer(res, up.method, bucket));
    });
    upstream.on("error", (e: Error) => finish(backendUnreachable(bucket, e)));
    signal.addEventListener("abort", onAbort);
    pump = pumpBody(piped, upstream, sent, finish);
  });
}

function nodeAnswer(res: IncomingMessage, method: string, bucket: string): BackendAnswer {
  // a cut body is seen by its "close" without "end"; an "error" without a listener would throw
  res.on("error", ignore);
  if (noBody(method, res.statusCode!)) res.resume();
  return flowAnswer(method, res.statusCode!, res.statusMessage ?? "", res.rawHeaders, res, bucket);
}

/**
 * By osp's HTTP/1.1 client (src/http1/), without a body. `request` is the client's request: aborted
 * when the client goes away, and here when the backend does not answer within the deadline, which
 * ends the request too.
 */
export async function forwardBodiless(up: UpstreamRequest, bucket: string, request: AbortController, timeoutSeconds: number): Promise<BackendAnswer> {
  const authority = up.url.indexOf("//") + 2;
  const path = up.url.indexOf("/", authority);
  const target = up.url.slice(path);
  // upstreamUrl's paths and queries are S3-encoded: nothing in them can end the request line
  if (!/^\/[!-~]*$/.test(target)) throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
  let head = `${up.method} ${target} HTTP/1.1\r\nhost: ${up.url.slice(authority, path)}\r\n`;
  // Headers hold no CR, LF or NUL in a value: it refuses them
  up.headers.forEach((value, name) => {
    head += `${name}: ${value}\r\n`;
  });
  // a PUT or POST without a body says so: S3 wants a length where a body could be
  if (!BODYLESS.has(up.method) && !up.headers.has("content-length")) head += "content-length: 0\r\n";
  const answer = await within(request, bucket, timeoutSeconds, () =>
    http1Request(up.url.slice(0, path), up.tls, up.method, Buffer.from(head + "\r\n", "latin1"), request.signal));
  const { status, statusText, rawHeaders } = answer.head;
  return flowAnswer(up.method, status, statusText, rawHeaders, answer.body, bucket);
}

const BODYLESS = new Set(["GET", "HEAD", "DELETE", "OPTIONS"]);

/** An answer whose body is a Flow: its end-to-end headers, and its body unless it has none. */
function flowAnswer(method: string, status: number, statusText: string, raw: string[], flow: Flow, bucket: string): BackendAnswer {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.append(raw[i]!, raw[i + 1]!);
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

/**
 * By fetch(), with a body osp reads itself. `request` is the client's request:
 * aborted when the client goes away, and here when the backend does not answer, which ends the
 * request too.
 */
export async function forwardFetch(up: UpstreamRequest, body: ReadableStream<Uint8Array> | null, bucket: string, request: AbortController, timeoutSeconds: number): Promise<BackendAnswer> {
  const res = await within(request, bucket, timeoutSeconds, () =>
    fetch(up.url, {
      method: up.method,
      headers: up.headers,
      body,
      signal: request.signal,
      redirect: "manual",
      decompress: false,
      duplex: "half", // a streamed request body
      tls: up.tls,
    }));
  // a copy (fetch's are immutable), made natively: a third of the cost of appending one by one
  const headers = new Headers(res.headers);
  for (const name of HOP_BY_HOP) headers.delete(name);
  // res.body is touched only to stream it: once made, it is also the slower way to read a small body
  const answer: AnswerBody = {
    bytes: () => res.bytes().catch(() => Promise.reject(cutShort(bucket))),
    stream: () => webFlow(res.body ?? new ReadableStream({ start: (c) => c.close() })),
    discard: () => void res.body?.cancel().catch(ignore),
  };
  return { status: res.status, statusText: res.statusText, headers, body: noBody(up.method, res.status) ? null : answer };
}

/**
 * `ask` of the backend, given `seconds` to answer: then `request` is aborted, which ends the
 * client's request too. Its failures are S3 errors.
 */
async function within<T>(request: AbortController, bucket: string, seconds: number, ask: () => Promise<T>): Promise<T> {
  if (request.signal.aborted) throw requestAborted();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    request.abort();
  }, seconds * 1000);
  try {
    return await ask();
  } catch (e) {
    if (timedOut) throw backendTimeout(bucket, seconds);
    if (request.signal.aborted) throw requestAborted();
    if (e instanceof ProtocolError) throw new S3Error(502, "BadGateway", `The backend of bucket ${bucket} sent an answer that is not HTTP/1.1 as osp reads it: ${e.message}`);
    throw backendUnreachable(bucket, e);
  } finally {
    clearTimeout(timer);
  }
}

/** Headers as node:http takes them, added to `into`. */
export function headerRecord(headers: Headers, into: Record<string, string> = {}): Record<string, string> {
  headers.forEach((value, name) => {
    into[name] = value;
  });
  return into;
}

export const backendTimeout = (bucket: string, seconds: number) =>
  new S3Error(504, "GatewayTimeout", `The backend of bucket ${bucket} did not answer within ${seconds} s`);

export function backendUnreachable(bucket: string, e: unknown): S3Error {
  const reason = e instanceof Error ? ((e as { code?: string }).code ?? e.name) : "error";
  if (UNTRUSTED_CERTIFICATE.test(reason))
    return new S3Error(502, "BadGateway", `The backend of bucket ${bucket} could not be reached: its TLS certificate is not trusted (${reason}); a private CA goes in ca_file`);
  return new S3Error(502, "BadGateway", `The backend of bucket ${bucket} could not be reached (${reason})`);
}
