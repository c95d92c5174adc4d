/**
 * Slow clients, over raw sockets: a slow but steady download completes as it does directly from
 * the backend; uploads that trickle are answered RequestTimeout and write nothing; the number of
 * backend requests is capped (SlowDown after a queue wait) and every path gives its slot back;
 * a client that sends its headers slowly is disconnected.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { connect } from "node:net";
import { startMinio, type MinioServer } from "../harness/minio.ts";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { backendClient, env, randomBytes, sha256, signRaw, uniquePrefix, xmlCode } from "./util.ts";

const prefix = uniquePrefix("slow");

interface Exchange {
  status: number;
  head: string;
  body: Uint8Array;
  /** Content-Length announced by the response */
  length: number;
  /** ms from the request until the server closed the connection or the body was complete */
  ms: number;
}

/**
 * Sends `head` (and then `body` at `sendRate` bytes/s, if given) on a raw socket and reads the
 * response at `readRate` bytes/s, pausing the socket so that the kernel, not this process, holds
 * what is not read yet. Resolves when the response is complete or the server closes.
 */
function exchange(base: string, head: string, opts: { readRate?: number; body?: Uint8Array; sendRate?: number } = {}): Promise<Exchange> {
  const u = new URL(base);
  const started = performance.now();
  return new Promise((resolve) => {
    const sock = connect(Number(u.port), u.hostname);
    const parts: Uint8Array[] = [];
    let received = 0;
    let headEnd = -1;
    let length = -1;
    let readStart = 0;
    let sender: Timer | undefined;
    const finish = () => {
      clearInterval(sender);
      sock.destroy();
      const all = Buffer.concat(parts);
      const text = headEnd < 0 ? all.toString("latin1") : all.subarray(0, headEnd).toString("latin1");
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        head: text,
        body: headEnd < 0 ? new Uint8Array() : all.subarray(headEnd + 4),
        length,
        ms: performance.now() - started,
      });
    };
    sock.on("connect", () => {
      sock.write(head);
      if (!opts.body) return;
      if (!opts.sendRate) return void sock.write(opts.body);
      // trickle: one piece every 100 ms
      const piece = Math.max(1, Math.round(opts.sendRate / 10));
      let sent = 0;
      sender = setInterval(() => {
        if (sent >= opts.body!.length || sock.destroyed) return clearInterval(sender);
        sock.write(opts.body!.subarray(sent, sent + piece));
        sent += piece;
      }, 100);
    });
    sock.on("data", (chunk: Buffer) => {
      parts.push(chunk);
      received += chunk.length;
      if (headEnd < 0) {
        const all = Buffer.concat(parts);
        headEnd = all.indexOf("\r\n\r\n");
        if (headEnd < 0) return;
        length = Number(/\r\ncontent-length: *(\d+)/i.exec(all.subarray(0, headEnd).toString("latin1"))?.[1] ?? 0);
        readStart = performance.now();
        received = all.length - headEnd - 4;
      }
      if (received >= length) return finish();
      if (opts.readRate) {
        const ahead = (received / opts.readRate) * 1000 - (performance.now() - readStart);
        if (ahead > 0) {
          sock.pause();
          setTimeout(() => sock.resume(), ahead);
        }
      }
    });
    sock.on("close", finish);
    sock.on("error", () => {});
  });
}

