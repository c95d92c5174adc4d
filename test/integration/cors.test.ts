/** CORS: preflights answered from osp.toml's rules, and the rules' headers on real answers. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { keyToml, serverToml } from "../harness/env.ts";
import { hmacHex, signingKey } from "../../src/sigv4/sigv4.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { backendClient, env, randomBytes, sdkClient, sha256, uniquePrefix, xmlCode } from "./util.ts";

const prefix = uniquePrefix("cors");
const APP = "https://app.example";
let osp: OspInstance;

const rules = `
[[buckets.web.cors]]
allowed_origins = ["${APP}", "https://*.trusted.example"]
allowed_methods = ["GET", "PUT", "POST", "HEAD"]
allowed_headers = ["content-type", "x-amz-*"]
expose_headers = ["ETag", "x-amz-request-id"]
max_age = 600

[[buckets.web.cors]]
allowed_origins = ["*"]
allowed_methods = ["GET"]
`;

beforeAll(async () => {
  const bucket = (name: string, endpoint: string) => `
[buckets.${name}]
endpoint = "${endpoint}"
addressing_style = "path"
backend_bucket = "${env.bucketA}"
access_key = "${env.minioA.accessKey}"
secret_key = "${env.minioA.secretKey}"
`;
  osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 1 }) + keyToml(env.accessKey, env.secretKey) +
      bucket("web", env.minioA.endpoint) + rules + bucket("plain", env.minioA.endpoint) +
      // a backend nobody listens on: anything forwarded there would be answered 502
      bucket("web-down", `http://127.0.0.1:${env.downPort}`) + rules.replaceAll("buckets.web.cors", "buckets.web-down.cors"),
  });
});
afterAll(() => osp?.stop());

const preflight = (path: string, origin: string | undefined, method: string | undefined, headers?: string) =>
  fetch(`${osp.endpoint}${path}`, {
    method: "OPTIONS",
    headers: {
      ...(origin ? { origin } : {}),
      ...(method ? { "access-control-request-method": method } : {}),
      ...(headers ? { "access-control-request-headers": headers } : {}),
    },
  });

/** An upload's answer as the page that sent it sees it, and the bytes as MinIO holds them. */
async function storedForPage(r: Response, status: number, key: string, data: Uint8Array) {
  expect(r.status).toBe(status);
  expect(r.headers.get("access-control-allow-origin")).toBe(APP);
  expect(r.headers.get("access-control-expose-headers")).toBe("ETag, x-amz-request-id");
  const stored = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
  expect(sha256(await stored.Body!.transformToByteArray())).toBe(sha256(data));
}

