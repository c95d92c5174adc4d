/**
 * presign_max_uses: a presigned URL may be used that many times, counted exactly across the
 * workers of one osp (the primary counts) and across instances sharing a real redis-server.
 * A counting pass-through in front of MinIO tells how many requests reached the backend.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { startRelay, type Relay } from "../harness/relay.ts";
import { backendClient, env, rawRequest, sdkClient, uniquePrefix, xmlCode } from "./util.ts";

const prefix = uniquePrefix("presign-limits");
const key = `${prefix}obj`;
const body = "counted object";
let relay: Relay;
let redis: RedisServer;
const started: OspInstance[] = [];

beforeAll(async () => {
  relay = await startRelay(env.minioA.endpoint);
  redis = await startRedis();
  await backendClient(env.minioA).send(new PutObjectCommand({ Bucket: env.bucketA, Key: key, Body: body }));
});
afterAll(async () => {
  await Promise.all(started.map((o) => o.stop()));
  await relay.stop();
  await redis.remove();
});

/** alpha behind the counting relay, with a limit of 5 unless said otherwise. */
const alpha = (extra: Record<string, string | number | boolean> = { presign_max_uses: 5 }) =>
  bucketToml(env.bucketA, { ...env.minioA, endpoint: relay.endpoint }, extra);
const withRedis = () => `[state]\nredis_url = "${redis.url}"\n`;

async function osp(server: Record<string, string | number | boolean>, rest = alpha()): Promise<OspInstance> {
  const o = await startOsp({ configToml: serverToml(await freePort(), server) + keyToml(env.accessKey, env.secretKey) + rest });
  started.push(o);
  return o;
}

const presignedGet = (endpoint: string, bucket = env.bucketA, expiresIn = 300) =>
  getSignedUrl(sdkClient(endpoint), new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });

/** boto3's default presigned URL, which is Signature Version 2. */
async function presignedGetV2(endpoint: string): Promise<string> {
  const script = `import boto3, sys
from botocore.config import Config
c = boto3.client("s3", endpoint_url=sys.argv[1], region_name="${env.region}", aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], config=Config(s3={"addressing_style": "path"}))
print(c.generate_presigned_url("get_object", Params={"Bucket": sys.argv[4], "Key": sys.argv[5]}, ExpiresIn=300))`;
  const url = (await Bun.$`python3 -c ${script} ${endpoint} ${env.accessKey} ${env.secretKey} ${env.bucketA} ${key}`.text()).trim();
  expect(url).toContain("Signature=");
  return url;
}

/** One use of `url` sent to the osp at `base`, under the URL's own Host (as behind a load balancer). */
async function use(url: string, base = url): Promise<string> {
  const u = new URL(url);
  const r = await rawRequest(base, "GET", u.pathname + u.search, { host: u.host });
  if (r.status === 200) expect(r.body).toBe(body);
  return r.status === 200 ? "200" : `${r.status} ${xmlCode(r.body)}`;
}

/** Sends every use at once; how many ended in each outcome. */
async function useAll(uses: [url: string, base: string][]): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  for (const o of await Promise.all(uses.map(([url, base]) => use(url, base)))) outcomes[o] = (outcomes[o] ?? 0) + 1;
  return outcomes;
}

const backendGets = () => relay.seen.filter((s) => s.startsWith(`GET /${env.bucketA}/${prefix}`)).length;

