/** The Hono app: the proxy pipeline behind node:http, with request ids, S3 XML errors and metrics. */
import { Hono } from "hono";
import type { HttpBindings } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { S3Error, errorResponse, internalError } from "../errors.ts";
import { newRequestId, parseRequest, type ParsedRequest } from "../pipeline/request.ts";
import { proxy, type Pipeline } from "../pipeline/proxy.ts";
import { withCors } from "../pipeline/cors.ts";
import { sendBody, StreamedResponse } from "../pipeline/resume.ts";
import type { ClientBody } from "../pipeline/upload.ts";
import { logAccess, logError } from "./log.ts";
import type { Metrics } from "./metrics.ts";

type Env = { Bindings: HttpBindings };

const awaitsContinue = (incoming: HttpBindings["incoming"]) => /^100-continue$/i.test(incoming.headers.expect ?? "");
const continued = new WeakSet<object>();
/** As node:http frames it: a length, or chunked transfer coding. */
const hasBody = (incoming: HttpBindings["incoming"]) =>
  incoming.headers["transfer-encoding"] !== undefined || (incoming.headers["content-length"] !== undefined && incoming.headers["content-length"] !== "0");

/**
 * The request body. For "Expect: 100-continue" the server does not answer 100 by itself (see
 * server.ts): it is sent when the body is first read or piped, which happens only once the request
 * has been authenticated and authorized, so a refused client never uploads.
 */
function clientBody(request: Request, env: HttpBindings): ClientBody {
  const proceed = () => {
    if (awaitsContinue(env.incoming) && !continued.has(env.incoming)) {
      continued.add(env.incoming);
      env.outgoing.writeContinue();
    }
  };
  const body: ClientBody = {
    node: env.incoming,
    proceed,
    unfinished: false,
    received: 0,
    stream() {
      const reader = request.body!.getReader();
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          proceed();
          const { done, value } = await reader.read();
          if (done) return controller.close();
          body.received += value.length;
          controller.enqueue(value);
        },
        cancel: (reason) => reader.cancel(reason),
      }, { highWaterMark: 0 });
    },
  };
  return body;
}

/** Aborted when the client goes away before its response is complete. */
function clientRequest(out: HttpBindings["outgoing"]): AbortController {
  const request = new AbortController();
  out.once("close", () => out.writableFinished || request.abort());
  return request;
}

/**
 * `current` gives the pipeline of the configuration generation in force; a reload swaps it.
 * `metrics` only when they are served: collecting them costs CPU per request (README).
 */
export function createApp(current: () => Pipeline, metrics?: Metrics): Hono<Env> {
  const app = new Hono<Env>();
  app.all("*", async (c) => {
    // read once: a request finishes on the generation it started with
    const pipeline = current();
    const incoming = c.env.incoming;
    const id = newRequestId();
    const started = performance.now();
    const measured = metrics?.begin(incoming, c.env.outgoing, pipeline.config.buckets);
    let req: ParsedRequest | undefined;
    let body: ClientBody | undefined;
    let res: Response;
    try {
      req = parseRequest({
        method: incoming.method ?? "GET", url: incoming.url ?? "/", rawHeaders: incoming.rawHeaders,
        clientAddress: incoming.socket.remoteAddress ?? "", scheme: (incoming.socket as { encrypted?: boolean }).encrypted ? "https" : "http",
      }, id, pipeline.config.server.domains);
      // reading the body builds the adapter's whole web Request (URL, headers): only where there is one
      body = req.method === "GET" || req.method === "HEAD" || !hasBody(incoming) ? undefined : clientBody(c.req.raw, c.env);
      res = await proxy(pipeline, req, body ?? null, clientRequest(c.env.outgoing));
    } catch (e) {
      const err = e instanceof S3Error ? e : internalError();
      if (!(e instanceof S3Error)) logError(id, e);
      res = errorResponse(err, id, req ? req.rawPath : "/", incoming.method ?? "GET");
    }
    if (req) res = withCors(res, pipeline.config, req);
    if (!res.headers.has("x-amz-request-id")) res.headers.set("x-amz-request-id", id);
    // refused before "100 Continue", or a body that stopped coming: the rest of the body is not read,
    // so this connection cannot carry another request
    if ((awaitsContinue(incoming) && !continued.has(incoming)) || body?.unfinished || res.headers.get("x-osp-error-code") === "RequestTimeout")
      res.headers.set("connection", "close");
    if (pipeline.config.server.accessLog) logAccess(id, req, incoming, res.status, performance.now() - started);
    measured?.done({ method: incoming.method ?? "GET", bucket: req?.bucket ?? "", operation: req?.operation ?? "Unknown", status: res.status, error: res.headers.get("x-osp-error-code") ?? undefined }, body);
    // osp's own short documents (errors, listings) have no length yet: the adapter reads them whole
    // and sends their Content-Length
    if (!(res instanceof StreamedResponse) && (!res.body || incoming.method === "HEAD" || !res.headers.has("content-length"))) return res;
    await writeResponse(res, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });
  return app;
}

/**
 * A response with a body and its length, written to node:http: one that is in memory in one call;
 * one from the backend piped as it comes (resume.ts).
 */
async function writeResponse(res: Response, out: HttpBindings["outgoing"]): Promise<void> {
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
  const body = await res.bytes().catch(() => undefined);
  if (!body) return void out.destroy();
  out.writeHead(res.status, res.statusText, headers);
  out.end(body);
}
