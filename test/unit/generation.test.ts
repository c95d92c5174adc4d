import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config.ts";
import { Live, needsRestart } from "../../src/server/generation.ts";

const server = (lines: string) => parseConfig(`[server]\n${lines}\n[[keys]]\naccess_key = "AK"\nsecret_key = "sk"\n`, {}, "/etc/osp").server;

describe("what a reload may change", () => {
  test("everything but the listeners and the worker pool", () => {
    const now = server("http_port = 8080\nworkers = 2\nmetrics_port = 9090");
    expect(needsRestart(now, server("http_port = 8080\nworkers = 2\nmetrics_port = 9090\nupstream_timeout = 5\nsigv2 = false\naccess_log = true\ndrain_timeout = 600"))).toBeNull();
  });

  test("a listener or the worker count: the field, the old and the new value", () => {
    const now = server("http_port = 8080\nworkers = 2\nmetrics_port = 9090");
    const cases: [string, string][] = [
      ["http_port = 8081\nworkers = 2\nmetrics_port = 9090", "server.http_port: changed from 8080 to 8081, which needs a restart"],
      ["http_port = 8080\nworkers = 3\nmetrics_port = 9090", "server.workers: changed from 2 to 3, which needs a restart"],
      ["http_port = 8080\nworkers = 2", "server.metrics_port: changed from 9090 to unset, which needs a restart"],
      ['http_port = 8080\nworkers = 2\nmetrics_port = 9090\nbind = "127.0.0.1"', "server.bind: changed from 0.0.0.0 to 127.0.0.1, which needs a restart"],
      ["http_port = 8080\nworkers = 2\nmetrics_port = 9090\nadmin_port = 9091", "server.admin_port: changed from unset to 9091, which needs a restart"],
      ['http_port = 8080\nworkers = 2\nmetrics_port = 9090\nhttps_port = 8443\ntls_cert = "c.pem"\ntls_key = "k.pem"', "server.https_port: changed from unset to 8443, which needs a restart"],
    ];
    for (const [lines, message] of cases) expect(needsRestart(now, server(lines))?.message).toBe(message);
  });

  test("new certificate files are a restart too (Bun's node:https cannot swap its certificate)", () => {
    const tls = (cert: string) => server(`https_port = 8443\ntls_cert = "${cert}"\ntls_key = "k.pem"`);
    expect(needsRestart(tls("c.pem"), tls("c.pem"))).toBeNull();
    expect(needsRestart(tls("c.pem"), tls("new.pem"))?.message).toBe("server.tls_cert: changed from /etc/osp/c.pem to /etc/osp/new.pem, which needs a restart");
  });
});

describe("a swap", () => {
  const generation = (n: number, lines: string) => ({ n, hooks: {}, config: parseConfig(`[server]\n${lines}\n[[keys]]\naccess_key = "AK"\nsecret_key = "sk"\n`, {}, "/") });

  test("a new pipeline, whose backend cap carries on counting unless its settings change", () => {
    const live = new Live(generation(1, "max_backend_requests = 8"));
    const first = live.pipeline;
    live.swap(generation(2, "max_backend_requests = 8\nsigv2 = false"));
    expect(live.pipeline).not.toBe(first);
    expect(live.pipeline.config.server.sigv2).toBe(false);
    expect(live.pipeline.authorize).not.toBe(first.authorize);
    expect(live.pipeline.backendSlot).toBe(first.backendSlot);
    live.swap(generation(3, "max_backend_requests = 9"));
    expect(live.pipeline.backendSlot).not.toBe(first.backendSlot);
    expect(live.generation.n).toBe(3);
  });
});
