/** @aws-sdk/client-s3 through osp against two real MinIO servers and a Versity S3 Gateway. */
import { afterAll, describe, expect, test } from "bun:test";
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, ListBucketsCommand,
  ListMultipartUploadsCommand, ListObjectsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand,
  S3ServiceException, UploadPartCommand, UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { backendClient, env, errorOf, randomBytes, rawRequest, sdkClient, sha256, signRaw, uniquePrefix, xmlCode } from "./util.ts";

const s3 = sdkClient();
const buckets = [
  { name: env.bucketA, backendName: env.bucketA, backend: backendClient(env.minioA) },
  { name: env.bucketB, backendName: env.bucketBBackend, backend: backendClient(env.minioB) },
  { name: env.bucketV, backendName: env.bucketVBackend, backend: backendClient(env.versitygw) },
];
const prefix = uniquePrefix("sdk");

afterAll(async () => {
  for (const b of buckets) {
    const listed = await b.backend.send(new ListObjectsV2Command({ Bucket: b.backendName, Prefix: prefix }));
    for (const o of listed.Contents ?? []) await b.backend.send(new DeleteObjectCommand({ Bucket: b.backendName, Key: o.Key }));
  }
});

describe.each(buckets)("objects in $name", ({ name, backendName, backend }) => {
  test.each([0, 1, 1024 * 1024 + 7, 100 * 1024 * 1024])("put/get/head/delete %d bytes, stored as sent on the backend", async (size) => {
    const key = `${prefix}size-${size}`;
    const data = randomBytes(size);
    const put = await s3.send(new PutObjectCommand({ Bucket: name, Key: key, Body: data, ContentType: "application/x-test", Metadata: { origin: "sdk" } }));
    const direct = await backend.send(new GetObjectCommand({ Bucket: backendName, Key: key }));
    expect(sha256(await direct.Body!.transformToByteArray())).toBe(sha256(data));
    expect(direct.ETag).toBe(put.ETag);
    const got = await s3.send(new GetObjectCommand({ Bucket: name, Key: key }));
    expect(got.ContentLength).toBe(size);
    expect(got.ContentType).toBe("application/x-test");
    expect(got.Metadata).toEqual({ origin: "sdk" });
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(data));
    const head = await s3.send(new HeadObjectCommand({ Bucket: name, Key: key }));
    expect(head.ContentLength).toBe(size);
    await s3.send(new DeleteObjectCommand({ Bucket: name, Key: key }));
    expect(await errorOf(backend.send(new HeadObjectCommand({ Bucket: backendName, Key: key })))).toMatchObject({ status: 404 });
  });

  test("keys that are hard to carry keep every byte", async () => {
    const keys = [
      "with space", "ünïcödé/日本語.txt", "plus+sign", "per%cent", "literal%2Fslash", "a..b/..c/d..",
      "~!@$&*()=:;,'", "back\\slash", "tab\there",
    ].map((k) => prefix + k);
    // S3's longest key, 1024 bytes; MinIO keeps each "/" segment to 255 bytes (a file name)
    keys.push((prefix + `${"x".repeat(200)}/`.repeat(6)).slice(0, 1024));
    expect(new TextEncoder().encode(keys.at(-1)!).length).toBe(1024);
    for (const key of keys) {
      await s3.send(new PutObjectCommand({ Bucket: name, Key: key, Body: key }));
      const got = await s3.send(new GetObjectCommand({ Bucket: name, Key: key }));
      expect(await got.Body!.transformToString()).toBe(key);
    }
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: name, Prefix: prefix }));
    expect(new Set(listed.Contents!.map((o) => o.Key))).toEqual(new Set(keys));
    const direct = await backend.send(new ListObjectsV2Command({ Bucket: backendName, Prefix: prefix }));
    expect(new Set(direct.Contents!.map((o) => o.Key))).toEqual(new Set(keys));
    const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    expect(deleted.Errors ?? []).toEqual([]);
    expect((await backend.send(new ListObjectsV2Command({ Bucket: backendName, Prefix: prefix }))).KeyCount).toBe(0);
  });

  test("a key with '//' reaches the backend unchanged: osp answers what the backend answers directly", async () => {
    const key = `${prefix}double//slash`;
    const outcome = (p: Promise<unknown>) => p.then(() => "stored", (e) => (e instanceof S3ServiceException ? `${e.name} ${e.$metadata.httpStatusCode}` : String(e)));
    const direct = await outcome(backend.send(new PutObjectCommand({ Bucket: backendName, Key: key, Body: "direct" })));
    const through = await outcome(s3.send(new PutObjectCommand({ Bucket: name, Key: key, Body: "through osp" })));
    expect(through).toBe(direct);
    if (direct === "stored") {
      // versitygw keeps it; read back under the same key, directly and through osp
      const got = await s3.send(new GetObjectCommand({ Bucket: name, Key: key }));
      expect(await got.Body!.transformToString()).toBe("through osp");
      expect(await (await backend.send(new GetObjectCommand({ Bucket: backendName, Key: key }))).Body!.transformToString()).toBe("through osp");
      await s3.send(new DeleteObjectCommand({ Bucket: name, Key: key }));
    } else {
      // MinIO refuses it, naming the key as it was sent
      expect(direct).toBe("XMinioInvalidObjectName 400");
      const e = await s3.send(new PutObjectCommand({ Bucket: name, Key: key, Body: "x" })).catch((e) => e);
      expect((e as { Key: string }).Key).toBe(key);
    }
  });
});

