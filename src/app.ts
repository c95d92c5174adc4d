/** The Hono app: the proxy pipeline behind node:http, with request ids, S3 XML errors and metrics. */
import { Hono } from "hono";
import type { HttpBindings } from "@hono/node-server";
import { prometheus } from "@hono/prometheus";
import { Registry } from "prom-client";
import { S3Error, errorResponse, internalError } from "./errors.ts";
import { newRequestId, parseRequest, type ParsedRequest } from "./request.ts";
import { proxy, type Pipeline } from "./proxy.ts";
import { logAccess, logError } from "./log.ts";

type Env = { Bindings: HttpBindings; Variables: { bucket: string; operation: string } };

export const registry = new Registry();

export function createApp(pipeline: Pipeline): Hono<Env> {
  const app = new Hono<Env>();
  const { registerMetrics } = prometheus({
    registry,
    prefix: "osp_",
    collectDefaultMetrics: true,
    metricOptions: {
      requestDuration: { customLabels: { bucket: (c) => c.get("bucket") ?? "", operation: (c) => c.get("operation") ?? "" } },
      requestsTotal: { customLabels: { bucket: (c) => c.get("bucket") ?? "", operation: (c) => c.get("operation") ?? "" } },
    },
  });
  app.use(registerMetrics);
  app.all("*", async (c) => {
    const incoming = c.env.incoming;
    const id = newRequestId();
    const started = performance.now();
    let req: ParsedRequest | undefined;
    let res: Response;
    try {
      req = parseRequest({ method: incoming.method ?? "GET", url: incoming.url ?? "/", rawHeaders: incoming.rawHeaders, clientAddress: incoming.socket.remoteAddress ?? "" }, id);
      // metrics labels: only configured bucket names, so their number stays bounded
      c.set("bucket", pipeline.config.buckets.has(req.bucket) ? req.bucket : "");
      c.set("operation", req.operation);
      res = await proxy(pipeline, req, c.req.raw.body, c.req.raw.signal);
    } catch (e) {
      const err = e instanceof S3Error ? e : internalError();
      if (!(e instanceof S3Error)) logError(id, e);
      res = errorResponse(err, id, req ? req.rawPath : "/", incoming.method ?? "GET");
    }
    if (!res.headers.has("x-amz-request-id")) res.headers.set("x-amz-request-id", id);
    if (pipeline.config.server.accessLog) logAccess(id, req, incoming, res.status, performance.now() - started);
    return res;
  });
  return app;
}