describe("presign_max_uses", () => {
  test("one instance with 3 workers: of 50 concurrent uses exactly the limit succeed, and only those reach the backend", async () => {
    const o = await osp({ workers: 3 });
    const url = await presignedGet(o.endpoint);
    const before = backendGets();
    expect(await useAll(Array(50).fill([url, url]))).toEqual({ "200": 5, "403 AccessDenied": 45 });
    expect(backendGets() - before).toBe(5);
    const refused = await fetch(url);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("This presigned URL has been used the 5 times it may be used");
    // requests signed in their header are never counted
    const client = sdkClient(o.endpoint);
    for (let i = 0; i < 7; i++) expect(await (await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }))).Body!.transformToString()).toBe(body);
  });

  test("two instances (2 workers each) sharing Redis: of 50 concurrent uses spread over both, exactly the limit succeed", async () => {
    const [a, b] = await Promise.all([osp({ workers: 2 }, alpha() + withRedis()), osp({ workers: 2 }, alpha() + withRedis())]);
    const url = await presignedGet(a!.endpoint);
    const before = backendGets();
    const outcomes = await useAll(Array.from({ length: 50 }, (_, i) => [url, i % 2 ? a!.endpoint : b!.endpoint]));
    expect(outcomes).toEqual({ "200": 5, "403 AccessDenied": 45 });
    expect(backendGets() - before).toBe(5);
    // both instances counted: each refuses the URL now
    expect([await use(url, a!.endpoint), await use(url, b!.endpoint)]).toEqual(["403 AccessDenied", "403 AccessDenied"]);
  });

  test("per-bucket limits; the count follows the signature, not the URL's spelling; failed attempts and V2 URLs", async () => {
    const o = await osp({ workers: 1, presign_max_uses: 1 },
      alpha({ presign_max_uses: 3 }) +
      bucketToml("unlimited", { ...env.minioA, endpoint: relay.endpoint }, { backend_bucket: env.bucketA, presign_max_uses: 0 }) +
      bucketToml("inherits", { ...env.minioA, endpoint: relay.endpoint }, { backend_bucket: env.bucketA }));

    const url = await presignedGet(o.endpoint);
    // a wrong signature is no use of the URL
    const forged = url.replace(/X-Amz-Signature=([0-9a-f])/, (_, c: string) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`);
    for (let i = 0; i < 4; i++) expect(await use(forged)).toBe("403 SignatureDoesNotMatch");
    // the same URL with its query in another order and other percent-encoding is the same URL
    const u = new URL(url);
    const respelled = `${u.origin}${u.pathname}?${[...u.searchParams].reverse().map(([k, v]) => `${k}=${encodeURIComponent(v).replace(/%2F/g, "%2f")}`).join("&")}`;
    expect(respelled).not.toBe(url);
    expect([await use(url), await use(respelled), await use(url), await use(respelled)]).toEqual(["200", "200", "200", "403 AccessDenied"]);

    expect(await useAll(Array(6).fill([await presignedGet(o.endpoint, "unlimited"), o.endpoint]))).toEqual({ "200": 6 });
    expect(await useAll(Array(6).fill([await presignedGet(o.endpoint, "inherits"), o.endpoint]))).toEqual({ "200": 1, "403 AccessDenied": 5 });

    const v2 = await presignedGetV2(o.endpoint);
    expect(await useAll(Array(6).fill([v2, o.endpoint]))).toEqual({ "200": 3, "403 AccessDenied": 3 });
  });

  test("a reload (SIGHUP) keeps the counts of 2 workers and applies a new limit to them", async () => {
    const o = await osp({ workers: 2 }, alpha({ presign_max_uses: 3 }));
    const url = await presignedGet(o.endpoint);
    expect(await useAll(Array(2).fill([url, url]))).toEqual({ "200": 2 });
    writeFileSync(o.configPath, serverToml(o.port, { workers: 2 }) + keyToml(env.accessKey, env.secretKey) + alpha({ presign_max_uses: 4 }));
    process.kill(o.proc.pid, "SIGHUP");
    for (let i = 0; i < 100 && !o.output().includes("generation 2 active"); i++) await Bun.sleep(50);
    expect(o.output()).toContain("generation 2 active");
    expect(await useAll(Array(6).fill([url, url]))).toEqual({ "200": 2, "403 AccessDenied": 4 });
  });

  test("Redis down: presigned requests get 503 ServiceUnavailable (logged once), others go on; counting resumes when it is back", async () => {
    const o = await osp({ workers: 1 }, alpha() + withRedis());
    const client = sdkClient(o.endpoint);
    expect(await use(await presignedGet(o.endpoint))).toBe("200");
    await redis.stop();
    try {
      for (let i = 0; i < 3; i++) {
        expect(await use(await presignedGet(o.endpoint))).toBe("503 ServiceUnavailable");
        await Bun.sleep(600);
      }
      expect(await (await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }))).Body!.transformToString()).toBe(body);
      expect(o.output().match(/redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/g)).toHaveLength(1);
    } finally {
      await redis.start();
    }
    let outcome = "";
    for (let i = 0; i < 30 && outcome !== "200"; i++, await Bun.sleep(200)) outcome = await use(await presignedGet(o.endpoint));
    expect(outcome).toBe("200");
    expect(o.output()).toContain("answers again");
  });

  test("counts expire with their URL: nothing is left in Redis once a URL and the clock-skew margin have passed", async () => {
    const o = await osp({ workers: 1, max_clock_skew: 1 }, alpha() + withRedis());
    await redis.send("FLUSHALL");
    const url = await presignedGet(o.endpoint, env.bucketA, 2);
    expect(await use(url)).toBe("200");
    const keys = (await redis.send("KEYS", ["osp:presign:*"])) as string[];
    expect(keys).toHaveLength(1);
    // a hash of the signature names the count: no signature is stored
    expect(keys[0]).not.toContain(new URL(url).searchParams.get("X-Amz-Signature")!);
    const ttl = Number(await redis.send("PTTL", [keys[0]!]));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3000);
    await Bun.sleep(ttl + 200);
    expect(await redis.send("DBSIZE")).toBe(0);
    expect(await use(url)).toBe("403 AccessDenied");
  });
});