describe("listing", () => {
  const p = `${prefix}list/`;
  const keys = Array.from({ length: 13 }, (_, i) => `${p}${i % 3 === 0 ? "dir/" : ""}k${String(i).padStart(2, "0")}`);

  test("ListObjectsV2 pages and delimiters; ListObjects (V1) markers", async () => {
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket: env.bucketB, Key, Body: Key }))));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: env.bucketB, Prefix: p, MaxKeys: 4, ContinuationToken: token }));
      seen.push(...page.Contents!.map((o) => o.Key!));
      token = page.NextContinuationToken;
      pages++;
    } while (token);
    expect(pages).toBe(4);
    expect(seen).toEqual([...keys].sort());

    const delimited = await s3.send(new ListObjectsV2Command({ Bucket: env.bucketB, Prefix: p, Delimiter: "/" }));
    expect(delimited.CommonPrefixes!.map((c) => c.Prefix)).toEqual([`${p}dir/`]);
    expect(delimited.Contents!.length).toBe(8);

    const v1: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await s3.send(new ListObjectsCommand({ Bucket: env.bucketB, Prefix: p, MaxKeys: 5, Marker: marker }));
      v1.push(...page.Contents!.map((o) => o.Key!));
      if (!page.IsTruncated) break;
      marker = page.Contents!.at(-1)!.Key;
    }
    expect(v1).toEqual([...keys].sort());
  });
});

describe("copy and multipart", () => {
  test("CopyObject with COPY and REPLACE metadata directives, across bucket names on one backend", async () => {
    const src = `${prefix}copy-src`;
    await s3.send(new PutObjectCommand({ Bucket: env.bucketA, Key: src, Body: "copy me", Metadata: { a: "1" }, ContentType: "text/plain" }));
    await s3.send(new CopyObjectCommand({ Bucket: env.bucketA, Key: `${prefix}copy-1`, CopySource: `${env.bucketA}/${encodeURIComponent(src)}` }));
    const kept = await s3.send(new HeadObjectCommand({ Bucket: env.bucketA, Key: `${prefix}copy-1` }));
    expect(kept.Metadata).toEqual({ a: "1" });
    await s3.send(new CopyObjectCommand({
      Bucket: env.bucketA, Key: `${prefix}copy-2`, CopySource: `${env.bucketA}/${encodeURIComponent(src)}`,
      MetadataDirective: "REPLACE", Metadata: { b: "2" }, ContentType: "text/x-new",
    }));
    const replaced = await s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: `${prefix}copy-2` }));
    expect(replaced.Metadata).toEqual({ b: "2" });
    expect(replaced.ContentType).toBe("text/x-new");
    expect(await replaced.Body!.transformToString()).toBe("copy me");
  });

  test("a copy between two backends is refused with an S3 error and writes nothing", async () => {
    const src = `${prefix}xcopy-src`;
    await s3.send(new PutObjectCommand({ Bucket: env.bucketA, Key: src, Body: "x" }));
    const err = await errorOf(s3.send(new CopyObjectCommand({ Bucket: env.bucketB, Key: `${prefix}xcopy`, CopySource: `${env.bucketA}/${src}` })));
    expect(err).toEqual({ name: "NotImplemented", status: 501 });
    expect(await errorOf(buckets[1]!.backend.send(new HeadObjectCommand({ Bucket: env.bucketBBackend, Key: `${prefix}xcopy` })))).toMatchObject({ status: 404 });
  });

  test("multipart: create, upload parts and a part copy, list parts and uploads, complete; abort", async () => {
    const key = `${prefix}multi`;
    const part1 = randomBytes(5 * 1024 * 1024);
    const source = randomBytes(6 * 1024 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: env.bucketB, Key: `${prefix}part-source`, Body: source }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: env.bucketB, Key: key }));
    const p1 = await s3.send(new UploadPartCommand({ Bucket: env.bucketB, Key: key, UploadId, PartNumber: 1, Body: part1 }));
    const p2 = await s3.send(new UploadPartCopyCommand({
      Bucket: env.bucketB, Key: key, UploadId, PartNumber: 2, CopySource: `${env.bucketB}/${prefix}part-source`, CopySourceRange: "bytes=1024-2047",
    }));
    const parts = await s3.send(new ListPartsCommand({ Bucket: env.bucketB, Key: key, UploadId }));
    expect(parts.Parts!.map((p) => p.PartNumber)).toEqual([1, 2]);
    // MinIO lists no uploads for a prefix ending in "/", so the whole key is the prefix here
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucketB, Prefix: key }));
    expect(uploads.Uploads!.map((u) => u.UploadId)).toContain(UploadId);
    await s3.send(new CompleteMultipartUploadCommand({
      Bucket: env.bucketB, Key: key, UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.CopyPartResult!.ETag }] },
    }));
    const got = await s3.send(new GetObjectCommand({ Bucket: env.bucketB, Key: key }));
    const expected = new Uint8Array([...part1, ...source.subarray(1024, 2048)]);
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(expected));

    const other = await s3.send(new CreateMultipartUploadCommand({ Bucket: env.bucketB, Key: `${key}-aborted` }));
    await s3.send(new AbortMultipartUploadCommand({ Bucket: env.bucketB, Key: `${key}-aborted`, UploadId: other.UploadId }));
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucketB, Prefix: key }));
    expect((after.Uploads ?? []).map((u) => u.UploadId)).not.toContain(other.UploadId);
  });
});

