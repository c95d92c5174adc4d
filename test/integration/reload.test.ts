/**
 * Hot reload: SIGHUP re-reads osp.toml while clients keep going. Over several reloads keys are
 * removed and added and a bucket is re-pointed from one MinIO to the other. Requests valid under
 * both configurations never fail; the others change outcome once osp logs the new generation as
 * active; a bad file or a change that needs a restart changes nothing; a request in flight
 * finishes on the configuration it started with; a reloaded hooks module is used afresh.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { request } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bucketToml, keyToml, serverToml, type Backend } from "../harness/env.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { backendClient, env, randomBytes, sdkClient, sha256, signRaw, uniquePrefix } from "./util.ts";

const prefix = uniquePrefix("reload");
/** A backend bucket of this name on both MinIOs, each holding a different `where` object. */
const moved = `reload-${Date.now().toString(36)}`;
const secretOf = (key: string) => `secret-of-${key}`;
const [STAY, GONE, NEW] = ["RELOADSTAY", "RELOADGONE", "RELOADNEW"];
const BIG = 64 * 1024 * 1024;
const big = randomBytes(BIG);

/** "ok", the S3 error code, or what else went wrong. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return e instanceof S3ServiceException ? e.name : `error: ${e}`;
  }
}

/** An object's content, read to the end (an unread body would keep its connection). */
const read = (s3: S3Client, bucket: string, key: string) => s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then((r) => r.Body!.transformToString());

/** osp.toml with these frontend keys, env.bucketA on MinIO A, and bucket `moving` on the given MinIO. */
const configToml = (port: number, workers: number, keys: string[], movingTo: Backend, extra = "") =>
  serverToml(port, { workers }) + keys.map((k) => keyToml(k, secretOf(k))).join("") +
  bucketToml(env.bucketA, env.minioA) + bucketToml("moving", movingTo, { backend_bucket: moved }) + extra;

const count = (text: string, line: string) => text.split("\n").filter((l) => l.includes(line)).length;

/** Writes osp.toml, sends SIGHUP and waits for the line that says how it went: the ms that took. */
async function reload(osp: OspInstance, toml: string, line: string): Promise<number> {
  writeFileSync(osp.configPath, toml);
  const before = count(osp.output(), line);
  const sent = performance.now();
  process.kill(osp.proc.pid, "SIGHUP");
  while (count(osp.output(), line) === before && performance.now() - sent < 10_000) await Bun.sleep(5);
  expect(osp.output()).toContain(line);
  expect(count(osp.output(), line)).toBe(before + 1);
  return performance.now() - sent;
}

