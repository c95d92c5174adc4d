/**
 * The process model: a primary that keeps `workers` node:cluster workers alive, each serving the
 * request handler (app.ts) over node:http on the shared port. node:http (not Bun.serve) because it
 * hands over the raw request target and keeps Content-Length on streamed responses (README).
 */
import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import { AggregatorRegistry } from "prom-client";
import type { Config } from "../config.ts";
import type { Hooks } from "../hooks.ts";
import { createHandler } from "./app.ts";
import { createMetrics, registry, type Metrics } from "./metrics.ts";
import type { Pipeline } from "../pipeline/proxy.ts";
import { firstHeldPort, sharedPort } from "./port.ts";
import { adminServers, type AdminSources } from "./admin.ts";
import { Live, type Generation } from "./generation.ts";
import { followPrimary, leadWorkers, reloadSelf } from "./reload.ts";
import { countForWorkers } from "../state/presign-uses.ts";

export const workerCount = (config: Config) => config.server.workers || availableParallelism();

/** For embedding: serves this configuration and these hooks (SIGHUP has no file to re-read then). */
export const startServer = (config: Config, hooks: Hooks) => serveGeneration({ n: 1, config, hooks });

/**
 * Starts osp: in the primary, forks the workers; in a worker (or with one worker), serves.
 * Exits with 1 when one of its ports is held by another process, before anything listens.
 */
