/**
 * IBM COS with IAM API keys: osp exchanges the key for a bearer token at an IAM token endpoint
 * and sends the token upstream. IBM is out of reach here, so a stand-in speaks IAM's documented
 * token protocol and another checks the bearer token in front of MinIO (test/harness/ibm.ts); the
 * objects are MinIO's, written and read by the AWS SDK and mc through osp.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CreateBucketCommand, DeleteBucketCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { keyToml, serverToml } from "../harness/env.ts";
import { startCosStandIn, startIamStandIn, type CosStandIn, type IamStandIn } from "../harness/ibm.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { backendClient, env, randomBytes, rawRequest, sdkClient, sha256, signRaw, uniquePrefix, xmlCode } from "./util.ts";

const prefix = uniquePrefix("ibm");
const KEYS = { main: "apikey-main-7f3a9c", many: "apikey-many-2b8d41", short: "apikey-short-90ce55", slow: "apikey-slow-51aa07", hook: "an-ibm-cos-api-key" };
const WRONG_KEY = "apikey-revoked-d00d13";
let iam: IamStandIn;
let cos: CosStandIn;
let osp: OspInstance;
const s3 = () => sdkClient(osp.endpoint);

/** A bucket on the COS stand-in, i.e. on MinIO A's `alpha`, reached with an API key. */
const ibmBucket = (name: string, extra: string) => `
[buckets.${name}]
endpoint = "${cos.endpoint}"
addressing_style = "path"
backend_bucket = "${env.bucketA}"
${extra}
`;

beforeAll(async () => {
  iam = await startIamStandIn(Object.values(KEYS));
  cos = await startCosStandIn(iam, env.minioA);
  // one worker: each worker has its own token cache, and the counts below are exact
  osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 1, iam_endpoint: iam.endpoint, iam_timeout: 1, access_log: true }) +
      keyToml(env.accessKey, env.secretKey) +
      `[hooks]\nmodule = "${resolve(import.meta.dir, "../fixtures/hooks.ts")}"\n` +
      ibmBucket("ibm", `apikey = "${KEYS.main}"\nservice_instance_id = "d6f04d83-6c4f-4a62-a165-696756d63903"`) +
      ibmBucket("ibm-many", `apikey = "${KEYS.many}"`) +
      ibmBucket("ibm-short", `apikey = "${KEYS.short}"`) +
      ibmBucket("ibm-slow", `apikey = "${KEYS.slow}"`) +
      ibmBucket("ibm-revoked", `apikey = "${WRONG_KEY}"`) +
      ibmBucket("apikey-bucket", "") + // the hooks module's fetchCredentials returns an API key for it
      `[buckets.ibm-create]\nendpoint = "${cos.endpoint}"\naddressing_style = "path"\nbackend_bucket = "ibm-created-${Date.now().toString(36)}"\napikey = "${KEYS.main}"\nservice_instance_id = "d6f04d83-6c4f-4a62-a165-696756d63903"\n`,
  });
});
afterAll(async () => {
  await osp?.stop();
  await cos?.stop();
  await iam?.stop();
});

/** A request osp answers itself: status, S3 error code and the body, by a raw signed request. */
async function rawGet(bucket: string, key: string) {
  const target = `/${bucket}/${key}`;
  const res = await rawRequest(osp.endpoint, "GET", target, await signRaw("GET", osp.endpoint, target, {}, env.accessKey, env.secretKey));
  return { status: res.status, code: xmlCode(res.body), body: res.body };
}

