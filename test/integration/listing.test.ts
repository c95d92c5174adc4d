/**
 * Listings of a bucket that has another name on its backend (beta → beta-real): osp rewrites the
 * bucket name in the XML. mc and Bun's S3Client ask for gzip, and MinIO gzips larger listings, so
 * the rewritten document must still be a valid answer in whatever encoding the backend chose.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { S3Client as BunS3Client } from "bun";
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backendClient, env, rawRequest, signRaw, uniquePrefix } from "./util.ts";

const prefix = uniquePrefix("listing");
const backend = backendClient(env.minioB);
const keys = Array.from({ length: 60 }, (_, i) => `${prefix}a-fairly-long-object-name-so-the-listing-is-large-${String(i).padStart(3, "0")}.parquet`);
const tmp = mkdtempSync(join(tmpdir(), "osp-listing-"));

beforeAll(async () => {
  await Promise.all(keys.map((Key) => backend.send(new PutObjectCommand({ Bucket: env.bucketBBackend, Key, Body: "x" }))));
});

afterAll(async () => {
  const listed = await backend.send(new ListObjectsV2Command({ Bucket: env.bucketBBackend, Prefix: prefix }));
  for (const o of listed.Contents ?? []) await backend.send(new DeleteObjectCommand({ Bucket: env.bucketBBackend, Key: o.Key }));
  rmSync(tmp, { recursive: true, force: true });
});

test("the backend gzips this listing when asked, so the rewrite must read gzip", async () => {
  const target = `/${env.bucketBBackend}?list-type=2&prefix=${encodeURIComponent(prefix)}`;
  const headers = await signRaw("GET", env.minioB.endpoint, target, { "accept-encoding": "gzip" }, env.minioB.accessKey, env.minioB.secretKey);
  const direct = await rawRequest(env.minioB.endpoint, "GET", target, headers);
  expect(direct.headers["content-encoding"]).toBe("gzip");
});

test("through osp, a gzip-asking client gets a correct listing under the frontend name", async () => {
  const target = `/${env.bucketB}?list-type=2&prefix=${encodeURIComponent(prefix)}`;
  const headers = await signRaw("GET", env.ospEndpoint, target, { "accept-encoding": "gzip" }, env.accessKey, env.secretKey);
  const res = await rawRequest(env.ospEndpoint, "GET", target, headers);
  expect(res.status).toBe(200);
  expect(res.headers["content-encoding"]).toBeUndefined();
  expect(Number(res.headers["content-length"])).toBe(Buffer.byteLength(res.body));
  expect(res.body).toContain(`<Name>${env.bucketB}</Name>`);
  expect(res.body).not.toContain(env.bucketBBackend);
  expect(res.body.match(/<Key>/g)!.length).toBe(keys.length);
});

test("mc lists and removes recursively through the renamed bucket", async () => {
  const mcEnv = { ...process.env, MC_HOST_osp: `http://${env.accessKey}:${env.secretKey}@${new URL(env.ospEndpoint).host}` };
  const mc = (args: string[]) => Bun.$`mc --config-dir ${join(tmp, "mc")} ${args}`.env(mcEnv).quiet();
  const listed = (await mc(["ls", "--json", `osp/${env.bucketB}/${prefix}`])).stdout.toString().trim().split("\n").map((l) => JSON.parse(l).key);
  expect(listed).toEqual(keys.map((k) => k.slice(prefix.length)));
  await mc(["rm", "--recursive", "--force", `osp/${env.bucketB}/${prefix}`]);
  expect((await backend.send(new ListObjectsV2Command({ Bucket: env.bucketBBackend, Prefix: prefix }))).KeyCount).toBe(0);
});

test("Bun's S3Client lists through the renamed bucket", async () => {
  await Promise.all(keys.map((Key) => backend.send(new PutObjectCommand({ Bucket: env.bucketBBackend, Key, Body: "x" }))));
  const s3 = new BunS3Client({ endpoint: env.ospEndpoint, accessKeyId: env.accessKey, secretAccessKey: env.secretKey, bucket: env.bucketB, region: env.region });
  const listed = await s3.list({ prefix });
  expect(listed.name).toBe(env.bucketB);
  expect(listed.contents!.map((o) => o.key)).toEqual(keys);
});
