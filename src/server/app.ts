/** The Hono app: the proxy pipeline behind node:http, with request ids, S3 XML errors and metrics. */
import { Hono, type Context } from "hono";
import type { HttpBindings } from "@hono/node-server";
import { prometheus } from "@hono/prometheus";
import { Registry } from "prom-client";
import { S3Error, errorResponse, internalError } from "../errors.ts";
import { newRequestId, parseRequest, type ParsedRequest } from "../pipeline/request.ts";
import { proxy, type Pipeline } from "../pipeline/proxy.ts";
import { withCors } from "../pipeline/cors.ts";
import { knownBucket } from "../pipeline/route.ts";
import { logAccess, logError } from "./log.ts";

type Env = { Bindings: HttpBindings; Variables: { bucket: string; operation: string } };

export const registry = new Registry();

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

/** `current` gives the pipeline of the configuration generation in force; a reload swaps it. */
export function createApp(current: () => Pipeline): Hono<Env> {
  const app = new Hono<Env>();
  // metrics cost ~7% of a small request's CPU (bench/README.md): only paid when they are served
  if (current().config.server.metricsPort !== undefined) {
    const customLabels = { bucket: (c: Context<Env>) => c.get("bucket") ?? "", operation: (c: Context<Env>) => c.get("operation") ?? "" };
    const { registerMetrics } = prometheus({
      registry,
      prefix: "osp_",
      collectDefaultMetrics: true,
      metricOptions: { requestDuration: { customLabels }, requestsTotal: { customLabels } },
    });
    app.use(registerMetrics);
  }
  app.all("*", async (c) => {
    // read once: a request finishes on the generation it started with
    const pipeline = current();
    const incoming = c.env.incoming;
    const id = newRequestId();
    const started = performance.now();
    let req: ParsedRequest | undefined;
    let res: Response;
    try {
      req = parseRequest({
        method: incoming.method ?? "GET", url: incoming.url ?? "/", rawHeaders: incoming.rawHeaders,
        clientAddress: incoming.socket.remoteAddress ?? "", scheme: (incoming.socket as { encrypted?: boolean }).encrypted ? "https" : "http",
      }, id, pipeline.config.server.domains);
      // metrics labels: only configured bucket names, so their number stays bounded
      c.set("bucket", pipeline.config.buckets.has(req.bucket) ? req.bucket : "");
      c.set("operation", req.operation);
      // reading the body builds the adapter's whole web Request (URL, headers): only where there is one
      const body = req.method === "GET" || req.method === "HEAD" ? null : bodyOf(c.req.raw, c.env);
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
    return res;
  });
  return app;
}