describe("IBM COS IAM API keys", () => {
  test("objects round-trip through osp with a bearer token, byte for byte on the backend", async () => {
    const client = s3();
    for (const size of [0, 1, 5 * 1024 * 1024 + 3]) {
      const data = randomBytes(size);
      await client.send(new PutObjectCommand({ Bucket: "ibm", Key: `${prefix}obj-${size}`, Body: data }));
      const back = await client.send(new GetObjectCommand({ Bucket: "ibm", Key: `${prefix}obj-${size}` }));
      expect(sha256(await back.Body!.transformToByteArray())).toBe(sha256(data));
      const stored = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}obj-${size}` }));
      expect(sha256(await stored.Body!.transformToByteArray())).toBe(sha256(data));
    }
    const mine = cos.seen.filter((r) => r.target.includes(`${prefix}obj-`));
    expect(mine.length).toBe(6);
    expect(mine.every((r) => iam.tokenValid(r.token) && r.serviceInstanceId === "d6f04d83-6c4f-4a62-a165-696756d63903")).toBe(true);
    expect(iam.exchanges.get(KEYS.main)).toBe(1);
  });

  test("mc uploads a multipart object with signed chunks; the backend gets it under the bearer token", async () => {
    const dir = mkdtempSync(join(tmpdir(), "osp-ibm-"));
    const data = randomBytes(17 * 1024 * 1024);
    writeFileSync(join(dir, "big.bin"), data);
    const mcEnv = { ...process.env, MC_HOST_osp: `http://${env.accessKey}:${env.secretKey}@${new URL(osp.endpoint).host}` };
    await Bun.$`mc --config-dir ${join(dir, "mc")} cp --quiet ${join(dir, "big.bin")} osp/ibm/${prefix}mc.bin`.env(mcEnv).quiet();
    const stored = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}mc.bin` }));
    expect(sha256(await stored.Body!.transformToByteArray())).toBe(sha256(data));
  });

  test("CreateBucket carries the bucket's ibm-service-instance-id", async () => {
    await s3().send(new CreateBucketCommand({ Bucket: "ibm-create" }));
    const create = cos.seen.findLast((r) => r.method === "PUT" && /^\/ibm-created-[^/?]+$/.test(r.target))!;
    expect(create.serviceInstanceId).toBe("d6f04d83-6c4f-4a62-a165-696756d63903");
    const backendName = create.target.slice(1);
    await backendClient(env.minioA).send(new HeadBucketCommand({ Bucket: backendName }));
    await backendClient(env.minioA).send(new DeleteBucketCommand({ Bucket: backendName }));
  });

  test("100 concurrent requests cause one token exchange", async () => {
    await backendClient(env.minioA).send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}many`, Body: "m" }));
    const client = s3();
    const answers = await Promise.all(Array.from({ length: 100 }, () => client.send(new HeadObjectCommand({ Bucket: "ibm-many", Key: `${prefix}many` }))));
    expect(answers.every((a) => a.ContentLength === 1)).toBe(true);
    expect(iam.exchanges.get(KEYS.many)).toBe(1);
  });

  test("a token is refreshed before it expires, and requests never carry an expired one", async () => {
    await backendClient(env.minioA).send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}short`, Body: "s" }));
    iam.expiresIn = 5; // renewed after 4 s
    try {
      const head = () => s3().send(new HeadObjectCommand({ Bucket: "ibm-short", Key: `${prefix}short` }));
      const issued = Date.now();
      await head();
      expect(iam.exchanges.get(KEYS.short)).toBe(1);
      await Bun.sleep(2500);
      await head();
      expect(iam.exchanges.get(KEYS.short)).toBe(1);
      await Bun.sleep(issued + 4300 - Date.now());
      await head(); // due: served with the current token while the next is fetched
      for (let i = 0; i < 40 && iam.exchanges.get(KEYS.short) === 1; i++) await Bun.sleep(50);
      expect(iam.exchanges.get(KEYS.short)).toBe(2);
      await Bun.sleep(issued + 5300 - Date.now()); // the first token has expired now
      await head();
      const tokens = new Set(cos.seen.filter((r) => r.target.endsWith(`${prefix}short`)).map((r) => r.token));
      expect(tokens.size).toBe(2);
    } finally {
      iam.expiresIn = 3600;
    }
  }, 30_000);

  test("an API key from the fetchCredentials hook is exchanged too", async () => {
    await s3().send(new PutObjectCommand({ Bucket: "apikey-bucket", Key: `${prefix}hook`, Body: "via hook" }));
    const stored = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}hook` }));
    expect(await stored.Body!.transformToString()).toBe("via hook");
    expect(iam.exchanges.get(KEYS.hook)).toBe(1);
  });

  test("a key IAM refuses is a 502 S3 error naming IAM's error, and nothing reaches the backend", async () => {
    const before = cos.seen.length;
    const res = await rawGet("ibm-revoked", `${prefix}x`);
    expect([res.status, res.code]).toEqual([502, "BadGateway"]);
    expect(res.body).toContain("BXNIM0415E: Provided API key could not be found.");
    expect(res.body).not.toContain(WRONG_KEY);
    expect(cos.seen.length).toBe(before);
    // not remembered: the next request asks IAM again
    await rawGet("ibm-revoked", `${prefix}x`);
    expect(iam.exchanges.get(WRONG_KEY)).toBe(2);
  });

  test("IAM too slow: 504 GatewayTimeout after iam_timeout", async () => {
    iam.delayMs = 2500;
    try {
      const started = Date.now();
      const res = await rawGet("ibm-slow", `${prefix}x`);
      expect([res.status, res.code]).toEqual([504, "GatewayTimeout"]);
      expect(Date.now() - started).toBeLessThan(2400);
    } finally {
      iam.delayMs = 0;
    }
  });

  test("no API key or token appears in osp's output", async () => {
    await Bun.sleep(100); // access log lines are written in batches
    const out = osp.output();
    expect(out).toContain(`"bucket":"ibm"`);
    for (const secret of [...Object.values(KEYS), WRONG_KEY, ...new Set(cos.seen.map((r) => r.token).filter(Boolean))]) expect(out).not.toContain(secret);
  });
});

test("IAM unreachable: 502 BadGateway as S3 XML, and osp carries on", async () => {
  const port = await freePort();
  const down = await startOsp({
    configToml: serverToml(port, { workers: 1, iam_endpoint: `http://127.0.0.1:${env.downPort}/identity/token` }) + keyToml(env.accessKey, env.secretKey) +
      `[buckets.ibm]\nendpoint = "${env.minioA.endpoint}"\naddressing_style = "path"\nbackend_bucket = "${env.bucketA}"\napikey = "${KEYS.main}"\n` +
      `[buckets.${env.bucketA}]\nendpoint = "${env.minioA.endpoint}"\naddressing_style = "path"\naccess_key = "${env.minioA.accessKey}"\nsecret_key = "${env.minioA.secretKey}"\n`,
  });
  try {
    const target = `/ibm/${prefix}x`;
    const res = await rawRequest(down.endpoint, "GET", target, await signRaw("GET", down.endpoint, target, {}, env.accessKey, env.secretKey));
    expect([res.status, xmlCode(res.body)]).toEqual([502, "BadGateway"]);
    expect(res.body).toContain("the IAM token endpoint could not be reached");
    expect(res.body).not.toContain(KEYS.main);
    await sdkClient(down.endpoint).send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}alive`, Body: "ok" }));
    expect(down.output()).not.toContain(KEYS.main);
  } finally {
    await down.stop();
  }
});