export async function serveGeneration(first: Generation): Promise<void> {
  const { config } = first;
  if (cluster.isPrimary) {
    const held = await firstHeldPort(ports(config), config.server.bind);
    if (held) refuse(held.port, config.server.bind, held.code);
  }
  if (workerCount(config) > 1 && cluster.isPrimary) return startPrimary(first);
  // metrics_port only changes with a restart: metrics are the process's, whatever the generation
  const metrics = config.server.metricsPort === undefined ? undefined : createMetrics();
  const live = new Live(first, { presignedUse: metrics?.presignedUse });
  const servers = serve(config, () => live.pipeline, metrics);
  if (cluster.isWorker) {
    followPrimary(live);
    // tell the primary (for /readyz) once every listener of this worker is up
    let waiting = servers.length;
    for (const server of servers) server.once("listening", () => --waiting === 0 && process.send?.({ osp: "listening" }));
    if (config.server.metricsPort !== undefined) {
      // answer the primary's metrics requests; prom-client attaches that listener in this constructor
      AggregatorRegistry.setRegistries([registry]);
      new AggregatorRegistry();
    }
  } else {
    reloadSelf(live);
    serveAdmin(config, {
      metrics: { text: () => registry.metrics(), contentType: registry.contentType },
      workers: () => ({ up: servers.every((s) => s.listening) ? 1 : 0, want: 1 }),
      generation: () => live.generation,
    });
    // once listening: a process that bound one of the ports since the probe (port.ts) makes osp stop
    let waiting = servers.length;
    for (const server of servers) {
      server.once("listening", () => {
        const port = --waiting === 0 ? sharedPort(ports(config), [process.pid]) : null;
        if (port !== null) refuse(port, config.server.bind);
      });
    }
  }
  const stop = () => {
    let open = servers.length;
    for (const server of servers) server.close(() => --open === 0 && process.exit(0));
    // a keep-alive connection whose last response ends while draining would stay open for keepAliveTimeout
    const closeIdle = () => servers.forEach((server) => server.closeIdleConnections());
    closeIdle();
    setInterval(closeIdle, 100).unref();
    setTimeout(() => process.exit(0), live.generation.config.server.drainTimeout * 1000).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

const ports = (config: Config) => {
  const { httpPort, httpsPort, metricsPort, adminPort } = config.server;
  return [httpPort, httpsPort, metricsPort, adminPort].filter((p) => p !== undefined);
};

function refuse(port: number, bind: string, code = "EADDRINUSE"): never {
  console.error(`osp: port ${port} on ${bind} is ${code === "EADDRINUSE" ? "already in use" : `not available (${code})`}`);
  process.exit(1);
}

/** The listeners of one process: HTTP/1.1, plain and/or over TLS. */
function serve(config: Config, current: () => Pipeline, metrics: Metrics | undefined): Server[] {
  const listener = createHandler(current, metrics);
  const { bind, httpPort, httpsPort, tlsCert, tlsKey } = config.server;
  const servers: Server[] = [];
  if (httpPort !== undefined) {
    const server = createServer(listener);
    tune(server);
    servers.push(listen(server, `http://${bind}:${httpPort}`, httpPort, bind));
  }
  if (httpsPort !== undefined) {
    // HTTP/1.1 only: beside HTTP/2 (node:http2 with allowHTTP1, or node:http behind ALPN) Bun does
    // not hold back HTTP/1.1 upload bodies when the backend reads slowly, so memory fills (README).
    const server = createHttpsServer({ cert: readFileSync(tlsCert!), key: readFileSync(tlsKey!) }, listener);
    tune(server);
    servers.push(listen(server, `https://${bind}:${httpsPort}`, httpsPort, bind));
  }
  // answer "Expect: 100-continue" only once the request is authorized (app.ts sends the 100)
  for (const server of servers) server.on("checkContinue", listener);
  // any other Expect (an empty one too) is ignored, as S3 does, rather than answered 417
  for (const server of servers) server.on("checkExpectation", listener);
  for (const server of servers) metrics?.watch(server);
  return servers;
}

function tune(server: Server): void {
  // Uploads of many GiB and slow CompleteMultipartUploads must not be cut off by node's 5-minute default.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
}

function listen<S extends Server>(server: S, url: string, port: number, bind: string): S {
  server.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EADDRINUSE" || e.code === "EACCES") refuse(port, bind, e.code);
    console.error(`osp: cannot listen on ${url}: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, bind, () => {
    if (cluster.isPrimary) console.log(`osp: listening on ${url}`);
  });
  return server;
}

/** /metrics, /healthz and /readyz, on their own ports (see admin.ts). */
function serveAdmin(config: Config, sources: AdminSources): void {
  for (const { port, server } of adminServers(config, sources)) listen(server, `http://${config.server.bind}:${port}`, port, config.server.bind);
}

function startPrimary(first: Generation): void {
  const { config } = first;
  const n = workerCount(config);
  let stopping = false;
  const recentDeaths: number[] = [];
  const fork = () => cluster.fork();
  const listening = new Set<number>();
  const generation = leadWorkers(first, () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && listening.has(w.id)));
  let checked = false;
  cluster.on("message", (worker, message: { osp?: string }) => {
    if (message?.osp !== "listening") return;
    listening.add(worker.id);
    if (checked || listening.size < n) return;
    checked = true;
    // every worker listens: a process that bound one of the ports since the probe (port.ts) makes osp stop
    const pids = [process.pid, ...Object.values(cluster.workers ?? {}).map((w) => w!.process.pid!)];
    const port = sharedPort(ports(config), pids);
    if (port === null) return;
    // the workers may have accepted connections already: they finish them, then exit
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
    refuse(port, config.server.bind);
  });
  cluster.on("exit", (worker, code, signal) => {
    listening.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    console.error(`osp: worker ${worker.process.pid} died (${signal ?? `exit ${code}`}); starting another`);
    const now = Date.now();
    recentDeaths.push(now);
    while (recentDeaths[0]! < now - 10_000) recentDeaths.shift();
    // a worker that dies at once every time (bad hooks module, port taken) would spin
    if (recentDeaths.length > 2 * n) {
      console.error("osp: workers keep dying; stopping");
      process.exit(1);
    }
    fork();
  });
  // also with Redis: a reload may do without it
  countForWorkers();
  for (let i = 0; i < n; i++) fork();
  const { bind, httpPort, httpsPort } = config.server;
  const urls = [httpPort !== undefined && `http://${bind}:${httpPort}`, httpsPort !== undefined && `https://${bind}:${httpsPort}`].filter(Boolean);
  console.log(`osp: ${n} workers on ${urls.join(" and ")}`);
  const aggregator = config.server.metricsPort === undefined ? undefined : new AggregatorRegistry();
  serveAdmin(config, {
    metrics: aggregator && { text: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
    workers: () => ({ up: listening.size, want: n }),
    generation,
  });
  const stop = () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(0);
    for (const w of workers) w?.process.kill("SIGTERM");
    setTimeout(() => process.exit(0), (generation().config.server.drainTimeout + 1) * 1000).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
