/**
 * forward: send the re-signed request to the backend and wait for its answer, within a deadline.
 *
 * Two clients, each where it costs least (bench/README.md, "Which client asks the backend"):
 * - node:http's client for a plain body piped from the client (upload.ts), and for a GET whose
 *   Range asks for a large part of an object. Its answer's body is a node stream, piped to the
 *   client without web streams: per byte and in memory about what the reference proxy costs.
 * - fetch() for everything else: small answers, and bodies osp decodes itself (aws-chunked, form
 *   uploads). fetch() does its I/O on a thread of its own, so a small request costs less.
 */
import { request as httpRequest, Agent, type ClientRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, Agent as HttpsAgent } from "node:https";
import type { BucketConfig } from "../config.ts";
import { S3Error, requestAborted } from "../errors.ts";
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

/** A GET with a Range of at least this many bytes (or open-ended) goes by node:http's client. */
export const LARGE_RANGE = 1024 * 1024;

/** Whether the client's request asks for a large part of an object by its Range (pure). */
export function asksLargeRange(method: string, range: string | undefined): boolean {
  if (method !== "GET" || range === undefined) return false;
  const r = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
  return !!r && (r[2] === "" || Number(r[2]) - Number(r[1]) + 1 >= LARGE_RANGE);
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "te", "proxy-connection"]);
const noBody = (method: string, status: number) => method === "HEAD" || status === 204 || status === 304;
const ignore = () => {};
const cutShort = (bucket: string) => new S3Error(502, "BadGateway", `The backend of bucket ${bucket} ended its answer early`);

/** Certificate verification failures as BoringSSL names them, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED. */
const UNTRUSTED_CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/**
 * An idle connection is closed by osp after 4 s, before the backend closes it (Apache's default
 * is 5 s). A request without a body that meets a connection the backend closed anyway is sent
 * again once; a streamed upload could not be.
 */
const POOL = { keepAlive: true, timeout: 4000 };
const plainAgent = new Agent(POOL);
const tlsAgents = new WeakMap<BucketConfig["tls"], HttpsAgent>();
const agentFor = (tls: BucketConfig["tls"]) => {
  let agent = tlsAgents.get(tls);
  if (!agent) tlsAgents.set(tls, (agent = new HttpsAgent({ ...POOL, ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized })));
  return agent;
};

/**
 * By node:http's client, without a body or with one piped from the client. The deadline covers the
 * wait for the answer's headers, from the moment the whole request has been sent: a long upload or
 * download is not cut short, but a backend that does not answer is. `signal` is the client's
 * request: when it is aborted, so is the backend's.
 */
export function forward(up: UpstreamRequest, piped: PipedBody | null, bucket: string, signal: AbortSignal, timeoutSeconds: number, retried = false): Promise<BackendAnswer> {
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
    upstream.on("error", (e: Error & { code?: string }) => {
      if (!settled && !piped && !retried && upstream.reusedSocket && e.code === "ECONNRESET") {
        upstream.destroy();
        return finish(undefined, forward(up, null, bucket, signal, timeoutSeconds, true));
      }
      finish(backendUnreachable(bucket, e));
    });
    signal.addEventListener("abort", onAbort);
    if (piped) pump = pumpBody(piped, upstream, sent, finish);
    else {
      upstream.end();
      sent();
    }
  });
}

function nodeAnswer(res: IncomingMessage, method: string, bucket: string): BackendAnswer {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.append(raw[i]!, raw[i + 1]!);
  const status = res.statusCode!;
  // a cut body is seen by its "close" without "end"; an "error" without a listener would throw
  res.on("error", ignore);
  if (noBody(method, status)) res.resume();
  const body: AnswerBody = {
    bytes: () =>
      new Promise((resolve, reject) => {
        const parts: Buffer[] = [];
        let ended = false;
        res.on("data", (chunk: Buffer) => parts.push(chunk));
        res.once("end", () => {
          ended = true;
          resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
        });
        res.once("close", () => ended || reject(cutShort(bucket)));
      }),
    stream: () => res,
    discard: () => res.destroy(),
  };
  return { status, statusText: res.statusMessage ?? "", headers, body: noBody(method, status) ? null : body };
}

/**
 * By fetch(), without a body or with one osp reads itself. `request` is the client's request:
 * aborted when the client goes away, and here when the backend does not answer, which ends the
 * request too.
 */
export async function forwardFetch(up: UpstreamRequest, body: ReadableStream<Uint8Array> | null, bucket: string, request: AbortController, timeoutSeconds: number): Promise<BackendAnswer> {
  if (request.signal.aborted) throw requestAborted();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    request.abort();
  }, timeoutSeconds * 1000);
  let res: Response;
  try {
    res = await fetch(up.url, {
      method: up.method,
      headers: up.headers,
      body,
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
