/** A hooks module (test/fixtures/hooks.ts) deciding secrets, backend credentials and access. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DeleteObjectCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { serverToml } from "../harness/env.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { env, sdkClient, uniquePrefix } from "./util.ts";

const prefix = uniquePrefix("hooks");
const hookLog = join(mkdtempSync(join(tmpdir(), "osp-hooks-")), "calls.log");
const calls = (line: string) => readFileSync(hookLog, "utf8").split("\n").filter((l) => l === line).length;
let osp: OspInstance;
const client = (ak: string) => sdkClient(osp.endpoint, ak, `secret-of-${ak}`);

async function failure(p: Promise<unknown>): Promise<[string, number | undefined]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof S3ServiceException) return [e.name, e.$metadata.httpStatusCode];
    throw e;
  }
  return ["ok", 200];
}

beforeAll(async () => {
  writeFileSync(hookLog, "");
  // one worker, so that call counts are exact (each worker caches on its own)
  osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 1 }) + `
[hooks]
module = "${resolve(import.meta.dir, "../fixtures/hooks.ts")}"
timeout_ms = 1000

[buckets.${env.bucketA}]
endpoint = "${env.minioA.endpoint}"
addressing_style = "path"
ttl = 60

[buckets.apikey-bucket]
endpoint = "${env.minioA.endpoint}"
addressing_style = "path"
backend_bucket = "${env.bucketA}"

[buckets.crlf-bucket]
endpoint = "${env.minioA.endpoint}"
addressing_style = "path"
backend_bucket = "${env.bucketA}"

[buckets.uncached]
endpoint = "${env.minioA.endpoint}"
addressing_style = "path"
backend_bucket = "${env.bucketA}"
ttl = 0
`,
    env: { HOOK_LOG: hookLog, HOOK_BACKEND_CREDS: JSON.stringify({ accessKey: env.minioA.accessKey, secretKey: env.minioA.secretKey }) },
  });
});
afterAll(() => osp?.stop());

describe("hooks", () => {
  test("lookupSecret admits a key that is not in the keystore; fetchCredentials signs for the backend", async () => {
    const s3 = client("HOOKUSER1");
    await s3.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}a`, Body: "via hooks" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}a` }));
    expect(await got.Body!.transformToString()).toBe("via hooks");
    expect(await failure(client("STRANGER").send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}a` })))).toEqual(["InvalidAccessKeyId", 403]);
  });

  test("results are cached per TTL and concurrent misses call a hook once", async () => {
    const s3 = client("HOOKUSER2");
    await s3.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}c`, Body: "c" }));
    await Promise.all(Array.from({ length: 12 }, () => s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}c` }))));
    expect(calls(`lookupSecret HOOKUSER2`)).toBe(1);
    expect(calls(`fetchCredentials HOOKUSER2 ${env.bucketA}`)).toBe(1);
    expect(calls(`authorize HOOKUSER2 ${env.bucketA} GetObject ${prefix}c`)).toBe(1);
    expect(calls(`authorize HOOKUSER2 ${env.bucketA} PutObject ${prefix}c`)).toBe(1);
    // decisions are per key: another object is asked about again
    await failure(s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}other` })));
    expect(calls(`authorize HOOKUSER2 ${env.bucketA} GetObject ${prefix}other`)).toBe(1);
    // ttl = 0: every request asks
    for (let i = 0; i < 3; i++) await s3.send(new GetObjectCommand({ Bucket: "uncached", Key: `${prefix}c` }));
    expect(calls(`authorize HOOKUSER2 uncached GetObject ${prefix}c`)).toBe(3);
  });

  test("authorize decides by operation and key", async () => {
    const reader = client("HOOKUSER-READER");
    expect(await failure(reader.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}a` })))).toEqual(["ok", 200]);
    expect(await failure(reader.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}r`, Body: "x" })))).toEqual(["AccessDenied", 403]);
    expect(await failure(client("HOOKUSER1").send(new GetObjectCommand({ Bucket: env.bucketA, Key: "private/x" })))).toEqual(["AccessDenied", 403]);
  });

  test("a hook that throws or hangs denies the request and the worker lives on", async () => {
    const s3 = client("HOOKUSER1");
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: "throws/x" })))).toEqual(["AccessDenied", 403]);
    const started = Date.now();
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: "slow/x" })))).toEqual(["AccessDenied", 403]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await failure(client("HOOKTHROWS").send(new GetObjectCommand({ Bucket: env.bucketA, Key: "x" })))).toEqual(["ServiceUnavailable", 503]);
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}a` })))).toEqual(["ok", 200]);
  });

  test("backend credentials with a line end in them are refused: nothing reaches the backend, nothing of them is logged", async () => {
    const key = `${prefix}crlf`;
    expect(await failure(client("HOOKUSER1").send(new PutObjectCommand({ Bucket: "crlf-bucket", Key: key, Body: "x" })))).toEqual(["AccessDenied", 403]);
    expect(await failure(sdkClient(env.minioA.endpoint, env.minioA.accessKey, env.minioA.secretKey).send(new GetObjectCommand({ Bucket: env.bucketA, Key: key })))).toEqual(["NoSuchKey", 404]);
    expect(osp.output()).toContain("fetchCredentials returned an access key or session token with a control character");
    expect(osp.output()).not.toContain("public-read");
  });

  test("ListBuckets asks authorize about each bucket", async () => {
    const listed = await client("HOOKUSER1").send(new ListBucketsCommand({}));
    // apikey-bucket's API key cannot be exchanged here (no IAM endpoint), so its existence is unknown: left out
    expect(listed.Buckets!.map((b) => b.Name).sort()).toEqual(["alpha", "uncached"]);
    expect(calls(`authorize HOOKUSER1 uncached ListBuckets `)).toBe(1);
  });
});

test("startServer(config, hooks) from a script of one's own, with hooks as plain functions", async () => {
  const dir = mkdtempSync(join(tmpdir(), "osp-embed-"));
  const port = await freePort();
  const repo = resolve(import.meta.dir, "../..");
  writeFileSync(join(dir, "server.ts"), `
import { startServer } from ${JSON.stringify(join(repo, "osp.ts"))};
import { parseConfig } from ${JSON.stringify(join(repo, "src/config.ts"))};
const config = parseConfig(${JSON.stringify(serverToml(port, { workers: 1 }) + `
[buckets.${env.bucketA}]
endpoint = "${env.minioA.endpoint}"
addressing_style = "path"
access_key = "${env.minioA.accessKey}"
secret_key = "${env.minioA.secretKey}"
`)}, process.env, import.meta.dir);
startServer(config, {
  lookupSecret: (accessKey) => (accessKey === "EMBEDDED" ? "embedded-secret" : null),
  authorize: async (token, bucket, request) => request.operation !== "DeleteObject",
});
`);
  const proc = Bun.spawn(["bun", join(dir, "server.ts")], { stdout: "pipe", stderr: "pipe" });
  try {
    const s3 = sdkClient(`http://127.0.0.1:${port}`, "EMBEDDED", "embedded-secret");
    let put = "";
    for (let i = 0; i < 50 && put !== "ok"; i++) {
      await Bun.sleep(100);
      put = await failure(s3.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}embedded`, Body: "e" }))).then(([c]) => c, () => "not listening yet");
    }
    expect(put).toBe("ok");
    expect(await failure(s3.send(new DeleteObjectCommand({ Bucket: env.bucketA, Key: `${prefix}embedded` })))).toEqual(["AccessDenied", 403]);
  } finally {
    proc.kill();
    await proc.exited;
  }
});
