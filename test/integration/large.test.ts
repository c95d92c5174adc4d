/**
 * Large uploads stream: a 5 GiB single PUT (aws-chunked with a trailing checksum, over HTTPS) and a
 * 10 GiB multipart upload (signed chunks, mc over HTTP), each byte-exact, through a one-process osp
 * whose peak memory shows that nothing was buffered. (bench/ measures the memory properly.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Readable } from "node:stream";
import { readFileSync, writeFileSync } from "node:fs";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { backendClient, blocks, env, sha256OfStream, uniquePrefix } from "./util.ts";

const GiB = 1024 * 1024 * 1024;
const prefix = uniquePrefix("large");
let osp: OspInstance;
let httpsPort: number;

const statusMiB = (pid: number, field: "VmRSS" | "VmHWM") => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
/** The worker's RSS now, after resetting the kernel's record of its peak, so each test measures its own. */
function idleRssMiB(pid: number): number {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
  return statusMiB(pid, "VmRSS");
}

beforeAll(async () => {
  httpsPort = await freePort();
  const tls = { cert: process.env.OSP_CA_BUNDLE!, key: process.env.OSP_TLS_KEY! };
  osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 1, https_port: httpsPort, tls_cert: tls.cert, tls_key: tls.key }) +
      keyToml(env.accessKey, env.secretKey) + bucketToml(env.bucketA, env.minioA),
  });
});
afterAll(async () => {
  await osp?.stop();
  const backend = backendClient(env.minioA);
  for (const key of ["5gib", "10gib"]) await backend.send(new DeleteObjectCommand({ Bucket: env.bucketA, Key: prefix + key })).catch(() => {});
});

describe("large uploads", () => {
  test("5 GiB in one PUT: @aws-sdk/client-s3 over HTTPS, aws-chunked with a CRC32 trailer", async () => {
    const size = 5 * GiB;
    const idle = idleRssMiB(osp.proc.pid);
    const s3 = new S3Client({
      endpoint: `https://127.0.0.1:${httpsPort}`, region: env.region, forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: env.accessKey, secretAccessKey: env.secretKey },
    });
    const sent = new Bun.CryptoHasher("sha256");
    const body = Readable.from((function* () {
      for (const b of blocks(size)) {
        sent.update(b);
        yield b;
      }
    })());
    await s3.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}5gib`, Body: body, ContentLength: size }));
    const got = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}5gib` }));
    expect(await sha256OfStream(got.Body as AsyncIterable<Uint8Array>)).toEqual([sent.digest("hex"), size]);
    const peak = statusMiB(osp.proc.pid, "VmHWM");
    console.log(`osp RSS: ${idle.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB during a 5 GiB upload`);
    expect(peak - idle).toBeLessThan(256);
  }, 15 * 60_000);

  test("10 GiB multipart: mc over HTTP, signed chunks, parts in parallel", async () => {
    const size = 10 * GiB;
    const idle = idleRssMiB(osp.proc.pid);
    const mcEnv = { ...process.env, MC_HOST_osp: `http://${env.accessKey}:${env.secretKey}@${new URL(osp.endpoint).host}` };
    const sent = new Bun.CryptoHasher("sha256");
    const mc = Bun.spawn(["mc", "--config-dir", `${process.env.TMPDIR ?? "/tmp"}/osp-large-mc`, "pipe", "--quiet", `osp/${env.bucketA}/${prefix}10gib`], {
      env: mcEnv, stdin: "pipe", stdout: "ignore", stderr: "pipe",
    });
    for (const b of blocks(size)) {
      sent.update(b);
      mc.stdin.write(b);
      await mc.stdin.flush();
    }
    await mc.stdin.end();
    expect(await mc.exited).toBe(0);
    const got = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}10gib` }));
    expect(got.ETag).toMatch(/-\d+"$/); // really multipart
    expect(await sha256OfStream(got.Body as AsyncIterable<Uint8Array>)).toEqual([sent.digest("hex"), size]);
    const peak = statusMiB(osp.proc.pid, "VmHWM");
    console.log(`osp RSS: ${idle.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB during a 10 GiB multipart upload`);
    expect(peak - idle).toBeLessThan(256);
  }, 20 * 60_000);
});