describe("reads", () => {
  const key = `${prefix}ranged`;
  const data = randomBytes(1000);

  test("range and conditional GETs", async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: env.bucketA, Key: key, Body: data }));
    const r = await s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key, Range: "bytes=10-99" }));
    expect(r.ContentRange).toBe("bytes 10-99/1000");
    expect(sha256(await r.Body!.transformToByteArray())).toBe(sha256(data.subarray(10, 100)));
    const tail = await s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key, Range: "bytes=-5" }));
    expect(sha256(await tail.Body!.transformToByteArray())).toBe(sha256(data.subarray(995)));
    expect(await errorOf(s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key, IfNoneMatch: put.ETag })))).toMatchObject({ status: 304 });
    expect(await errorOf(s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key, IfMatch: '"0000"' })))).toMatchObject({ name: "PreconditionFailed", status: 412 });
    expect(await errorOf(s3.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key, Range: "bytes=5000-" })))).toMatchObject({ name: "InvalidRange", status: 416 });
  });

  test("presigned GET and PUT", async () => {
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: env.bucketB, Key: `${prefix}presigned` }), { expiresIn: 300 });
    expect((await fetch(putUrl, { method: "PUT", body: data })).status).toBe(200);
    const direct = await buckets[1]!.backend.send(new GetObjectCommand({ Bucket: env.bucketBBackend, Key: `${prefix}presigned` }));
    expect(sha256(await direct.Body!.transformToByteArray())).toBe(sha256(data));
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: env.bucketB, Key: `${prefix}presigned`, ResponseContentDisposition: "attachment; filename=x.bin" }), { expiresIn: 300 });
    const res = await fetch(getUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe("attachment; filename=x.bin");
    expect(sha256(await res.arrayBuffer())).toBe(sha256(data));
    const tampered = await fetch(getUrl.replace("presigned", "presignee"));
    expect(tampered.status).toBe(403);
    expect(await tampered.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
  });
});

