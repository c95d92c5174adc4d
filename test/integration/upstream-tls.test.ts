/**
 * Backends over HTTPS: a MinIO serving TLS with a certificate from a private CA made by the test.
 * With `ca_file` osp verifies and talks to it; without, the backend is refused with a 502;
 * `tls_verify = false` talks to it unverified.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { startMinio, type MinioServer } from "../harness/minio.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { signRawRequest } from "../harness/sign.ts";
import { makePrivateCa } from "../harness/tls.ts";
import { env, rawRequest, sdkClient, sha256, randomBytes, signRaw, uniquePrefix, xmlCode } from "./util.ts";

const prefix = uniquePrefix("tls");
const BUCKET = "tls-backend";
let pki: Awaited<ReturnType<typeof makePrivateCa>>;
let minio: MinioServer;
let osp: OspInstance;

/** An object as MinIO itself has it (null when absent), read over TLS with the private CA. */
async function stored(key: string): Promise<Uint8Array | null> {
  const target = `/${BUCKET}/${key}`;
  const headers = await signRawRequest("GET", target, {}, { base: minio.endpoint, region: "us-east-1", accessKey: minio.accessKey, secret: minio.secretKey });
  const res = await fetch(minio.endpoint + target, { headers, tls: { ca: readFileSync(pki.ca, "utf8") } });
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

beforeAll(async () => {
  pki = await makePrivateCa();
  const certsDir = join(pki.dir, "minio-certs");
  mkdirSync(certsDir);
  copyFileSync(pki.cert, join(certsDir, "public.crt"));
  copyFileSync(pki.key, join(certsDir, "private.key"));
  minio = await startMinio("tls", { certsDir, ca: readFileSync(pki.ca, "utf8") });
  const backend = { endpoint: minio.endpoint, accessKey: minio.accessKey, secretKey: minio.secretKey };
  osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 1 }) + keyToml(env.accessKey, env.secretKey) +
      bucketToml(BUCKET, backend, { ca_file: pki.ca }) +
      bucketToml("tls-unverified", backend, { backend_bucket: BUCKET, tls_verify: false }) +
      bucketToml("tls-untrusted", backend, { backend_bucket: BUCKET }),
  });
  await sdkClient(osp.endpoint).send(new CreateBucketCommand({ Bucket: BUCKET }));
});
afterAll(async () => {
  await osp?.stop();
  await minio?.stop();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

describe("backends over HTTPS", () => {
  test("with the private CA in ca_file: verified, and objects round-trip", async () => {
    const s3 = sdkClient(osp.endpoint);
    const data = randomBytes(3 * 1024 * 1024 + 7);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}a`, Body: data }));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}a` }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(data));
    expect(sha256((await stored(`${prefix}a`))!)).toBe(sha256(data));
  });

  test("plain (not aws-chunked) uploads, by osp's HTTP/1.1 client over TLS, verify with ca_file and skip verification with tls_verify = false", async () => {
    const data = randomBytes(1024 * 1024 + 3);
    for (const [bucket, key] of [[BUCKET, `${prefix}plain-ca`], ["tls-unverified", `${prefix}plain-unverified`]] as const) {
      const target = `/${bucket}/${key}`;
      const headers = await signRaw("PUT", osp.endpoint, target, { "content-length": String(data.length) }, env.accessKey, env.secretKey);
      expect(headers["x-amz-content-sha256"]).toBe("UNSIGNED-PAYLOAD");
      const res = await rawRequest(osp.endpoint, "PUT", target, headers, data);
      expect(res.status).toBe(200);
      expect(sha256((await stored(key))!)).toBe(sha256(data));
    }
  });

  test("ranged GETs, by osp's HTTP/1.1 client over TLS, verify with ca_file, skip verification with tls_verify = false, and refuse an untrusted backend", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 11);
    await sdkClient(osp.endpoint).send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}ranged`, Body: data }));
    for (const bucket of [BUCKET, "tls-unverified"]) {
      const got = await sdkClient(osp.endpoint).send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}ranged`, Range: "bytes=1000-" }));
      expect(got.ContentRange).toBe(`bytes 1000-${data.length - 1}/${data.length}`);
      expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(data.subarray(1000)));
    }
    const target = `/tls-untrusted/${prefix}ranged`;
    const res = await rawRequest(osp.endpoint, "GET", target, { ...(await signRaw("GET", osp.endpoint, target, {}, env.accessKey, env.secretKey)), range: "bytes=0-" });
    expect([res.status, xmlCode(res.body)]).toEqual([502, "BadGateway"]);
    expect(res.body).toContain("its TLS certificate is not trusted");
  });

  test("without it the certificate is not trusted: 502 BadGateway as S3 XML, nothing written", async () => {
    const target = `/tls-untrusted/${prefix}b`;
    const headers = await signRaw("PUT", osp.endpoint, target, { "content-length": "5" }, env.accessKey, env.secretKey);
    const res = await rawRequest(osp.endpoint, "PUT", target, headers, "hello");
    expect([res.status, xmlCode(res.body)]).toEqual([502, "BadGateway"]);
    expect(res.body).toContain("its TLS certificate is not trusted");
    expect(await stored(`${prefix}b`)).toBeNull();
  });

  test("tls_verify = false talks to it unverified", async () => {
    const s3 = sdkClient(osp.endpoint);
    await s3.send(new PutObjectCommand({ Bucket: "tls-unverified", Key: `${prefix}c`, Body: "unverified" }));
    expect(new TextDecoder().decode((await stored(`${prefix}c`))!)).toBe("unverified");
  });
});