beforeAll(async () => {
  for (const [backend, where] of [[env.minioA, "on A"], [env.minioB, "on B"]] as const) {
    const s3 = backendClient(backend);
    await s3.send(new CreateBucketCommand({ Bucket: moved }));
    await s3.send(new PutObjectCommand({ Bucket: moved, Key: "where", Body: where }));
  }
  await backendClient(env.minioA).send(new PutObjectCommand({ Bucket: moved, Key: "big", Body: big }));
  await backendClient(env.minioA).send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}fixed`, Body: "fixed" }));
});

afterAll(async () => {
  const a = backendClient(env.minioA);
  for (const key of ["fixed", "inflight-put"]) await a.send(new DeleteObjectCommand({ Bucket: env.bucketA, Key: prefix + key })).catch(() => {});
});

/** What each configuration of the sequence lets the changing requests do. */
interface Expectation {
  gone: string;
  new: string;
  where: string;
}
const GEN1: Expectation = { gone: "ok", new: "InvalidAccessKeyId", where: "on A" };
const GEN2: Expectation = { gone: "InvalidAccessKeyId", new: "ok", where: "on B" };

for (const workers of [1, 2]) {
  describe(`reload with ${workers} worker${workers > 1 ? "s" : ""}`, () => {
    let osp: OspInstance;
    let port: number;
    beforeAll(async () => {
      port = await freePort();
      osp = await startOsp({ configToml: configToml(port, workers, [STAY, GONE], env.minioA) });
    });
    afterAll(async () => {
      expect(await osp.stop()).toBe(0);
    });

    test("under load: keys removed and added, a bucket re-pointed, a bad file and a port change refused", async () => {
      // what the changing requests may get: one configuration once its line is logged, either of two from SIGHUP to that line
      const phases: Expectation[][] = [[GEN1]];
      const seen: { what: keyof Expectation; got: string; from: number; to: number }[] = [];
      const stayFailures: string[] = [];
      let stayRequests = 0;
      let running = true;
      const took: number[] = [];

      const stay = sdkClient(osp.endpoint, STAY, secretOf(STAY));
      const clients = { gone: sdkClient(osp.endpoint, GONE, secretOf(GONE)), new: sdkClient(osp.endpoint, NEW, secretOf(NEW)) };
      const record = async (what: keyof Expectation, request: () => Promise<string>) => {
        const from = phases.length - 1;
        const got = await request();
        seen.push({ what, got, from, to: phases.length - 1 });
        return got;
      };
      const stayLoop = async (n: number) => {
        for (let i = 0; running; i++) {
          const key = `${prefix}stay-${n}-${i % 4}`;
          const body = randomBytes(1024 + ((i * 997) % 8192));
          const put = await outcome(stay.send(new PutObjectCommand({ Bucket: env.bucketA, Key: key, Body: body })));
          let got = "";
          const get = await outcome(stay.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key })).then(async (r) => (got = sha256(await r.Body!.transformToByteArray()))));
          const where = await record("where", () => read(stay, "moving", "where").catch((e) => `error: ${e}`));
          stayRequests += 3;
          if (put !== "ok" || get !== "ok" || got !== sha256(body)) stayFailures.push(`${key}: put ${put}, get ${get}`);
          if (where !== "on A" && where !== "on B") stayFailures.push(`moving/where: ${where}`);
        }
      };
      const changingLoop = async (what: "gone" | "new") => {
        while (running) await record(what, () => outcome(read(clients[what], env.bucketA, `${prefix}fixed`)));
      };
      const loops = [stayLoop(0), stayLoop(1), changingLoop("gone"), changingLoop("new")];
      const step = async (toml: string, line: string, next: Expectation | null) => {
        await Bun.sleep(1500);
        const current = phases.at(-1)!;
        if (next) phases.push([...current, next]);
        took.push(await reload(osp, toml, line));
        if (next) phases.push([next]);
      };

      try {
        await step(configToml(port, workers, [STAY, NEW], env.minioB), "generation 2 active (2 buckets, 2 keys)", GEN2);
        await step(configToml(port, workers, [STAY, NEW], env.minioB).replace(env.minioB.endpoint, "ftp://127.0.0.1:1"),
          "buckets.moving.endpoint: scheme must be http or https, found ftp; not reloaded, generation 2 stays active", null);
        const otherPort = port + 1;
        await step(configToml(otherPort, workers, [STAY, NEW], env.minioB),
          `server.http_port: changed from ${port} to ${otherPort}, which needs a restart; not reloaded, generation 2 stays active`, null);
        await step(configToml(port, workers, [STAY, GONE], env.minioA), "generation 3 active (2 buckets, 2 keys)", GEN1);
        await Bun.sleep(1500);
      } finally {
        running = false;
        await Promise.all(loops);
      }

      console.log(`${workers} worker(s): ${stayRequests} requests valid under every configuration, ${seen.length} others, 4 SIGHUPs answered in ${took.map((ms) => ms.toFixed(0)).join(", ")} ms`);
      expect(stayFailures).toEqual([]);
      // a request may get what any configuration in force while it ran allows; one that ran within one configuration, only that
      const wrong = seen.filter((s) => !phases.slice(s.from, s.to + 1).flat().some((e) => e[s.what] === s.got));
      expect(wrong).toEqual([]);
      // every configuration was really exercised by every kind of request
      for (const e of [GEN1, GEN2]) {
        for (const what of ["gone", "new", "where"] as const) expect(seen.some((s) => s.what === what && s.from === s.to && phases[s.from]!.length === 1 && phases[s.from]![0] === e)).toBe(true);
      }
      expect(osp.output()).not.toContain(secretOf(STAY));
    }, 120_000);

    test("requests in flight finish on the configuration they started with", async () => {
      const gone = sdkClient(osp.endpoint, GONE, secretOf(GONE));
      // a download from MinIO A, read slowly across a reload that re-points its bucket to MinIO B and removes its key
      const download = await gone.send(new GetObjectCommand({ Bucket: "moving", Key: "big" }));
      const reader = download.Body!.transformToWebStream().getReader();
      const first = await reader.read();
      // an upload signed with the key about to go, half sent
      const target = `/${env.bucketA}/${prefix}inflight-put`;
      const body = randomBytes(8 * 1024 * 1024);
      // "100 Continue" comes once osp has authenticated and authorized it
      const headers = await signRaw("PUT", osp.endpoint, target, { "content-length": String(body.length), expect: "100-continue" }, GONE, secretOf(GONE));
      const put = request({ host: "127.0.0.1", port, method: "PUT", path: target, headers });
      const status = new Promise<number>((resolve, reject) => put.on("response", (res) => resolve(res.resume().statusCode!)).on("error", reject));
      await new Promise((resolve) => put.once("continue", resolve));
      put.write(body.subarray(0, body.length / 2));

      await reload(osp, configToml(port, workers, [STAY, NEW], env.minioB), "generation 4 active");
      expect(await outcome(read(gone, env.bucketA, `${prefix}fixed`))).toBe("InvalidAccessKeyId");

      put.end(body.subarray(body.length / 2));
      expect(await status).toBe(200);
      const stored = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}inflight-put` }));
      expect(sha256(await stored.Body!.transformToByteArray())).toBe(sha256(body));

      const h = new Bun.CryptoHasher("sha256").update(first.value!);
      let n = first.value!.length;
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        h.update(r.value);
        n += r.value.length;
      }
      expect([n, h.digest("hex")]).toEqual([BIG, sha256(big)]);
      expect(first.value!.length).toBeLessThan(BIG); // it was in flight
    }, 60_000);
  });
}

