/**
 * /metrics: the osp_* set, summed over the workers, checked against a known sequence of requests
 * (the bytes too: what the client received is what tx says) and validated by promtool.
 */
import { expect, test } from "bun:test";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { freePort, startOsp } from "../harness/osp.ts";
import { backendClient, env, randomBytes, rawRequest, sdkClient, sha256, signRaw, uniquePrefix } from "./util.ts";

const prefix = uniquePrefix("metrics");

/** The value of the sample with exactly these labels (0 when there is none). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(",");
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m?.[1] === name && (m[2] ?? "").split(/,(?=[a-z_]+=")/).filter(Boolean).sort().join(",") === want) return Number(m[3]);
  }
  return 0;
}

test("/metrics: the osp_ set summed over 2 workers matches a known sequence of requests, and promtool accepts it", async () => {
  const metricsPort = await freePort();
  const osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 2, metrics_port: metricsPort }) + keyToml(env.accessKey, env.secretKey) + bucketToml(env.bucketA, env.minioA, { presign_max_uses: 2 }),
  });
  const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  try {
    let tx = 0;
    let requests = 0;
    /** One request; counts the body bytes the client received for bucket alpha. */
    const send = async (method: string, target: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}) => {
      const res = await fetch(`${osp.endpoint}${target}`, { method, headers: init.headers, body: init.body });
      const bytes = (await res.arrayBuffer()).byteLength;
      requests++;
      if (target.startsWith(`/${env.bucketA}/`)) tx += bytes;
      return res.status;
    };
    const signed = async (method: string, target: string, headers: Record<string, string> = {}) => signRaw(method, osp.endpoint, target, headers, env.accessKey, env.secretKey);

    // many connections at once, so that both workers serve some
    const bodies = Array.from({ length: 10 }, () => randomBytes(1000));
    expect(await Promise.all(bodies.map(async (b, i) => {
      const target = `/${env.bucketA}/${prefix}o${i}`;
      return send("PUT", target, { headers: await signed("PUT", target, { "x-amz-content-sha256": sha256(b), "content-length": "1000" }), body: b });
    }))).toEqual(Array(10).fill(200));
    expect(await Promise.all(Array.from({ length: 6 }, async (_, i) => send("GET", `/${env.bucketA}/${prefix}o${i % 2}`, { headers: await signed("GET", `/${env.bucketA}/${prefix}o${i % 2}`) })))).toEqual(Array(6).fill(200));
    expect(await Promise.all(Array.from({ length: 3 }, () => send("GET", `/${env.bucketA}/${prefix}o1`)))).toEqual([403, 403, 403]);
    expect(await Promise.all([0, 1].map(async () => send("GET", `/${env.bucketA}/${prefix}missing`, { headers: await signed("GET", `/${env.bucketA}/${prefix}missing`) })))).toEqual([404, 404]);
    expect(await send("HEAD", `/${env.bucketA}/${prefix}o3`, { headers: await signed("HEAD", `/${env.bucketA}/${prefix}o3`) })).toBe(200);
    const url = new URL(await getSignedUrl(sdkClient(osp.endpoint), new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}o4` }), { expiresIn: 300 }));
    expect([await send("GET", url.pathname + url.search), await send("GET", url.pathname + url.search), await send("GET", url.pathname + url.search)]).toEqual([200, 200, 403]);
    expect(await Promise.all([0, 1].map(async () => send("GET", "/no-such-bucket/x", { headers: await signed("GET", "/no-such-bucket/x") })))).toEqual([404, 404]);
    expect(await send("GET", "/", { headers: await signed("GET", "/") })).toBe(200);

    // figures are recorded once a response is done: wait until every request is in
    let text = "";
    for (let i = 0; i < 50; i++, await Bun.sleep(100)) {
      text = await scrape();
      const counted = text.split("\n").filter((l) => l.startsWith("osp_requests_total{")).reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
      if (counted >= requests) break;
    }
    const get = { method: "GET", bucket: env.bucketA };
    expect(sample(text, "osp_requests_total", { method: "PUT", bucket: env.bucketA, status: "200", operation: "PutObject" })).toBe(10);
    expect(sample(text, "osp_requests_total", { ...get, status: "200", operation: "GetObject" })).toBe(8);
    expect(sample(text, "osp_requests_total", { ...get, status: "403", operation: "GetObject" })).toBe(4);
    expect(sample(text, "osp_requests_total", { ...get, status: "404", operation: "GetObject" })).toBe(2);
    expect(sample(text, "osp_requests_total", { method: "HEAD", bucket: env.bucketA, status: "200", operation: "HeadObject" })).toBe(1);
    // bucket names that are not configured share one label value
    expect(sample(text, "osp_requests_total", { method: "GET", bucket: "other", status: "404", operation: "GetObject" })).toBe(2);
    expect(sample(text, "osp_requests_total", { method: "GET", bucket: "", status: "200", operation: "ListBuckets" })).toBe(1);
    expect(sample(text, "osp_request_errors_total", { ...get, error: "AccessDenied" })).toBe(4);
    expect(sample(text, "osp_request_errors_total", { ...get, error: "backend_404" })).toBe(2);
    expect(sample(text, "osp_request_errors_total", { method: "GET", bucket: "other", error: "NoSuchBucket" })).toBe(2);
    expect(sample(text, "osp_presigned_url_hits_total", { bucket: env.bucketA })).toBe(2);
    expect(sample(text, "osp_presigned_url_rejected_total", { bucket: env.bucketA })).toBe(1);
    // bytes moved: the PUT bodies in, and exactly what the client read out
    expect(sample(text, "osp_transfer_bytes_total", { direction: "rx", bucket: env.bucketA })).toBe(10_000);
    expect(sample(text, "osp_transfer_bytes_total", { direction: "tx", bucket: env.bucketA })).toBe(tx);
    expect(tx).toBeGreaterThan(8 * 1000);
    expect(sample(text, "osp_response_size_bytes_sum", get)).toBe(tx);
    expect(sample(text, "osp_response_size_bytes_count", get)).toBe(14);
    expect(sample(text, "osp_request_duration_seconds_count", get)).toBe(14);
    expect(sample(text, "osp_request_duration_seconds_bucket", { ...get, le: "+Inf" })).toBe(14);
    expect(sample(text, "osp_build_info", { version: "0.1.0", bun: Bun.version })).toBe(1);
    expect(sample(text, "osp_memory_bytes")).toBeGreaterThan(20e6);
    expect(text).not.toContain(env.secretKey);

    // an open connection is an active one
    const socket = connect(osp.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    try {
      let active = 0;
      for (let i = 0; i < 20 && active < 1; i++, await Bun.sleep(100)) active = sample(await scrape(), "osp_active_connections");
      expect(active).toBeGreaterThanOrEqual(1);
    } finally {
      socket.destroy();
    }

    const check = Bun.spawn(["promtool", "check", "metrics"], { stdin: new Blob([text]), stdout: "pipe", stderr: "pipe" });
    const problems = (await new Response(check.stdout).text()) + (await new Response(check.stderr).text());
    expect(problems).toBe("");
    expect(await check.exited).toBe(0);
  } finally {
    await osp.stop();
  }
});

test("with metrics served, an upload whose authentication takes a while (a slow lookupSecret hook) arrives whole, and rx counts it", async () => {
  // counting rx with a listener of the request stream's own set the body flowing before it was piped, and lost it
  const dir = mkdtempSync(join(tmpdir(), "osp-slow-hooks-"));
  const hooks = join(dir, "hooks.ts");
  writeFileSync(hooks, `export async function lookupSecret(key) {\n  await Bun.sleep(200);\n  return key === ${JSON.stringify(env.accessKey)} ? ${JSON.stringify(env.secretKey)} : null;\n}\n`);
  const metricsPort = await freePort();
  const osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 1, metrics_port: metricsPort }) + `[hooks]\nmodule = ${JSON.stringify(hooks)}\n` + bucketToml(env.bucketA, env.minioA),
  });
  try {
    const key = `${prefix}slow-auth`;
    const data = randomBytes(256 * 1024 + 5);
    const target = `/${env.bucketA}/${key}`;
    const headers = await signRaw("PUT", osp.endpoint, target, { "content-length": String(data.length) }, env.accessKey, env.secretKey);
    expect((await rawRequest(osp.endpoint, "PUT", target, headers, data)).status).toBe(200);
    const got = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(data));
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(sample(text, "osp_transfer_bytes_total", { direction: "rx", bucket: env.bucketA })).toBe(data.length);
  } finally {
    await osp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