const requestHead = (method: string, target: string, headers: Record<string, string>) =>
  [`${method} ${target} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n");

/** GET /slowdl/big read by test/fixtures/slow_reader.py at `rate` bytes/s. */
async function slowGet(base: string, accessKey: string, secret: string, headers: Record<string, string> = {}, rate = 3_000_000) {
  const u = new URL(base);
  const head = requestHead("GET", "/slowdl/big", await signRaw("GET", base, "/slowdl/big", headers, accessKey, secret));
  const reader = Bun.spawn(["python3", `${import.meta.dir}/../fixtures/slow_reader.py`, u.hostname, u.port, String(rate)], { stdin: new TextEncoder().encode(head), stdout: "pipe" });
  return JSON.parse(await new Response(reader.stdout).text());
}

describe("slow downloads", () => {
  // MinIO cuts a connection whose write blocks longer than its idle timeout (30 s by default): a
  // dedicated server with 1 s and a reader at 3 MB/s show in 25 s what 30 s shows at 100 kB/s.
  let minio: MinioServer;
  let osp: OspInstance;
  const size = 64 * 1024 * 1024;
  const object = randomBytes(size);

  beforeAll(async () => {
    minio = await startMinio("slow", { env: { MINIO_IDLE_TIMEOUT: "1s" } });
    const backend = backendClient({ ...minio, region: env.region });
    await backend.send(new CreateBucketCommand({ Bucket: "slowdl" }));
    await backend.send(new PutObjectCommand({ Bucket: "slowdl", Key: "big", Body: object }));
    const port = await freePort();
    osp = await startOsp({ configToml: serverToml(port, { workers: 1 }) + keyToml("SLOWKEY", "slow-secret") + bucketToml("slowdl", minio) });
  });
  afterAll(async () => {
    await osp?.stop();
    await minio?.stop();
  });

  test("a reader at 3 MB/s gets the whole object through osp, as it does from the backend directly", async () => {
    const [direct, proxied] = await Promise.all([
      slowGet(minio.endpoint, minio.accessKey, minio.secretKey),
      slowGet(osp.endpoint, "SLOWKEY", "slow-secret"),
    ]);
    expect(direct).toEqual({ status: 200, length: size, received: size, sha256: sha256(object) });
    expect(proxied).toEqual({ status: 200, length: size, received: size, sha256: sha256(object) });
  }, 60_000);

  // an open-ended range, as Hadoop's s3a reads on, resumed the same way
  test("a ranged reader at 3 MB/s gets the whole rest of the object through osp", async () => {
    const from = 1_000_000;
    const proxied = await slowGet(osp.endpoint, "SLOWKEY", "slow-secret", { range: `bytes=${from}-` });
    expect(proxied).toEqual({ status: 206, length: size - from, received: size - from, sha256: sha256(object.subarray(from)) });
  }, 60_000);
});

describe("slow uploads and the cap on backend requests", () => {
  // each window of 2 s spent waiting for a body must bring 2000 bytes; 2 backend requests at once
  let osp: OspInstance;
  const backend = backendClient(env.minioA);
  const bucket = env.bucketA;
  const stored = async (key: string) =>
    backend.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(() => true, () => false);

  beforeAll(async () => {
    const port = await freePort();
    osp = await startOsp({
      configToml:
        serverToml(port, { workers: 1, body_timeout: 2, min_body_rate: 1000, max_backend_requests: 2, backend_queue_timeout: 1 }) +
        keyToml(env.accessKey, env.secretKey) + bucketToml(bucket, env.minioA) +
        bucketToml("down", { endpoint: `http://127.0.0.1:${env.downPort}`, accessKey: "x", secretKey: "y" }),
    });
  });
  afterAll(() => osp?.stop());

  const signed = async (method: string, key: string, headers: Record<string, string> = {}, target = `/${bucket}/${key}`) =>
    requestHead(method, target, await signRaw(method, osp.endpoint, target, headers, env.accessKey, env.secretKey));
  const put = async (key: string, body: Uint8Array, sendRate?: number) =>
    exchange(osp.endpoint, await signed("PUT", key, { "content-length": String(body.length) }), { body, sendRate });
  const get = async (key: string) => exchange(osp.endpoint, await signed("GET", key));
  const code = (x: Exchange) => xmlCode(new TextDecoder().decode(x.body));

  /** An upload at 2 kB/s (fast enough) of 200 kB: it holds a backend request until `stop`. */
  async function holder(key: string) {
    const u = new URL(osp.endpoint);
    const sock = connect(Number(u.port), u.hostname);
    sock.on("error", () => {});
    sock.write(await signed("PUT", key, { "content-length": "200000" }));
    const timer = setInterval(() => sock.write(new Uint8Array(200)), 100);
    await Bun.sleep(300);
    return { stop: () => (clearInterval(timer), sock.destroy()) };
  }

  /** With one request held, another is served at once: no slot was lost. */
  async function expectSlotsFree() {
    const h = await holder(`${prefix}probe-holder`);
    const r = await get(`${prefix}missing`);
    h.stop();
    expect(r.status).toBe(404);
    expect(code(r)).toBe("NoSuchKey");
    expect(r.ms).toBeLessThan(900);
  }

  test("a body that trickles, or stops, is answered RequestTimeout and nothing is stored", async () => {
    // an aws-chunked body is decoded on its way, a plain one piped as it is: both keep the same pace
    const chunked = Buffer.from(`1388\r\n${"x".repeat(5000)}\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n`);
    const chunkedHead = {
      "content-length": String(chunked.length), "content-encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
      "x-amz-decoded-content-length": "5000", "x-amz-trailer": "x-amz-checksum-crc32",
    };
    const [trickle, stalled] = await Promise.all([
      put(`${prefix}trickle`, randomBytes(5000), 10),
      exchange(osp.endpoint, await signed("PUT", `${prefix}stalled`, { "content-length": "5000" }), { body: randomBytes(100), sendRate: 0 }),
    ]);
    // after those: this osp has two backend slots
    const stalledChunked = await exchange(osp.endpoint, await signed("PUT", `${prefix}stalled-chunked`, chunkedHead), { body: chunked.subarray(0, 100), sendRate: 0 });
    expect(await stored(`${prefix}stalled-chunked`)).toBe(false);
    for (const r of [trickle, stalled, stalledChunked]) {
      expect(r.status).toBe(400);
      expect(r.head).toMatch(/content-type: application\/xml/i);
      expect(r.head).toMatch(/connection: close/i);
      expect(code(r)).toBe("RequestTimeout");
      expect(new TextDecoder().decode(r.body)).toContain("Your socket connection to the server was not read from or written to within the timeout period.");
      expect(r.ms).toBeGreaterThan(1900);
      expect(r.ms).toBeLessThan(4000);
    }
    expect(await stored(`${prefix}trickle`)).toBe(false);
    expect(await stored(`${prefix}stalled`)).toBe(false);
  });

  test("a body slower than the backend but above the minimum rate is stored whole", async () => {
    const body = randomBytes(9000);
    const r = await put(`${prefix}steady`, body, 3000);
    expect(r.status).toBe(200);
    expect(r.ms).toBeGreaterThan(2500); // longer than one window
    const got = await backend.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}steady` }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(body));
  });

  test("beyond the cap a request waits, then gets SlowDown; the backend sees nothing of it", async () => {
    const holders = [await holder(`${prefix}hold1`), await holder(`${prefix}hold2`)];
    const [refusedGet, refusedPut] = await Promise.all([get(`${prefix}missing`), put(`${prefix}refused`, randomBytes(10))]);
    for (const r of [refusedGet, refusedPut]) {
      expect(r.status).toBe(503);
      expect(code(r)).toBe("SlowDown");
      expect(r.ms).toBeGreaterThan(900);
    }
    expect(await stored(`${prefix}refused`)).toBe(false);
    // a client that goes away gives its slot to the first in the queue
    const queued = get(`${prefix}missing`);
    await Bun.sleep(200);
    holders[0]!.stop();
    const served = await queued;
    expect(served.status).toBe(404);
    expect(served.ms).toBeLessThan(900);
    holders[1]!.stop();
    expect(await stored(`${prefix}hold1`)).toBe(false);
  });

  test("every way a request ends gives its slot back", async () => {
    // success, an error answered by the backend, a backend that cannot be reached
    for (let i = 0; i < 3; i++) {
      expect((await put(`${prefix}ok${i}`, randomBytes(100))).status).toBe(200);
      expect((await get(`${prefix}ok${i}`)).status).toBe(200);
      expect((await get(`${prefix}missing`)).status).toBe(404);
      const down = await exchange(osp.endpoint, await signed("GET", "k", {}, "/down/k"));
      expect(down.status).toBe(502);
      expect(code(down)).toBe("BadGateway");
    }
    await expectSlotsFree();
    // a body too slow, a client that aborts a download and one that aborts an upload
    await put(`${prefix}slow-again`, randomBytes(5000), 10);
    await put(`${prefix}big`, randomBytes(4 * 1024 * 1024));
    for (let i = 0; i < 3; i++) {
      const u = new URL(osp.endpoint);
      const sock = connect(Number(u.port), u.hostname);
      sock.write(await signed("GET", `${prefix}big`));
      await new Promise((r) => sock.once("data", r));
      sock.destroy();
      (await holder(`${prefix}aborted${i}`)).stop();
    }
    await Bun.sleep(200);
    await expectSlotsFree();
  });
});

test("a client that sends its headers slowly is disconnected", async () => {
  const started = performance.now();
  const u = new URL(env.ospEndpoint);
  const sock = connect(Number(u.port), u.hostname);
  sock.on("error", () => {});
  let answer = "";
  sock.on("data", (d) => (answer += d));
  sock.write(`GET /${env.bucketA}/x HTTP/1.1\r\nHost: ${u.host}\r\n`);
  let n = 0;
  const timer = setInterval(() => sock.write(`x-slow-${n++}: y\r\n`), 1000);
  await new Promise((r) => sock.once("close", r));
  clearInterval(timer);
  expect(performance.now() - started).toBeLessThan(20_000);
  expect(answer).not.toMatch(/^HTTP\/1\.1 [23]/);
}, 30_000);
