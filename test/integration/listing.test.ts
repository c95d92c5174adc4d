/**
 * Listings of a bucket that has another name on its backend (beta → beta-real on MinIO B, gamma →
 * gamma-real on versitygw): osp rewrites the bucket name in the XML. mc and Bun's S3Client ask for
 * gzip, and MinIO gzips larger listings, so the rewritten document must still be a valid answer in
 * whatever encoding the backend chose. mc also uploads through them, in signed chunks, which osp
 * decodes before they reach the backend.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { S3Client as BunS3Client } from "bun";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backendClient, env, randomBytes, rawRequest, sha256, signRaw, uniquePrefix } from "./util.ts";

const tmp = mkdtempSync(join(tmpdir(), "osp-listing-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each([
  { name: env.bucketB, backendName: env.bucketBBackend, server: env.minioB, gzips: true },
  { name: env.bucketV, backendName: env.bucketVBackend, server: env.versitygw, gzips: false },
])("$name → $backendName", ({ name, backendName, server, gzips }) => {
  const prefix = uniquePrefix("listing");
  const backend = backendClient(server);
  const keys = Array.from({ length: 60 }, (_, i) => `${prefix}a-fairly-long-object-name-so-the-listing-is-large-${String(i).padStart(3, "0")}.parquet`);

  beforeAll(async () => {
    await Promise.all(keys.map((Key) => backend.send(new PutObjectCommand({ Bucket: backendName, Key, Body: "x" }))));
  });

  afterAll(async () => {
    const listed = await backend.send(new ListObjectsV2Command({ Bucket: backendName, Prefix: prefix }));
    for (const o of listed.Contents ?? []) await backend.send(new DeleteObjectCommand({ Bucket: backendName, Key: o.Key }));
  });

  test(`asked for gzip, the backend answers this listing ${gzips ? "gzipped: the rewrite must read gzip" : "plain"}`, async () => {
    const target = `/${backendName}?list-type=2&prefix=${encodeURIComponent(prefix)}`;
    const headers = await signRaw("GET", server.endpoint, target, { "accept-encoding": "gzip" }, server.accessKey, server.secretKey);
    const direct = await rawRequest(server.endpoint, "GET", target, headers);
    expect(direct.status).toBe(200);
    expect(direct.headers["content-encoding"]).toBe(gzips ? "gzip" : undefined);
  });

  test("through osp, a gzip-asking client gets a correct listing under the frontend name", async () => {
    const target = `/${name}?list-type=2&prefix=${encodeURIComponent(prefix)}`;
    const headers = await signRaw("GET", env.ospEndpoint, target, { "accept-encoding": "gzip" }, env.accessKey, env.secretKey);
    const res = await rawRequest(env.ospEndpoint, "GET", target, headers);
    expect(res.status).toBe(200);
    expect(res.headers["content-encoding"]).toBeUndefined();
    expect(Number(res.headers["content-length"])).toBe(Buffer.byteLength(res.body));
    expect(res.body).toContain(`<Name>${name}</Name>`);
    expect(res.body).not.toContain(backendName);
    expect(res.body.match(/<Key>/g)!.length).toBe(keys.length);
  });

  const mcEnv = { ...process.env, MC_HOST_osp: `http://${env.accessKey}:${env.secretKey}@${new URL(env.ospEndpoint).host}` };
  const mc = (args: string[]) => Bun.$`mc --config-dir ${join(tmp, "mc")} ${args}`.env(mcEnv).quiet();

  test("mc uploads 20 MiB in signed chunks (two parts) and reads it back, byte for byte", async () => {
    const data = randomBytes(20 * 1024 * 1024 + 3);
    const file = join(tmp, `${name}-up.bin`);
    writeFileSync(file, data);
    await mc(["cp", "--quiet", file, `osp/${name}/${prefix}mc-up.bin`]);
    const stored = await backend.send(new GetObjectCommand({ Bucket: backendName, Key: `${prefix}mc-up.bin` }));
    expect(sha256(await stored.Body!.transformToByteArray())).toBe(sha256(data));
    expect(stored.ETag).toMatch(/-2"$/); // a multipart object of two parts
    await mc(["cp", "--quiet", `osp/${name}/${prefix}mc-up.bin`, `${file}.back`]);
    expect(sha256(await Bun.file(`${file}.back`).arrayBuffer())).toBe(sha256(data));
    await backend.send(new DeleteObjectCommand({ Bucket: backendName, Key: `${prefix}mc-up.bin` }));
  });

  test("mc lists and removes recursively through the renamed bucket", async () => {
    const listed = (await mc(["ls", "--json", `osp/${name}/${prefix}`])).stdout.toString().trim().split("\n").map((l) => JSON.parse(l).key);
    expect(listed).toEqual(keys.map((k) => k.slice(prefix.length)));
    await mc(["rm", "--recursive", "--force", `osp/${name}/${prefix}`]);
    expect((await backend.send(new ListObjectsV2Command({ Bucket: backendName, Prefix: prefix }))).KeyCount).toBe(0);
  });

  test("Bun's S3Client lists through the renamed bucket", async () => {
    await Promise.all(keys.map((Key) => backend.send(new PutObjectCommand({ Bucket: backendName, Key, Body: "x" }))));
    const s3 = new BunS3Client({ endpoint: env.ospEndpoint, accessKeyId: env.accessKey, secretAccessKey: env.secretKey, bucket: name, region: env.region });
    const listed = await s3.list({ prefix });
    expect(listed.name).toBe(name);
    expect(listed.contents!.map((o) => o.key)).toEqual(keys);
  });
});
