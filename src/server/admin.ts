/**
 * The admin listeners: Prometheus /metrics on metrics_port, /healthz and /readyz on admin_port,
 * one listener when both are the same port. Never on the S3 ports: a bucket may be called healthz.
 */
import { createServer, type Server } from "node:http";
import { Hono, type Context } from "hono";
import { getRequestListener } from "@hono/node-server";
import type { Config } from "../config.ts";
import type { Generation } from "./generation.ts";

/** How long a backend has to answer a readiness probe. */
export const READY_TIMEOUT_MS = 2000;

export interface WorkersUp {
  up: number;
  want: number;
}

/** What a probe of one backend endpoint found: any HTTP answer, or the reason there was none. */
export type Probe = { status: number; ms: number } | { error: string; ms: number };

export interface Readiness {
  ready: boolean;
  config: "loaded";
  /** The configuration generation in force: 1 at start-up, one more at each reload that took. */
  generation: number;
  workers: WorkersUp;
  backends: Record<string, { endpoint: string } & Probe>;
  reasons: string[];
}

/** Ready when every worker listens and every bucket's backend answered; otherwise the reasons why not. */
export function readiness({ n, config }: Pick<Generation, "n" | "config">, workers: WorkersUp, probes: Map<string, Probe>): Readiness {
  const reasons: string[] = [];
  if (workers.up < workers.want) reasons.push(`${workers.up} of ${workers.want} workers are up`);
  const backends: Readiness["backends"] = {};
  for (const [name, bucket] of config.buckets) {
    const endpoint = bucket.endpoint.origin;
    const probe = probes.get(endpoint)!;
    backends[name] = { endpoint, ...probe };
    if ("error" in probe) reasons.push(`bucket ${name}: ${endpoint} did not answer: ${probe.error}`);
  }
  return { ready: reasons.length === 0, config: "loaded", generation: n, workers, backends, reasons };
}

/**
 * One unauthenticated HEAD / to a backend endpoint: any HTTP status shows that it is there and
 * speaks HTTP. Only configured endpoints are asked, each once however many buckets it serves.
 */
async function probe(endpoint: string): Promise<Probe> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(`${endpoint}/`, { method: "HEAD", redirect: "manual", signal: AbortSignal.timeout(READY_TIMEOUT_MS) });
    await res.body?.cancel();
    return { status: res.status, ms: ms() };
  } catch (e) {
    const err = e as Error & { code?: string };
    const what = err.code && !err.message.startsWith(err.code) ? `${err.code}: ${err.message}` : err.message || err.name;
    const error = err.name === "TimeoutError" ? `no answer within ${READY_TIMEOUT_MS} ms` : what;
    return { error, ms: ms() };
  }
}

export async function probeBackends(config: Config): Promise<Map<string, Probe>> {
  const endpoints = [...new Set([...config.buckets.values()].map((b) => b.endpoint.origin))];
  return new Map(await Promise.all(endpoints.map(async (e) => [e, await probe(e)] as const)));
}

export interface AdminSources {
  metrics?: { text: () => Promise<string>; contentType: string };
  workers: () => WorkersUp;
  generation: () => Generation;
}

/**
 * The admin servers, not yet listening, each with its port: Hono apps, whose GET routes answer HEAD
 * too; any other path or method is a 404.
 */
export function adminServers(config: Config, sources: AdminSources): { port: number; server: Server }[] {
  const { metricsPort, adminPort } = config.server;
  const json = (c: Context, status: 200 | 503, body: object) => c.body(JSON.stringify(body) + "\n", status, { "content-type": "application/json" });
  const app = (port: number) => {
    const routes = new Hono();
    const metrics = sources.metrics;
    if (port === metricsPort && metrics) routes.get("/metrics", async (c) => c.body(await metrics.text(), 200, { "content-type": metrics.contentType }));
    if (port === adminPort) {
      routes.get("/healthz", (c) => json(c, 200, { status: "ok" }));
      routes.get("/readyz", async (c) => {
        const current = sources.generation();
        const report = readiness(current, sources.workers(), await probeBackends(current.config));
        return json(c, report.ready ? 200 : 503, report);
      });
    }
    routes.notFound((c) => c.body(null, 404));
    routes.onError((e, c) => c.text(String(e), 500));
    return routes;
  };
  return [...new Set([metricsPort, adminPort])].filter((p) => p !== undefined).map((port) => {
    const server = createServer(getRequestListener(app(port).fetch, { overrideGlobalObjects: false }));
    return { port, server };
  });
}

/** `osp --healthcheck`: asks a running osp's /healthz, as a container's health check does; null when healthy. */
export async function askHealth(config: Config): Promise<string | null> {
  const { bind, adminPort } = config.server;
  // a wildcard bind is reached on loopback
  const host = bind === "0.0.0.0" ? "127.0.0.1" : bind === "::" ? "[::1]" : bind.includes(":") ? `[${bind}]` : bind;
  const url = `http://${host}:${adminPort}/healthz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.status === 200 ? null : `${url}: status ${res.status}`;
  } catch (e) {
    return `${url}: ${(e as Error).message}`;
  }
}
