/**
 * A plain upload body, sent to the backend from the client's node:http stream to a node:http
 * client request, without web streams in between. Per GB it costs about half of passing the body
 * to fetch() as a web stream, which is what the reference proxy costs (bench/README.md). Bodies
 * that osp decodes (aws-chunked, form uploads) stay with fetch() (forward.ts).
 */
import { request as httpRequest, Agent, type IncomingMessage, type ClientRequest } from "node:http";
import { request as httpsRequest, Agent as HttpsAgent } from "node:https";
import { Readable } from "node:stream";
import type { BucketConfig } from "../config.ts";
import { S3Error, requestAborted, requestTimeout } from "../errors.ts";
import { paceMeter } from "./deadline.ts";
import { backendUnreachable, backendTimeout } from "./forward.ts";

/** The client's request body as node:http hands it over. */
export interface ClientBody {
  /** As a web stream, for the bodies osp reads itself; made on the first call. */
  stream(): ReadableStream<Uint8Array>;
  node: Readable;
  /** Sends "100 Continue" if the client waits for it: only once the request is authorized. */
  proceed(): void;
  /** Whether the body was piped upstream and not read to its end (the connection cannot go on). */
  unfinished: boolean;
  /** Bytes of it read so far, counted where they are read: a listener of its own would set it flowing. */
  received: number;
}

export interface PipedUpload {
  method: string;
  url: string;
  headers: Headers;
  tls: BucketConfig["tls"];
}

/**
 * An idle connection is closed by osp after 4 s, before the backend closes it (Apache's default
 * is 5 s): node:http's client does not retry a request on a kept-alive connection that the backend
 * closed meanwhile, and a streamed upload could not be replayed anyway.
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
 * Resolves with the backend's answer, as a web Response for the steps after it. The body must
 * keep the pace of `pace` while osp waits for it; the deadline for the backend's answer starts
 * once the body has been sent, so a long upload is not cut short. A body that fails (too slow,
 * client gone) destroys the upstream request, so the backend stores nothing.
 */
export function pipeUpload(up: PipedUpload, body: ClientBody, pace: { seconds: number; minRate: number }, bucket: string, clientSignal: AbortSignal, timeoutSeconds: number): Promise<Response> {
  const url = new URL(up.url);
  const headers: Record<string, string> = { host: url.host };
  up.headers.forEach((v, k) => {
    headers[k] = v;
  });
  const https = url.protocol === "https:";
  const upstream: ClientRequest = (https ? httpsRequest : httpRequest)(url, { method: up.method, headers, agent: https ? agentFor(up.tls) : plainAgent });
  const source = body.node;
  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    let ended = false;
    let timer: Timer | undefined;
    const finish = (e?: S3Error, res?: Response) => {
      if (settled) return;
      settled = true;
      meter.idle();
      clearTimeout(timer);
      source.off("data", onData).off("end", onEnd).off("close", onClose);
      clientSignal.removeEventListener("abort", onAbort);
      body.unfinished = !ended;
      if (!ended) source.pause();
      if (e) {
        upstream.destroy();
        reject(e);
      } else resolve(res!);
    };
    const meter = paceMeter(pace.seconds, pace.minRate, () => finish(requestTimeout()));
    const onData = (chunk: Buffer) => {
      meter.received(chunk.length);
      body.received += chunk.length;
      if (!upstream.write(chunk)) {
        source.pause();
        meter.idle();
      }
    };
    const onEnd = () => {
      ended = true;
      meter.idle();
      upstream.end();
      timer = setTimeout(() => finish(backendTimeout(bucket, timeoutSeconds)), timeoutSeconds * 1000);
    };
    const onClose = () => !ended && finish(requestAborted());
    const onAbort = () => finish(requestAborted());
    upstream.on("drain", () => {
      if (settled || ended) return;
      meter.waiting();
      source.resume();
    });
    upstream.on("response", (res: IncomingMessage) => {
      // answered before the whole body was sent (a refusal): that upstream connection is spent
      if (!ended) res.once("close", () => upstream.destroy());
      finish(undefined, webResponse(res, up.method));
    });
    upstream.on("error", (e) => finish(backendUnreachable(bucket, e)));
    clientSignal.addEventListener("abort", onAbort);
    source.on("data", onData).on("end", onEnd).on("close", onClose);
    // a client that goes away mid-body is seen by "close"; an "error" without a listener would throw
    source.on("error", () => {});
    body.proceed();
    meter.waiting();
    source.resume();
  });
}

function webResponse(res: IncomingMessage, method: string): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const status = res.statusCode!;
  const empty = method === "HEAD" || status === 204 || status === 304;
  if (empty) res.resume();
  return new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage, headers });
}