describe("who may see what", () => {
  test("ListBuckets lists only the buckets a key may use", async () => {
    const all = await s3.send(new ListBucketsCommand({}));
    // the bucket whose backend is down cannot be shown to exist (routes.test.ts: how that is reported)
    expect(all.Buckets!.map((b) => b.Name).sort()).toEqual([env.bucketA, env.bucketB, env.bucketV].sort());
    const limited = sdkClient(env.ospEndpoint, env.limitedAccessKey, env.limitedSecretKey);
    expect((await limited.send(new ListBucketsCommand({}))).Buckets!.map((b) => b.Name)).toEqual([env.bucketA]);
    expect(await errorOf(limited.send(new PutObjectCommand({ Bucket: env.bucketB, Key: `${prefix}denied`, Body: "x" })))).toEqual({ name: "AccessDenied", status: 403 });
    expect(await errorOf(buckets[1]!.backend.send(new HeadObjectCommand({ Bucket: env.bucketBBackend, Key: `${prefix}denied` })))).toMatchObject({ status: 404 });
  });

  test("bad credentials get their exact S3 error and write nothing", async () => {
    const wrong = sdkClient(env.ospEndpoint, env.accessKey, env.secretKey + "x");
    expect(await errorOf(wrong.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}bad`, Body: "x" })))).toEqual({ name: "SignatureDoesNotMatch", status: 403 });
    const unknown = sdkClient(env.ospEndpoint, "NOSUCHKEY", "x");
    expect(await errorOf(unknown.send(new PutObjectCommand({ Bucket: env.bucketA, Key: `${prefix}bad`, Body: "x" })))).toEqual({ name: "InvalidAccessKeyId", status: 403 });
    expect(await errorOf(buckets[0]!.backend.send(new HeadObjectCommand({ Bucket: env.bucketA, Key: `${prefix}bad` })))).toMatchObject({ status: 404 });
    expect(await errorOf(s3.send(new GetObjectCommand({ Bucket: "no-such-bucket", Key: "k" })))).toEqual({ name: "NoSuchBucket", status: 404 });
  });

  test("an unreachable backend is a 502 with an S3 error code", async () => {
    const err = await errorOf(s3.send(new GetObjectCommand({ Bucket: env.bucketDown, Key: "k" })));
    expect(err).toEqual({ name: "BadGateway", status: 502 });
  });
});

describe("headers S3 reads reach the backend", () => {
  const put = async (key: string, extra: Record<string, string>) => {
    const target = `/${env.bucketA}/${key}`;
    const headers = await signRaw("PUT", env.ospEndpoint, target, { "content-length": "5", ...extra }, env.accessKey, env.secretKey);
    return rawRequest(env.ospEndpoint, "PUT", target, headers, "hello");
  };
  const backend = buckets[0]!.backend;

  test("storage class and tagging are stored", async () => {
    const key = `${prefix}hdr-stored`;
    expect((await put(key, { "x-amz-storage-class": "REDUCED_REDUNDANCY", "x-amz-tagging": "team=data&tier=2" })).status).toBe(200);
    expect((await backend.send(new HeadObjectCommand({ Bucket: env.bucketA, Key: key }))).StorageClass).toBe("REDUCED_REDUNDANCY");
    const tags = await backend.send(new GetObjectTaggingCommand({ Bucket: env.bucketA, Key: key }));
    expect(tags.TagSet).toEqual([{ Key: "team", Value: "data" }, { Key: "tier", Value: "2" }]);
  });

  // Each of these makes this MinIO refuse the upload; had osp dropped the header, it would be stored.
  test.each([
    ["SSE-S3", { "x-amz-server-side-encryption": "AES256" }, "NotImplemented"],
    ["SSE-C", { "x-amz-server-side-encryption-customer-algorithm": "AES256", "x-amz-server-side-encryption-customer-key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "x-amz-server-side-encryption-customer-key-md5": "zZ5FnqDuvTFzXgWX5VKyeg==" }, "InvalidRequest"],
    ["object lock", { "x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": "2030-01-01T00:00:00Z" }, "InvalidRequest"],
    ["a checksum", { "x-amz-checksum-crc32": "AAAAAA==" }, "XAmzContentChecksumMismatch"],
    ["Content-MD5", { "content-md5": "AAAAAAAAAAAAAAAAAAAAAA==" }, "BadDigest"],
  ])("%s", async (_, extra, code) => {
    const key = `${prefix}hdr-${code}-${Object.keys(extra)[0]}`;
    const res = await put(key, extra);
    expect(xmlCode(res.body)).toBe(code);
    expect(await errorOf(backend.send(new HeadObjectCommand({ Bucket: env.bucketA, Key: key })))).toMatchObject({ status: 404 });
  });

  test("conditional writes", async () => {
    const key = `${prefix}hdr-conditional`;
    expect((await put(key, { "if-none-match": "*" })).status).toBe(200);
    const again = await put(key, { "if-none-match": "*" });
    expect(again.status).toBe(412);
    expect(xmlCode(again.body)).toBe("PreconditionFailed");
  });
});