describe("CORS", () => {
  test("a preflight, then the presigned PUT it was for, from an allowed origin", async () => {
    const key = `${prefix}upload.bin`;
    const pre = await preflight(`/web/${key}`, APP, "PUT", "Content-Type, x-amz-meta-note");
    expect(pre.status).toBe(200);
    expect(Object.fromEntries(pre.headers)).toMatchObject({
      "access-control-allow-origin": APP,
      "access-control-allow-methods": "GET, PUT, POST, HEAD",
      "access-control-allow-headers": "content-type, x-amz-meta-note",
      "access-control-expose-headers": "ETag, x-amz-request-id",
      "access-control-max-age": "600",
      "access-control-allow-credentials": "true",
    });
    expect(pre.headers.get("vary")).toContain("Origin");

    const data = randomBytes(100_000);
    const url = await getSignedUrl(sdkClient(osp.endpoint), new PutObjectCommand({ Bucket: "web", Key: key, ContentType: "application/octet-stream" }), { expiresIn: 300 });
    const put = await fetch(url, { method: "PUT", headers: { origin: APP, "content-type": "application/octet-stream" }, body: data });
    await storedForPage(put, 200, key, data);
  });

  test("a form upload from a page (FormData, encoded by fetch as a page's script would) is readable by that page", async () => {
    const key = `${prefix}form.bin`;
    const datetime = new Date().toISOString().replace(/[-:]|\.\d+/g, "");
    const credential = `${env.accessKey}/${datetime.slice(0, 8)}/${env.region}/s3/aws4_request`;
    const policy = Buffer.from(JSON.stringify({
      expiration: new Date(Date.now() + 600_000).toISOString(),
      conditions: [{ bucket: "web" }, { key }, { "x-amz-algorithm": "AWS4-HMAC-SHA256" }, { "x-amz-credential": credential }, { "x-amz-date": datetime }],
    })).toString("base64");
    const form = new FormData();
    for (const [name, value] of Object.entries({ key, "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential, "x-amz-date": datetime, policy,
      "x-amz-signature": hmacHex(signingKey(env.secretKey, datetime.slice(0, 8), env.region, "s3"), policy) })) form.append(name, value);
    const data = randomBytes(70_000);
    form.append("file", new Blob([data]), "form.bin");
    const r = await fetch(`${osp.endpoint}/web`, { method: "POST", headers: { origin: APP }, body: form });
    await storedForPage(r, 204, key, data);
  });

  test("wildcards: a subdomain pattern, and '*' for GET from anywhere", async () => {
    const sub = await preflight(`/web/${prefix}x`, "https://a.b.trusted.example", "POST");
    expect(sub.status).toBe(200);
    expect(sub.headers.get("access-control-allow-origin")).toBe("https://a.b.trusted.example");
    const any = await preflight(`/web/${prefix}x`, "https://elsewhere.example", "GET");
    expect(any.status).toBe(200);
    expect(any.headers.get("access-control-allow-origin")).toBe("*");
    expect(any.headers.get("access-control-allow-credentials")).toBeNull();
  });

  test("preflights are answered by osp alone, never by a backend", async () => {
    const r = await preflight(`/web-down/${prefix}x`, APP, "PUT", "content-type");
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe(APP);
  });

  test("refused preflights", async () => {
    const refused = async (r: Response, status: number, code: string, message?: string) => {
      const body = await r.text();
      expect([r.status, xmlCode(body)]).toEqual([status, code]);
      if (message) expect(body).toContain(message);
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    };
    const notAllowed = "CORSResponse: This CORS request is not allowed";
    await refused(await preflight(`/web/${prefix}x`, "https://evil.example", "PUT"), 403, "AccessForbidden", notAllowed);
    await refused(await preflight(`/web/${prefix}x`, APP, "DELETE"), 403, "AccessForbidden", notAllowed);
    await refused(await preflight(`/web/${prefix}x`, APP, "PUT", "content-type, x-custom"), 403, "AccessForbidden", notAllowed);
    await refused(await preflight(`/web-down/${prefix}x`, "https://evil.example", "PUT"), 403, "AccessForbidden", notAllowed);
    // a bucket without rules and one that does not exist answer alike
    await refused(await preflight(`/plain/${prefix}x`, APP, "GET"), 403, "AccessForbidden", "CORS is not enabled for this bucket");
    await refused(await preflight(`/nonexistent/${prefix}x`, APP, "GET"), 403, "AccessForbidden", "CORS is not enabled for this bucket");
    await refused(await preflight(`/web/${prefix}x`, undefined, "GET"), 400, "BadRequest");
    await refused(await preflight(`/web/${prefix}x`, APP, undefined), 400, "BadRequest");
  });

  test("real answers carry the rules' headers only: the backend's own are removed", async () => {
    const key = `${prefix}get.txt`;
    await sdkClient(osp.endpoint).send(new PutObjectCommand({ Bucket: "web", Key: key, Body: "hi" }));
    const get = (bucket: string, origin: string) =>
      getSignedUrl(sdkClient(osp.endpoint), new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 300 })
        .then((url) => fetch(url, { headers: { origin } }));
    // MinIO by itself allows every origin
    const direct = await fetch(await getSignedUrl(backendClient(env.minioA), new GetObjectCommand({ Bucket: env.bucketA, Key: key })), { headers: { origin: "https://evil.example" } });
    expect(direct.headers.get("access-control-allow-origin")).not.toBeNull();

    const allowed = await get("web", APP);
    expect([allowed.status, await allowed.text()]).toEqual([200, "hi"]);
    expect(allowed.headers.get("access-control-allow-origin")).toBe(APP);
    const anyone = await get("web", "https://evil.example"); // the GET-from-anywhere rule
    expect(anyone.headers.get("access-control-allow-origin")).toBe("*");
    const noRules = await get("plain", APP);
    expect(noRules.status).toBe(200);
    expect([...noRules.headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual([]);

    // an error answer from a page's origin is readable by the page too
    const denied = await fetch(`${osp.endpoint}/web/${key}`, { headers: { origin: APP } });
    expect(denied.status).toBe(403);
    expect(denied.headers.get("access-control-allow-origin")).toBe(APP);
  });
});
