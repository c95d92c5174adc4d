import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config.ts";
import type { AddressInfo } from "node:net";
import { adminServers, readiness } from "../../src/server/admin.ts";

const config = parseConfig(`
[server]
admin_port = 9090
[[keys]]
access_key = "AK"
secret_key = "sk"
[buckets.one]
endpoint = "http://10.0.0.1:9000"
[buckets.two]
endpoint = "http://10.0.0.1:9000"
backend_bucket = "other"
[buckets.far]
endpoint = "https://s3.example.com"
`, {}, "/");

describe("/readyz", () => {
  test("ready: every worker up, every endpoint answered with any status", () => {
    const probes = new Map([["http://10.0.0.1:9000", { status: 403, ms: 2 }], ["https://s3.example.com", { status: 400, ms: 30 }]]);
    expect(readiness({ n: 3, config }, { up: 2, want: 2 }, probes)).toEqual({
      ready: true, config: "loaded", generation: 3, workers: { up: 2, want: 2 }, reasons: [],
      backends: {
        one: { endpoint: "http://10.0.0.1:9000", status: 403, ms: 2 },
        two: { endpoint: "http://10.0.0.1:9000", status: 403, ms: 2 },
        far: { endpoint: "https://s3.example.com", status: 400, ms: 30 },
      },
    });
  });

  test("not ready: a worker missing, and each bucket of an endpoint that did not answer, with the reason", () => {
    const probes = new Map([["http://10.0.0.1:9000", { error: "ECONNREFUSED: refused", ms: 1 }], ["https://s3.example.com", { status: 403, ms: 30 }]]);
    const r = readiness({ n: 1, config }, { up: 1, want: 2 }, probes);
    expect(r.ready).toBe(false);
    expect(r.reasons).toEqual([
      "1 of 2 workers are up",
      "bucket one: http://10.0.0.1:9000 did not answer: ECONNREFUSED: refused",
      "bucket two: http://10.0.0.1:9000 did not answer: ECONNREFUSED: refused",
    ]);
  });
});

describe("admin routes", () => {
  test("/healthz and /metrics on one port: GET and HEAD answered, any other path or method 404, a failing source 500", async () => {
    const both = parseConfig(`
[server]
admin_port = 9091
metrics_port = 9091
[[keys]]
access_key = "AK"
secret_key = "sk"
[buckets.one]
endpoint = "http://10.0.0.1:9000"
`, {}, "/");
    let fail = false;
    const metrics = { contentType: "text/plain; version=0.0.4", text: async () => (fail ? Promise.reject(new Error("registry broke")) : "osp_up 1\n") };
    const servers = adminServers(both, { metrics, workers: () => ({ up: 1, want: 1 }), generation: () => ({ n: 1, config: both, hooks: {} }) });
    expect(servers.map((s) => s.port)).toEqual([9091]);
    const server = servers[0]!.server;
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const health = await fetch(`${base}/healthz`);
      expect([health.status, health.headers.get("content-type"), await health.text()]).toEqual([200, "application/json", '{"status":"ok"}\n']);
      const head = await fetch(`${base}/healthz`, { method: "HEAD" });
      expect([head.status, await head.text()]).toEqual([200, ""]);
      const m = await fetch(`${base}/metrics`);
      expect([m.status, m.headers.get("content-type"), await m.text()]).toEqual([200, metrics.contentType, "osp_up 1\n"]);
      for (const [method, path] of [["GET", "/"], ["GET", "/healthz/x"], ["POST", "/healthz"], ["DELETE", "/metrics"], ["GET", "/bucket/key"]] as const)
        expect(`${method} ${path} ${(await fetch(base + path, { method })).status}`).toBe(`${method} ${path} 404`);
      fail = true;
      expect((await fetch(`${base}/metrics`)).status).toBe(500);
    } finally {
      server.close();
    }
  });
});
