/**
 * The data path's request handler: the proxy pipeline behind node:http, with request ids, S3 XML
 * errors and metrics. A plain node:http handler rather than a Hono app behind @hono/node-server:
 * the S3 port has one route, and the adapter's web Request and Response per request cost 22-28 µs
 * of CPU on a small GET (bench/README.md, "Fifth round"). The pipeline still speaks Web Responses.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { S3Error, errorResponse, internalError } from "../errors.ts";
import { newRequestId, parseRequest, type ParsedRequest } from "../pipeline/request.ts";
import { proxy, type Pipeline } from "../pipeline/proxy.ts";
import { withCors } from "../pipeline/cors.ts";
import { WholeResponse } from "../pipeline/respond.ts";
import { sendBody, StreamedResponse } from "../pipeline/resume.ts";
import type { ClientBody } from "../pipeline/upload.ts";
import { header, type HeaderMap } from "../sigv4/sigv4.ts";
import { logAccess, logError } from "./log.ts";
import type { Metrics } from "./metrics.ts";

export type RequestHandler = (incoming: IncomingMessage, outgoing: ServerResponse) => void;

// both read the headers as parsed by osp (request.ts): node's `headers` object is built on first
// use, at a cost per request
const awaitsContinue = (expect: string | undefined) => expect !== undefined && /^100-continue$/i.test(expect);
/** As node:http frames it: a length, or chunked transfer coding. */
const hasBody = (headers: HeaderMap) => headers.has("transfer-encoding") || (headers.has("content-length") && headers.get("content-length")![0] !== "0");

/**
 * The request body. For "Expect: 100-continue" the server does not answer 100 by itself (see
 * server.ts): it is sent when the body is first read or piped, which happens only once the request
 * has been authenticated and authorized, so a refused client never uploads.
 */
function clientBody(incoming: IncomingMessage, outgoing: ServerResponse, expect: string | undefined): ClientBody {
  let continued = !awaitsContinue(expect);
  const body: ClientBody = {
    node: incoming,
    proceed() {
      if (continued) return;
      continued = true;
      outgoing.writeContinue();
    },
    get continued() {
      return continued;
    },
    unfinished: false,
    received: 0,
    stream: () => webStream(body),
  };
  return body;
}

/**
 * The body as a web stream of the chunks node:http hands over, read only when the stream is read.
 * Readable.toWeb would copy every chunk: 13 % of the CPU of an upload read this way (bench/README.md).
 */
function webStream(body: ClientBody): ReadableStream<Uint8Array> {
  const incoming = body.node;
  let controller: ReadableStreamDefaultController<Uint8Array>;
  const onData = (chunk: Buffer) => {
    body.received += chunk.length;
    controller.enqueue(chunk);
    if (controller.desiredSize! <= 0) incoming.pause();
  };
  const onEnd = () => {
    detach();
    controller.close();
  };
  const onError = (e: Error) => {
    detach();
    controller.error(e);
  };
  const onClose = () => onError(new Error("the client closed the connection before the end of its body"));
  const detach = () => void incoming.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      // paused first: a "data" listener would set a body flowing that nobody reads yet
      incoming.pause();
      incoming.on("data", onData).once("end", onEnd).once("error", onError).once("close", onClose);
    },
    pull() {
      body.proceed();
      incoming.resume();
    },
    // not wanted any more (refused): the rest is read and dropped, so that the client, still
    // sending, gets to read the answer and its connection can go on
    cancel() {
      detach();
      incoming.resume();
    },
  }, { highWaterMark: 0 });
}

/** Aborted when the client goes away before its response is complete. */
function clientRequest(out: ServerResponse): AbortController {
  const request = new AbortController();
  out.once("close", () => out.writableFinished || request.abort());
  return request;
}

/**
 * `current` gives the pipeline of the configuration generation in force; a reload swaps it.
 * `metrics` only when they are served: collecting them costs CPU per request (README).
 */
export function createHandler(current: () => Pipeline, metrics?: Metrics): RequestHandler {
  // read once: a request finishes on the generation it started with
  return (incoming, outgoing) => void handle(current(), incoming, outgoing, metrics);
}

async function handle(pipeline: Pipeline, incoming: IncomingMessage, outgoing: ServerResponse, metrics: Metrics | undefined): Promise<void> {
  const id = newRequestId();
  const started = performance.now();
  const method = incoming.method ?? "GET";
  const measured = metrics?.begin(incoming, outgoing, pipeline.config.buckets);
  let req: ParsedRequest | undefined;
  let body: ClientBody | undefined;
  let expect: string | undefined;
  let res: Response;
  try {
    req = parseRequest({
      method, url: incoming.url ?? "/", rawHeaders: incoming.rawHeaders,
      clientAddress: incoming.socket.remoteAddress ?? "", scheme: (incoming.socket as { encrypted?: boolean }).encrypted ? "https" : "http",
    }, id, pipeline.config.server.domains);
    expect = header(req.headers, "expect");
    body = req.method === "GET" || req.method === "HEAD" || !hasBody(req.headers) ? undefined : clientBody(incoming, outgoing, expect);
    res = await proxy(pipeline, req, body ?? null, clientRequest(outgoing));
  } catch (e) {
    const err = e instanceof S3Error ? e : internalError();
    if (!(e instanceof S3Error)) logError(id, e);
    res = errorResponse(err, id, req ? req.rawPath : "/", method);
  }
  if (req) res = withCors(res, pipeline.config, req);
  if (!res.headers.has("x-amz-request-id")) res.headers.set("x-amz-request-id", id);
  // refused before "100 Continue", or a body that stopped coming: the rest of the body is not read,
  // so this connection cannot carry another request
  const error = res.headers.get("x-osp-error-code") ?? undefined;
  const refusedBeforeContinue = body ? !body.continued : awaitsContinue(req ? expect : incoming.headers.expect);
  if (refusedBeforeContinue || body?.unfinished || error === "RequestTimeout")
    res.headers.set("connection", "close");
  if (pipeline.config.server.accessLog) logAccess(id, req, incoming, res.status, performance.now() - started);
  measured?.done({ method, bucket: req?.bucket ?? "", operation: req?.operation ?? "Unknown", status: res.status, error }, body);
  try {
    await writeResponse(res, method, outgoing);
  } catch (e) {
    logError(id, e);
    outgoing.destroy();
  }
}

/**
 * A response written to node:http: a backend body piped as it comes (resume.ts), or read whole
 * (respond.ts); osp's own short documents (errors, listings) in one call with their length.
 */
async function writeResponse(res: Response, method: string, out: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  res.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const cookies = res.headers.getSetCookie();
  if (cookies.length) headers["set-cookie"] = cookies;
  if (res instanceof StreamedResponse) {
    out.writeHead(res.status, res.statusText, headers);
    return sendBody(res.backend, out);
  }
  if (res instanceof WholeResponse) {
    out.writeHead(res.status, res.statusText, headers);
    return void out.end(res.data);
  }
  // HEAD's length is the object's, as the backend gave it
  const body = res.body && method !== "HEAD" ? await res.bytes() : undefined;
  if (body) headers["content-length"] = String(body.byteLength);
  else if (res.body) void res.body.cancel();
  out.writeHead(res.status, res.statusText || undefined, headers);
  out.end(body);
}
