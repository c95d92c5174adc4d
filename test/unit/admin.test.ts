import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config.ts";
import { readiness } from "../../src/server/admin.ts";

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
