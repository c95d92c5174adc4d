/** The Hono app: the proxy pipeline behind node:http, with request ids, S3 XML errors and metrics. */
import { Hono } from "hono";
import type { HttpBindings } from "@hono/node-server";
import { S3Error, errorResponse, internalError } from "../errors.ts";
import { newRequestId, parseRequest, type ParsedRequest } from "../pipeline/request.ts";
import { proxy, type Pipeline } from "../pipeline/proxy.ts";
import { withCors } from "../pipeline/cors.ts";
import { knownBucket } from "../pipeline/route.ts";
import { logAccess, logError } from "./log.ts";
import type { Metrics } from "./metrics.ts";

type Env = { Bindings: HttpBindings };

const awaitsContinue = (incoming: HttpBindings["incoming"]) => /^100-continue$/i.test(incoming.headers.expect ?? "");
const continued = new WeakSet<object>();

/**
 * The request body. For "Expect: 100-continue" the server does not answer 100 by itself
 * (see server.ts): it is sent when the body is first read, which happens only once the request
 * has been authenticated and authorized, so a refused client never uploads.
 */
function bodyOf(request: Request, env: HttpBindings): ReadableStream<Uint8Array> | null {
  const body = request.body;
  if (!body || !awaitsContinue(env.incoming)) return body;
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!continued.has(env.incoming)) {
        continued.add(env.incoming);
        env.outgoing.writeContinue();
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
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
    let res: Response;
    try {
      req = parseRequest({
        method: incoming.method ?? "GET", url: incoming.url ?? "/", rawHeaders: incoming.rawHeaders,
        clientAddress: incoming.socket.remoteAddress ?? "", scheme: (incoming.socket as { encrypted?: boolean }).encrypted ? "https" : "http",
      }, id, pipeline.config.server.domains);
      // reading the body builds the adapter's whole web Request (URL, headers): only where there is one
      const body = req.method === "GET" || req.method === "HEAD" ? null : bodyOf(c.req.raw, c.env);
      if (body) measured?.body();
      res = await proxy(pipeline, req, body, c.req.raw.signal);
    } catch (e) {
      const err = e instanceof S3Error ? e : internalError();
      if (!(e instanceof S3Error)) logError(id, e);
      res = errorResponse(err, id, req ? req.rawPath : "/", incoming.method ?? "GET");
    }
    if (req) res = withCors(res, knownBucket(pipeline.config, req.bucket), req);
    if (!res.headers.has("x-amz-request-id")) res.headers.set("x-amz-request-id", id);
    // refused before "100 Continue", or a body that stopped coming: the rest of the body is not read,
    // so this connection cannot carry another request
    if ((awaitsContinue(incoming) && !continued.has(incoming)) || res.headers.get("x-osp-error-code") === "RequestTimeout")
      res.headers.set("connection", "close");
    if (pipeline.config.server.accessLog) logAccess(id, req, incoming, res.status, performance.now() - started);
    measured?.done({ method: incoming.method ?? "GET", bucket: req?.bucket ?? "", operation: req?.operation ?? "Unknown", status: res.status, error: res.headers.get("x-osp-error-code") ?? undefined });
    return res;
  });
  return app;
}
