/** osp as a process: start-up checks, bad input at the edges, backends that fail, the worker pool. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HeadObjectCommand, PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { freePort, REPO_ROOT, runOspOnce, startOsp, type OspInstance } from "../harness/osp.ts";
import { backendClient, env, randomBytes, rawRequest, sdkClient, sha256, signRaw, uniquePrefix, xmlCode } from "./util.ts";

const prefix = uniquePrefix("server");
const backendA = backendClient(env.minioA);

async function exists(key: string, bucket = env.bucketA): Promise<boolean> {
  try {
    await backendA.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

describe("configuration", () => {
  test("--check accepts a valid file and names the problem in a bad one, without a stack trace", async () => {
    const good = serverToml(await freePort()) + keyToml("AK", "sk") + bucketToml("alpha", env.minioA);
    const ok = await runOspOnce({ configToml: good, args: ["--check"] });
    expect(ok.code).toBe(0);
    expect(ok.output).toContain("is valid: 1 bucket, 1 key, ");

    const cases: [string, string][] = [
      [good.replace('addressing_style = "path"', 'addressing_style = "dns"'), 'buckets.alpha.addressing_style: must be "virtual" or "path", found "dns"'],
      [good + "bogus = 1\n", "buckets.alpha.bogus: unknown field"],
      [good.replace('secret_key = "sk"', 'secret_key = "${NO_SUCH_VARIABLE_HERE}"'), "keys[0].secret_key: environment variable NO_SUCH_VARIABLE_HERE is not set"],
      [good.replace(/endpoint = ".*"/, 'endpoint = "not a url"'), 'buckets.alpha.endpoint: not a valid URL: "not a url"'],
      [good.replace("http_port = ", "http_port = -"), "server.http_port: must be between 0 and 65535"],
      [good + '[hooks]\nmodule = "./does-not-exist.ts"\n', "hooks.module: "],
    ];
    for (const [text, message] of cases) {
      for (const args of [["--check"], []]) {
        const r = await runOspOnce({ configToml: text, args });
        expect(r.code).toBe(2);
        expect(r.output).toContain(message);
        expect(r.output).not.toMatch(/^\s+at /m);
      }
    }
  });

  test("the command line: --version; unknown options, missing values and stray arguments are one line and exit code 2", async () => {
    const { version } = await import("../../package.json");
    const v = await runOspOnce({ args: ["--version"] });
    expect({ code: v.code, output: v.output }).toEqual({ code: 0, output: `osp ${version}\n` });
    const cases: [string[], string][] = [
      [["--bogus"], "osp: Unknown option '--bogus' (see --help)"],
      [["--config"], "osp: Option '-c, --config <value>' argument missing (see --help)"],
      [["--config="], "osp: option '--config' needs a file name (see --help)"],
      [["--check", "extra.toml"], "osp: unexpected argument 'extra.toml' (see --help)"],
      [["--check=yes"], "osp: Option '--check' does not take an argument (see --help)"],
    ];
    for (const [args, line] of cases) {
      const r = await runOspOnce({ args });
      expect({ args, code: r.code, output: r.output }).toEqual({ args, code: 2, output: line + "\n" });
    }
  });

  test("a missing file is named once; a TOML syntax error names the file, line and column", async () => {
    const missing = `/nonexistent-${prefix.replace("/", "")}/osp.toml`;
    const r = await runOspOnce({ args: ["--check", "--config", missing] });
    expect({ code: r.code, output: r.output }).toEqual({ code: 2, output: `osp: ${missing}: no such file\n` });
    const bad = await runOspOnce({ configToml: serverToml(await freePort()) + "workers = = 2\n", args: ["--check"] });
    expect({ code: bad.code, output: bad.output }).toEqual({ code: 2, output: `osp: ${bad.configPath}: not valid TOML at line 4, column 11: invalid value\n` });
  });
});

describe("requests at the edges", () => {
  test("Expect: 100-continue: no 100 and no upload before the request is authenticated", async () => {
    const key = `${prefix}expect`;
    const body = "stored only when signed";
    const u = new URL(env.ospEndpoint);
    const { request } = await import("node:http");
    // sends the body only after "100 Continue", as aws-cli and boto3 do
    const put = async (secret: string) => {
      const headers = await signRaw("PUT", env.ospEndpoint, `/${env.bucketA}/${key}`, { expect: "100-continue", "content-length": String(body.length) }, env.accessKey, secret);
      return new Promise<{ status: number; continued: boolean; code?: string }>((resolve, reject) => {
        let continued = false;
        const req = request({ host: u.hostname, port: u.port, method: "PUT", path: `/${env.bucketA}/${key}`, headers }, (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode!, continued, code: xmlCode(text) }));
        });
        req.on("continue", () => {
          continued = true;
          req.end(body);
        });
        req.on("error", reject);
        req.flushHeaders();
      });
    };
    expect(await put(env.secretKey + "-wrong")).toEqual({ status: 403, continued: false, code: "SignatureDoesNotMatch" });
    expect(await exists(key)).toBe(false);
    expect(await put(env.secretKey)).toEqual({ status: 200, continued: true, code: undefined });
    const got = await backendA.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
    expect(await got.Body!.transformToString()).toBe(body);
  });

  test("an uploadId query does not skip authentication either", async () => {
    const target = `/${env.bucketA}/${prefix}mp?uploadId=anything&partNumber=1`;
    const res = await rawRequest(env.ospEndpoint, "PUT", target, { "content-length": "1" }, "x");
    expect(res.status).toBe(403);
    expect(xmlCode(res.body)).toBe("AccessDenied");
  });

  test("dot segments in a signed path never reach another key or bucket", async () => {
    for (const target of [`/${env.bucketA}/%2e%2e/${env.bucketB}/${prefix}escape`, `/${env.bucketA}/x/../${prefix}escape`, `/${env.bucketA}/./${prefix}escape`]) {
      const headers = await signRaw("PUT", env.ospEndpoint, target, { "content-length": "1" }, env.accessKey, env.secretKey);
      const res = await rawRequest(env.ospEndpoint, "PUT", target, headers, "x");
      expect(res.status).toBe(400);
      expect(xmlCode(res.body)).toBe("InvalidArgument");
    }
    expect(await exists(`${prefix}escape`)).toBe(false);
    const b = backendClient(env.minioB);
    await expect(b.send(new HeadObjectCommand({ Bucket: env.bucketBBackend, Key: `${prefix}escape` }))).rejects.toThrow();
  });

  test("anonymous GET / lists nothing; errors are S3 XML with a request id", async () => {
    const res = await fetch(`${env.ospEndpoint}/`);
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(xmlCode(body)).toBe("AccessDenied");
    expect(body).toMatch(/<RequestId>[0-9A-F]{16}<\/RequestId>/);
    expect(body).not.toContain(env.bucketA);
    expect(res.headers.get("x-amz-request-id")).toMatch(/^[0-9A-F]{16}$/);
    // sent with its length, not chunked
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
  });

  test("a request signed 20 minutes ago is RequestTimeTooSkewed", async () => {
    const target = `/${env.bucketA}/${prefix}skew`;
    const headers = await signRaw("GET", env.ospEndpoint, target, {}, env.accessKey, env.secretKey, new Date(Date.now() - 20 * 60_000));
    const res = await rawRequest(env.ospEndpoint, "GET", target, headers);
    expect(res.status).toBe(403);
    expect(xmlCode(res.body)).toBe("RequestTimeTooSkewed");
  });

  test("HEAD errors carry no body", async () => {
    const res = await fetch(`${env.ospEndpoint}/${env.bucketA}/x`, { method: "HEAD" });
    expect(res.status).toBe(403);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  test("a client that aborts an upload leaves neither a new object nor a damaged old one", async () => {
    const key = `${prefix}aborted`;
    const old = randomBytes(1000);
    await sdkClient().send(new PutObjectCommand({ Bucket: env.bucketA, Key: key, Body: old }));
    const total = 64 * 1024 * 1024;
    const u = new URL(env.ospEndpoint);
    const headers = await signRaw("PUT", env.ospEndpoint, `/${env.bucketA}/${key}`, { "content-length": String(total) }, env.accessKey, env.secretKey);
    await new Promise<void>((resolve) => {
      const sock = connect(Number(u.port), u.hostname, () => {
        const head = [`PUT /${env.bucketA}/${key} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n");
        sock.write(head);
        sock.write(randomBytes(8 * 1024 * 1024), () => setTimeout(() => { sock.destroy(); resolve(); }, 200));
      });
      sock.on("error", () => resolve());
    });
    await Bun.sleep(500);
    const got = await backendA.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(old));
  });
  test("a backend that refuses an upload before its body: the client gets its answer, that connection closes, nothing is stored", async () => {
    // backend keys MinIO does not know: it answers 403 from the headers alone, while the body is still coming
    const osp = await startOsp({
      name: "refused-upload",
      configToml: serverToml(await freePort(), { workers: 1 }) + keyToml(env.accessKey, env.secretKey) +
        bucketToml(env.bucketA, { ...env.minioA, secretKey: env.minioA.secretKey + "-wrong" }),
    });
    try {
      const key = `${prefix}refused`;
      const total = 32 * 1024 * 1024;
      const u = new URL(osp.endpoint);
      const headers = await signRaw("PUT", osp.endpoint, `/${env.bucketA}/${key}`, { "content-length": String(total) }, env.accessKey, env.secretKey);
      const answer = await new Promise<{ text: string; closed: boolean }>((resolve) => {
        let text = "";
        const sock = connect(Number(u.port), u.hostname, () => {
          sock.write([`PUT /${env.bucketA}/${key} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n"));
          // a slow body: the answer comes long before its end
          let sent = 0;
          const more = () => {
            if (sock.destroyed || sent >= total) return;
            sent += 64 * 1024;
            sock.write(randomBytes(64 * 1024), () => setTimeout(more, 5));
          };
          more();
        });
        const done = (closed: boolean) => resolve({ text, closed });
        sock.on("data", (c: Buffer) => (text += c.toString("latin1")));
        sock.on("close", () => done(true));
        sock.on("error", () => {});
        setTimeout(() => (sock.destroy(), done(false)), 15_000);
      });
      expect(answer.text).toStartWith("HTTP/1.1 403");
      expect(xmlCode(answer.text)).toBe("SignatureDoesNotMatch");
      expect(answer.text.toLowerCase()).toContain("connection: close");
      expect(answer.closed).toBe(true);
      const head = await backendA.send(new HeadObjectCommand({ Bucket: env.bucketA, Key: key })).catch((e) => e);
      expect(head.$metadata?.httpStatusCode).toBe(404);
    } finally {
      await osp.stop();
    }
  });
});

describe("streaming", () => {
  test("an upload that pauses for longer than an idle backend connection is kept open still arrives whole", async () => {
    // osp closes backend connections idle for 4 s (upload.ts); one in use must not be closed
    const key = `${prefix}paused`;
    const body = randomBytes(2 * 1024 * 1024);
    const u = new URL(env.ospEndpoint);
    const headers = await signRaw("PUT", env.ospEndpoint, `/${env.bucketA}/${key}`, { "content-length": String(body.length) }, env.accessKey, env.secretKey);
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      const sock = connect(Number(u.port), u.hostname, () => {
        sock.write([`PUT /${env.bucketA}/${key} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "Connection: close", "", ""].join("\r\n"));
        sock.write(body.subarray(0, 1024 * 1024));
        setTimeout(() => sock.write(body.subarray(1024 * 1024)), 6000);
      });
      sock.on("data", (c: Buffer) => (text += c.toString("latin1")));
      sock.on("close", () => resolve(text));
      sock.on("error", () => resolve(text));
    });
    expect(answer).toStartWith("HTTP/1.1 200");
    const got = await backendA.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(body));
  }, 20_000);

  test("an upload the backend refuses before its body has arrived: its answer reaches the client, and the next requests on that backend are served whole", async () => {
    const port = await freePort();
    const osp = await startOsp({
      configToml: serverToml(port, { workers: 1 }) + keyToml("AK", "secret-of-ak") + bucketToml("gone", env.minioA, { backend_bucket: "osp-no-such-bucket" }) + bucketToml(env.bucketA, env.minioA),
    });
    try {
      const body = randomBytes(8 * 1024 * 1024);
      const target = `/gone/${prefix}refused`;
      const headers = await signRaw("PUT", osp.endpoint, target, { "content-length": String(body.length) }, "AK", "secret-of-ak");
      const u = new URL(osp.endpoint);
      // the first MiB, then the rest only if no answer has come within 2 s
      const { answer, early } = await new Promise<{ answer: string; early: boolean }>((resolve) => {
        let text = "";
        let rest: Timer | undefined;
        const sock = connect(Number(u.port), u.hostname, () => {
          sock.write([`PUT ${target} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n"));
          sock.write(body.subarray(0, 1024 * 1024));
          rest = setTimeout(() => sock.write(body.subarray(1024 * 1024)), 2000);
        });
        sock.on("data", (c: Buffer) => {
          text += c.toString("latin1");
          if (/\r\n\r\n[\s\S]*<\/Error>/.test(text)) {
            clearTimeout(rest);
            resolve({ answer: text, early: rest !== undefined && !sock.writableEnded && sock.bytesWritten < body.length });
            sock.destroy();
          }
        });
        sock.on("error", () => resolve({ answer: text, early: false }));
      });
      expect({ status: answer.slice(9, 12), code: xmlCode(answer), early }).toEqual({ status: "404", code: "NoSuchBucket", early: true });
      // the refused upload's backend connection is not used again; fresh ones carry these
      const client = sdkClient(osp.endpoint, "AK", "secret-of-ak");
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(300_000 + i);
        await client.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}after-refusal-${i}`, Body: data }));
        const got = await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}after-refusal-${i}` }));
        expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(data));
      }
    } finally {
      await osp.stop();
    }
  }, 30_000);

  test("a download is not buffered, and a client that goes away closes the backend connection", async () => {
    const key = `${prefix}stream`;
    const size = 64 * 1024 * 1024;
    await backendA.send(new PutObjectCommand({ Bucket: env.bucketA, Key: key, Body: randomBytes(size) }));
    const minioPort = new URL(env.minioA.endpoint).port;
    // connections from MinIO A with bytes it could not send yet: a download held up by its reader
    const stalled = async () =>
      (await Bun.$`ss -tnH state established sport = :${minioPort}`.text()).split("\n").filter((l) => Number(l.trim().split(/\s+/)[1]) > 0).length;
    const target = `/${env.bucketA}/${key}`;
    const headers = await signRaw("GET", env.ospEndpoint, target, {}, env.accessKey, env.secretKey);
    const u = new URL(env.ospEndpoint);
    const { request } = await import("node:http");
    const res = await new Promise<import("node:http").IncomingMessage>((resolve, reject) =>
      request({ host: u.hostname, port: u.port, path: target, headers }, resolve).on("error", reject).end());
    expect(res.headers["content-length"]).toBe(String(size));
    res.pause(); // a reader that stops: the proxy must not read the rest into memory
    await Bun.sleep(1000);
    expect(await stalled()).toBe(1);
    res.destroy();
    await Bun.sleep(1000);
    expect(await stalled()).toBe(0);
  });
});

describe("backends that fail", () => {
  let osp: OspInstance;
  let silent: Bun.TCPSocketListener;
  beforeAll(async () => {
    // accepts connections and never answers: a backend that hangs
    silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    osp = await startOsp({
      configToml: serverToml(await freePort(), { workers: 1, upstream_timeout: 2 }) + keyToml("AK", "secret-of-ak") +
        bucketToml("hangs", { endpoint: `http://127.0.0.1:${silent.port}`, accessKey: "x", secretKey: "y" }),
    });
  });
  afterAll(async () => {
    await osp?.stop();
    silent?.stop(true);
  });

  test("a backend that does not answer is a 504 GatewayTimeout after upstream_timeout", async () => {
    const started = Date.now();
    const headers = await signRaw("GET", osp.endpoint, "/hangs/k", {}, "AK", "secret-of-ak");
    const res = await rawRequest(osp.endpoint, "GET", "/hangs/k", headers);
    expect(res.status).toBe(504);
    expect(xmlCode(res.body)).toBe("GatewayTimeout");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - started).toBeLessThan(6000);
  });
});

describe("the worker pool", () => {
  const children = async (pid: number) =>
    (await Bun.$`pgrep -P ${pid}`.nothrow().text()).split("\n").filter(Boolean).map(Number);

  test("a worker that dies is replaced; SIGTERM stops them all", async () => {
    const osp = await startOsp({
      configToml: serverToml(await freePort(), { workers: 2 }) + keyToml(env.accessKey, env.secretKey) + bucketToml(env.bucketA, env.minioA),
    });
    const client = sdkClient(osp.endpoint);
    const key = `${prefix}pool`;
    await client.send(new PutObjectCommand({ Bucket: env.bucketA, Key: key, Body: "pool" }));
    let workers: number[] = [];
    for (let i = 0; i < 50 && workers.length < 2; i++, await Bun.sleep(100)) workers = await children(osp.proc.pid);
    expect(workers.length).toBe(2);
    process.kill(workers[0]!, "SIGKILL");
    let replaced: number[] = [];
    for (let i = 0; i < 50; i++, await Bun.sleep(100)) {
      replaced = await children(osp.proc.pid);
      if (replaced.length === 2 && !replaced.includes(workers[0]!)) break;
    }
    expect(replaced.length).toBe(2);
    expect(replaced).not.toContain(workers[0]!);
    for (let i = 0; i < 10; i++) {
      const got = await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
      expect(await got.Body!.transformToString()).toBe("pool");
    }
    osp.proc.kill("SIGTERM");
    expect(await osp.proc.exited).toBe(0);
    for (const pid of replaced) expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe("health and readiness", () => {
  const readyz = async (port: number) => {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: res.status, body: (await res.json()) as { ready: boolean; workers: { up: number; want: number }; backends: Record<string, { status?: number; error?: string }>; reasons: string[] } };
  };

  test("/healthz, /readyz and /metrics on one admin port; the S3 port keeps those names for buckets and keys", async () => {
    const admin = await freePort();
    const toml = serverToml(await freePort(), { workers: 2, admin_port: admin, metrics_port: admin }) + keyToml(env.accessKey, env.secretKey) +
      bucketToml(env.bucketA, env.minioA) + bucketToml(env.bucketB, env.minioB, { backend_bucket: env.bucketBBackend });
    const osp = await startOsp({ configToml: toml });
    try {
      // what a container's HEALTHCHECK runs
      expect(await runOspOnce({ configToml: toml, args: ["--healthcheck"] })).toMatchObject({ code: 0, output: "" });
      const health = await fetch(`http://127.0.0.1:${admin}/healthz`);
      expect({ status: health.status, body: await health.json() }).toEqual({ status: 200, body: { status: "ok" } });
      let r = await readyz(admin);
      for (let i = 0; i < 50 && r.status !== 200; i++, await Bun.sleep(100)) r = await readyz(admin);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ ready: true, workers: { up: 2, want: 2 }, reasons: [] });
      // MinIO answers an unsigned HEAD / with an HTTP status: it is there
      expect(r.body.backends[env.bucketA]).toMatchObject({ endpoint: env.minioA.endpoint, status: expect.any(Number) });
      expect(r.body.backends[env.bucketB]).toMatchObject({ endpoint: env.minioB.endpoint, status: expect.any(Number) });
      expect(await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text()).toContain("osp_requests_total");
      expect((await fetch(`http://127.0.0.1:${admin}/${env.bucketA}/x`)).status).toBe(404);
      // on the S3 port, /healthz is a bucket name like any other: signed, routed, answered as S3
      const client = sdkClient(osp.endpoint);
      await client.send(new PutObjectCommand({ Bucket: env.bucketA, Key: "readyz", Body: "a key called readyz" }));
      const got = await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: "readyz" }));
      expect(await got.Body!.transformToString()).toBe("a key called readyz");
      for (const path of ["/healthz", "/readyz"]) {
        const res = await fetch(`${osp.endpoint}${path}`);
        expect(res.status).toBe(403);
        expect(xmlCode(await res.text())).toBe("AccessDenied");
      }
      const signed = await rawRequest(osp.endpoint, "GET", "/healthz", await signRaw("GET", osp.endpoint, "/healthz", {}, env.accessKey, env.secretKey));
      expect({ status: signed.status, code: xmlCode(signed.body) }).toEqual({ status: 404, code: "NoSuchBucket" });
    } finally {
      await osp.stop();
    }
    const stopped = await runOspOnce({ configToml: toml, args: ["--healthcheck"] });
    expect(stopped.code).toBe(1);
    expect(stopped.output).toStartWith(`osp: unhealthy: http://127.0.0.1:${admin}/healthz: `);
    const without = await runOspOnce({ configToml: toml.replace(/^admin_port = .*\n/m, ""), args: ["--healthcheck"] });
    expect({ code: without.code, output: without.output }).toEqual({ code: 1, output: `osp: ${without.configPath}: server.admin_port: is needed by --healthcheck\n` });
  });

  test("/readyz is 503 with the reason while a worker is starting, and while a backend does not answer", async () => {
    const admin = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "osp-ready-"));
    // the second worker takes 5 s to start; the hooks module is loaded in every process
    writeFileSync(join(dir, "slow.ts"), `import cluster from "node:cluster";\nif (cluster.worker?.id === 2) await Bun.sleep(5000);\n`);
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const hangs = { endpoint: `http://127.0.0.1:${silent.port}`, accessKey: "x", secretKey: "y" };
    const down = { endpoint: `http://127.0.0.1:${env.downPort}`, accessKey: "x", secretKey: "y" };
    const osp = await startOsp({
      configToml: serverToml(await freePort(), { workers: 2, admin_port: admin }) + keyToml(env.accessKey, env.secretKey) +
        `[hooks]\nmodule = ${JSON.stringify(join(dir, "slow.ts"))}\n` + bucketToml(env.bucketA, env.minioA) + bucketToml("down", down) + bucketToml("hangs", hangs),
    });
    try {
      const starting = await readyz(admin);
      expect(starting.status).toBe(503);
      expect(starting.body.workers).toEqual({ up: 1, want: 2 });
      expect(starting.body.reasons).toContain("1 of 2 workers are up");
      let r = starting;
      for (let i = 0; i < 10 && r.body.workers.up < 2; i++) {
        const started = Date.now();
        r = await readyz(admin);
        expect(Date.now() - started).toBeLessThan(4000); // the backends are asked in parallel, for 2 s at most
      }
      expect(r.status).toBe(503);
      expect(r.body.workers).toEqual({ up: 2, want: 2 });
      expect(r.body.backends[env.bucketA]).toMatchObject({ status: expect.any(Number) });
      expect(r.body.reasons).toEqual([
        `bucket down: http://127.0.0.1:${env.downPort} did not answer: ECONNREFUSED: Unable to connect. Is the computer able to access the url?`,
        `bucket hangs: http://127.0.0.1:${silent.port} did not answer: no answer within 2000 ms`,
      ]);
      expect((await fetch(`http://127.0.0.1:${admin}/healthz`)).status).toBe(200);
    } finally {
      await osp.stop();
      silent.stop(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a port that is ours", () => {
  const config = (port: number, workers: number, extra: Record<string, number> = {}) =>
    serverToml(port, { workers, ...extra }) + keyToml(env.accessKey, env.secretKey) + bucketToml(env.bucketA, env.minioA);
  const refused = async (port: number, toml: string) => {
    const r = await runOspOnce({ configToml: toml });
    expect({ code: r.code, lines: r.output.trim().split("\n") }).toEqual({ code: 1, lines: [`osp: port ${port} on 127.0.0.1 is already in use`] });
  };

  test("a plain listener on the port: osp refuses to start, whatever the worker count", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      for (const workers of [1, 2]) await refused(holder.port, config(holder.port, workers));
      // the metrics port is checked as well
      for (const workers of [1, 2]) await refused(holder.port, config(await freePort(), workers, { metrics_port: holder.port }));
    } finally {
      holder.stop(true);
    }
  });

  test("an SO_REUSEPORT listener on the port (Bun.serve, MinIO): osp refuses instead of sharing its traffic", async () => {
    const holder = Bun.serve({ hostname: "127.0.0.1", port: 0, reusePort: true, fetch: () => new Response("holder") });
    try {
      for (const workers of [1, 2]) await refused(holder.port!, config(holder.port!, workers));
      expect(await (await fetch(holder.url)).text()).toBe("holder");
    } finally {
      await holder.stop(true);
    }
    const minioPort = Number(new URL(env.minioA.endpoint).port);
    for (const workers of [1, 2]) await refused(minioPort, config(minioPort, workers));
    // MinIO still answers every request itself
    for (let i = 0; i < 10; i++) expect((await fetch(`${env.minioA.endpoint}/minio/health/live`)).status).toBe(200);
  });

  test("a listener that arrives between osp's check and its workers' bind: osp stops, workers and all", async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "osp-race-"));
    // the workers bind 2 s after the primary checked the port
    writeFileSync(join(dir, "slow.ts"), `import cluster from "node:cluster";\nif (cluster.isWorker) await Bun.sleep(2000);\n`);
    const toml = config(port, 2) + `[hooks]\nmodule = ${JSON.stringify(join(dir, "slow.ts"))}\n`;
    writeFileSync(join(dir, "osp.toml"), toml);
    const osp = Bun.spawn([process.execPath, "run", join(REPO_ROOT, "osp.ts"), "--config", join(dir, "osp.toml")], { stdout: "pipe", stderr: "pipe", detached: true });
    let holder: ReturnType<typeof Bun.serve> | undefined;
    try {
      const reader = osp.stdout.getReader();
      let out = "";
      while (!out.includes("workers on")) out += new TextDecoder().decode((await reader.read()).value);
      holder = Bun.serve({ hostname: "127.0.0.1", port, reusePort: true, fetch: () => new Response("holder") });
      expect(await Promise.race([osp.exited, Bun.sleep(10_000).then(() => "still running")])).toBe(1);
      expect(await new Response(osp.stderr).text()).toBe(`osp: port ${port} on 127.0.0.1 is already in use\n`);
      // the workers drain and exit too; then the holder is alone on its port
      let left = "x";
      for (let i = 0; i < 50 && left; i++, await Bun.sleep(100)) left = (await Bun.$`pgrep -g ${osp.pid}`.nothrow().text()).trim();
      expect(left).toBe("");
      for (let i = 0; i < 10; i++) expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("holder");
    } finally {
      try {
        process.kill(-osp.pid, "SIGKILL");
      } catch {}
      await holder?.stop(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a second osp on the same port refuses; the first keeps serving", async () => {
    const port = await freePort();
    const first = await startOsp({ configToml: config(port, 2) });
    try {
      for (const workers of [1, 2]) await refused(port, config(port, workers));
      const client = sdkClient(first.endpoint);
      await client.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}ours`, Body: "ours" }));
      const got = await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}ours` }));
      expect(await got.Body!.transformToString()).toBe("ours");
    } finally {
      await first.stop();
    }
  });
});

describe("single binary", () => {
  test("`bun build --compile` gives a binary that serves with its worker pool and stops it on SIGINT", async () => {
    const dir = (await Bun.$`mktemp -d`.text()).trim();
    try {
      await Bun.$`bun build --compile ${import.meta.dir}/../../osp.ts --outfile ${dir}/osp`.quiet();
      expect((await Bun.$`${dir}/osp --version`.text()).trim()).toMatch(/^osp \d+\.\d+\.\d+$/);
      const port = await freePort();
      await Bun.write(`${dir}/osp.toml`, serverToml(port, { workers: 2 }) + keyToml(env.accessKey, env.secretKey) + bucketToml(env.bucketA, env.minioA));
      // run from its own directory: osp.toml is found in the working directory
      const proc = Bun.spawn([`${dir}/osp`], { cwd: dir, stdout: "pipe", stderr: "pipe" });
      try {
        const client = sdkClient(`http://127.0.0.1:${port}`);
        let body = "";
        for (let i = 0; i < 50 && !body; i++) {
          await Bun.sleep(100);
          body = await client.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}binary`, Body: "from the binary" })).then(() => "put", () => "");
        }
        const got = await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}binary` }));
        expect(await got.Body!.transformToString()).toBe("from the binary");
      } finally {
        // SIGINT (Ctrl-C) stops the pool as SIGTERM does (tested above)
        proc.kill("SIGINT");
        expect(await proc.exited).toBe(0);
        expect((await Bun.$`pgrep -f ${dir}/osp`.nothrow().text()).trim()).toBe("");
      }
    } finally {
      await Bun.$`rm -rf ${dir}`;
    }
  });
});
