/** Bun's built-in S3Client through osp. */
import { expect, test } from "bun:test";
import { S3Client } from "bun";
import { env, randomBytes, sha256, uniquePrefix } from "./util.ts";

const prefix = uniquePrefix("bun");

// beta is on MinIO B, gamma on versitygw
test.each([env.bucketB, env.bucketV])("Bun S3Client writes, reads, stats, lists, presigns and deletes through osp (%s)", async (bucket) => {
  const s3 = new S3Client({ endpoint: env.ospEndpoint, accessKeyId: env.accessKey, secretAccessKey: env.secretKey, bucket, region: env.region });
  const data = randomBytes(3 * 1024 * 1024 + 5);
  await s3.write(`${prefix}file.bin`, data);
  const file = s3.file(`${prefix}file.bin`);
  expect(await file.exists()).toBe(true);
  expect((await file.stat()).size).toBe(data.length);
  expect(sha256(await file.arrayBuffer())).toBe(sha256(data));
  expect(sha256(await file.slice(100, 200).arrayBuffer())).toBe(sha256(data.subarray(100, 200)));
  const listed = await s3.list({ prefix });
  expect(listed.contents!.map((o) => o.key)).toEqual([`${prefix}file.bin`]);
  const url = file.presign({ expiresIn: 60 });
  expect(sha256(await (await fetch(url)).arrayBuffer())).toBe(sha256(data));
  await file.delete();
  expect(await file.exists()).toBe(false);

  const wrong = new S3Client({ endpoint: env.ospEndpoint, accessKeyId: env.accessKey, secretAccessKey: "wrong", bucket, region: env.region });
  const err = await wrong.write(`${prefix}nope`, "x").catch((e) => e);
  expect(err.code).toBe("SignatureDoesNotMatch");
  expect(await file.exists()).toBe(false);
});