describe("a reloaded hooks module", () => {
  let osp: OspInstance;
  let dir: string;
  const module = (known: string[], denied: string) => `
export const lookupSecret = (key) => (${JSON.stringify(known)}.includes(key) ? "hooked-secret" : null);
export const authorize = (token, bucket, request) => request.key !== ${JSON.stringify(prefix + denied)};
`;
  const toml = (port: number) => serverToml(port, { workers: 2 }) + `[hooks]\nmodule = ${JSON.stringify(join(dir, "hooks.ts"))}\n` + bucketToml(env.bucketA, env.minioA, { ttl: 600 });
  /** Several fresh connections, so that both workers are asked: the outcomes seen. */
  const outcomes = async (key: string, object: string) => {
    const got = new Set<string>();
    for (let i = 0; i < 6; i++) got.add(await outcome(read(sdkClient(osp.endpoint, key, "hooked-secret"), env.bucketA, prefix + object)));
    return [...got];
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "osp-reload-hooks-"));
    writeFileSync(join(dir, "hooks.ts"), module(["HOOKED1", "HOOKED3"], "a"));
    for (const object of ["a", "b"]) await backendClient(env.minioA).send(new PutObjectCommand({ Bucket: env.bucketA, Key: prefix + object, Body: object }));
    osp = await startOsp({ configToml: toml(await freePort()) });
  });
  afterAll(async () => {
    await osp.stop();
    rmSync(dir, { recursive: true, force: true });
    for (const object of ["a", "b"]) await backendClient(env.minioA).send(new DeleteObjectCommand({ Bucket: env.bucketA, Key: prefix + object }));
  });

  test("is imported afresh, and the old one's cached answers are forgotten", async () => {
    // cached by generation 1: HOOKED1's secret, HOOKED2 unknown, HOOKED3 allowed to read b
    expect(await outcomes("HOOKED1", "b")).toEqual(["ok"]);
    expect(await outcomes("HOOKED2", "b")).toEqual(["InvalidAccessKeyId"]);
    expect(await outcomes("HOOKED3", "b")).toEqual(["ok"]);
    expect(await outcomes("HOOKED3", "a")).toEqual(["AccessDenied"]);

    writeFileSync(join(dir, "hooks.ts"), module(["HOOKED2", "HOOKED3"], "b"));
    await reload(osp, toml(osp.port), "generation 2 active (1 bucket, 0 keys)");
    expect(await outcomes("HOOKED1", "b")).toEqual(["InvalidAccessKeyId"]);
    expect(await outcomes("HOOKED2", "a")).toEqual(["ok"]);
    expect(await outcomes("HOOKED3", "b")).toEqual(["AccessDenied"]);
    expect(await outcomes("HOOKED3", "a")).toEqual(["ok"]);

    // a module that does not compile changes nothing
    writeFileSync(join(dir, "hooks.ts"), "export const lookupSecret = (key) => {\n");
    await reload(osp, toml(osp.port), "; not reloaded, generation 2 stays active");
    expect(osp.output()).toMatch(/osp: \S+: hooks\.module: .+; not reloaded, generation 2 stays active/);
    expect(await outcomes("HOOKED2", "a")).toEqual(["ok"]);
    expect(await outcomes("HOOKED3", "b")).toEqual(["AccessDenied"]);
  }, 60_000);
});
