/**
 * Requests an attacker would send, over raw sockets: headers added to a presigned URL or to a
 * signed request, repeated authentication parts, bad framing and hosts, header bytes outside
 * ASCII. Every refused request must leave the backend untouched, checked on MinIO directly.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { DeleteObjectCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { freePort, startOsp } from "../harness/osp.ts";
import { backendClient, env, keptAlive, rawExchange, sdkClient, signRaw, uniquePrefix, xmlCode, type RawExchange } from "./util.ts";

const s3 = sdkClient();
const backend = backendClient(env.minioA);
const bucket = env.bucketA;
const prefix = uniquePrefix("security");
const host = new URL(env.ospEndpoint).host;

afterAll(async () => {
  const listed = await backend.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  for (const o of listed.Contents ?? []) await backend.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
});

async function stored(key: string): Promise<boolean> {
  return backend.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(() => true, () => false);
}

const headerLines = (headers: Record<string, string>) => Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
const target = (url: string) => url.slice(url.indexOf("/", url.indexOf("//") + 2));

/** A PUT presigned by the admin key (only host signed, as SDKs do) for one key. */
async function presignedPut(key: string): Promise<string> {
  return target(await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 300 }));
}

function expectRefused(res: RawExchange, status: number, code: string): void {
  expect({ status: res.status, code: xmlCode(res.body) }).toEqual({ status, code });
  expect(res.head).toMatch(/content-type: application\/xml/i);
}

// Headers that change what a PUT does, each with a value S3 accepts.
const SEMANTIC_HEADERS: [string, string][] = [
  ["x-amz-copy-source", `/${bucket}/${prefix}secret`],
  ["x-amz-copy-source-if-match", '"0123456789abcdef0123456789abcdef"'],
  ["x-amz-copy-source-if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT"],
  ["x-amz-metadata-directive", "REPLACE"],
  ["x-amz-meta-owner", "attacker"],
  ["x-amz-tagging", "classification=public"],
  ["x-amz-storage-class", "REDUCED_REDUNDANCY"],
  ["x-amz-acl", "public-read"],
  ["x-amz-grant-read", 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'],
  ["x-amz-server-side-encryption", "AES256"],
  ["x-amz-server-side-encryption-customer-algorithm", "AES256"],
  ["x-amz-server-side-encryption-customer-key", Buffer.alloc(32, 7).toString("base64")],
  ["x-amz-object-lock-mode", "GOVERNANCE"],
  ["x-amz-object-lock-retain-until-date", "2099-01-01T00:00:00Z"],
  ["x-amz-object-lock-legal-hold", "ON"],
  ["x-amz-checksum-crc32", "AAAAAA=="],
  ["x-amz-website-redirect-location", "https://evil.example/"],
];

describe("headers the client did not sign never reach the backend", () => {
  test("a presigned upload URL cannot be turned into a copy of another object", async () => {
    const secret = `${prefix}secret`;
    await backend.send(new PutObjectCommand({ Bucket: bucket, Key: secret, Body: "top secret" }));
    const dest = `${prefix}dest1`;
    const url = await presignedPut(dest);
    const res = await rawExchange(env.ospEndpoint, [`PUT ${url} HTTP/1.1`, `Host: ${host}`, `x-amz-copy-source: /${bucket}/${secret}`, "Content-Length: 0"]);
    expectRefused(res, 403, "AccessDenied");
    expect(res.body).toContain("<HeadersNotSigned>x-amz-copy-source</HeadersNotSigned>");
    expect(await stored(dest)).toBe(false);
  });

  test.each(SEMANTIC_HEADERS)("presigned PUT plus an unsigned %s: refused, nothing written", async (name, value) => {
    const key = `${prefix}presigned-${name}`;
    const res = await rawExchange(env.ospEndpoint, [`PUT ${await presignedPut(key)} HTTP/1.1`, `Host: ${host}`, `${name}: ${value}`, "Content-Length: 6"], "attack");
    expectRefused(res, 403, "AccessDenied");
    expect(res.body).toContain(`<HeadersNotSigned>${name}</HeadersNotSigned>`);
    expect(await stored(key)).toBe(false);
  });

  test.each(SEMANTIC_HEADERS)("header-signed PUT plus an unsigned %s: refused, nothing written", async (name, value) => {
    const key = `${prefix}signed-${name}`;
    const signed = await signRaw("PUT", env.ospEndpoint, `/${bucket}/${key}`, { "content-length": "6" }, env.accessKey, env.secretKey);
    const res = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(signed), `${name}: ${value}`], "attack");
    expectRefused(res, 403, "AccessDenied");
    expect(await stored(key)).toBe(false);
  });

  test("the same headers, signed, are forwarded and take effect", async () => {
    const key = `${prefix}signed-meta`;
    const headers = { "content-length": "4", "x-amz-meta-owner": "me", "x-amz-tagging": "team=data", "x-amz-storage-class": "REDUCED_REDUNDANCY" };
    const signed = await signRaw("PUT", env.ospEndpoint, `/${bucket}/${key}`, headers, env.accessKey, env.secretKey);
    const res = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(signed)], "data");
    expect(res.status).toBe(200);
    const head = await backend.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata).toEqual({ owner: "me" });
    expect(head.StorageClass).toBe("REDUCED_REDUNDANCY");
    const tags = await backend.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
    expect(tags.TagSet).toEqual([{ Key: "team", Value: "data" }]);
  });

  test("unsigned Content-Type on a presigned PUT is accepted, as S3 accepts it", async () => {
    const key = `${prefix}typed`;
    const res = await rawExchange(env.ospEndpoint, [`PUT ${await presignedPut(key)} HTTP/1.1`, `Host: ${host}`, "Content-Type: text/csv", "Content-Length: 4"], "a,b\n");
    expect(res.status).toBe(200);
    expect((await backend.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentType).toBe("text/csv");
  });

  test("presigned GET: response-* overrides count only when signed", async () => {
    const key = `${prefix}overrides`;
    await backend.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "x", ContentType: "text/plain" }));
    const plain = target(await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 300 }));
    const added = await rawExchange(env.ospEndpoint, [`GET ${plain}&response-content-type=text%2Fhtml HTTP/1.1`, `Host: ${host}`]);
    expectRefused(added, 403, "SignatureDoesNotMatch");
    const overridden = target(await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentType: "text/html" }), { expiresIn: 300 }));
    const ok = await rawExchange(env.ospEndpoint, [`GET ${overridden} HTTP/1.1`, `Host: ${host}`]);
    expect(ok.status).toBe(200);
    expect(ok.head).toMatch(/content-type: text\/html/i);
  });
});

describe("requests S3 would refuse", () => {
  const signedPut = async (key: string, headers: Record<string, string> = { "content-length": "5" }) =>
    signRaw("PUT", env.ospEndpoint, `/${bucket}/${key}`, headers, env.accessKey, env.secretKey);

  test("a repeated Authorization header is refused, also when its parts come from two headers", async () => {
    const key = `${prefix}two-auth`;
    const { authorization, ...rest } = await signedPut(key);
    const twice = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(rest), `Authorization: ${authorization}`, `Authorization: ${authorization}`], "hello");
    expectRefused(twice, 400, "AuthorizationHeaderMalformed");
    const cut = authorization!.indexOf(", Signature=");
    const halves = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(rest), `Authorization: ${authorization!.slice(0, cut)}`, `Authorization: ${authorization!.slice(cut + 2)}`], "hello");
    expectRefused(halves, 400, "AuthorizationHeaderMalformed");
    expect(await stored(key)).toBe(false);
  });

  test("an unknown Authorization parameter is refused", async () => {
    const key = `${prefix}extra-param`;
    const { authorization, ...rest } = await signedPut(key);
    const res = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(rest), `Authorization: ${authorization}, Extra=1`], "hello");
    expectRefused(res, 400, "AuthorizationHeaderMalformed");
    expect(await stored(key)).toBe(false);
  });

  test.each(["X-Amz-Signature", "X-Amz-Expires", "X-Amz-Date", "X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Algorithm"])(
    "a presigned URL with %s twice is refused, whichever copy is valid",
    async (name) => {
      const key = `${prefix}dup-${name}`;
      const url = await presignedPut(key);
      const value = new URLSearchParams(url.slice(url.indexOf("?"))).get(name)!;
      const bogus = `${name}=${name === "X-Amz-Expires" ? "604800" : "0"}`;
      for (const query of [`${url}&${bogus}`, url.replace("?", `?${bogus}&`), `${url}&${name}=${encodeURIComponent(value)}`]) {
        const res = await rawExchange(env.ospEndpoint, [`PUT ${query} HTTP/1.1`, `Host: ${host}`, "Content-Length: 5"], "hello");
        expectRefused(res, 400, "AuthorizationQueryParametersError");
      }
      expect(await stored(key)).toBe(false);
    },
  );

  test("two identical Content-Length headers are read as one; conflicting ones are refused", async () => {
    const key = `${prefix}two-lengths`;
    const signed = await signedPut(key);
    const same = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(signed), "Content-Length: 5"], "hello");
    expect(same.status).toBe(200);
    const got = await backend.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await got.Body!.transformToString()).toBe("hello");

    const other = `${prefix}conflicting-lengths`;
    const conflicting = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${other} HTTP/1.1`, ...headerLines(await signedPut(other)), "Content-Length: 6"], "hello!");
    expect(conflicting.status).toBe(400);
    expect(await stored(other)).toBe(false);
  });

  test.each(["1.2.3.4.5", "999.1.1.1", "bucket.127.0.0.1", "[::1", "a:b:c", "a/b", "user@host", "a\\b"])("Host: %s is the client's fault: 400, S3 XML", async (badHost) => {
    const res = await rawExchange(env.ospEndpoint, [`GET /${bucket}/x HTTP/1.1`, `Host: ${badHost}`]);
    expect(res.status).toBe(400);
    if (res.body) expect(xmlCode(res.body)).toMatch(/^(InvalidArgument|InvalidURI)$/);
  });

  test("a raw backslash in the path is the client's fault: 400 InvalidURI, nothing stored", async () => {
    const key = `${prefix}back\\slash`;
    const res = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(await signedPut(key))], "hello");
    expect([res.status, xmlCode(res.body)]).toEqual([400, "InvalidURI"]);
    expect(await stored(key)).toBe(false);
  });

  test("two Host headers are refused", async () => {
    const key = `${prefix}two-hosts`;
    const res = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(await signedPut(key)), "Host: other.example"], "hello");
    expect(res.status).toBe(400);
    expect(await stored(key)).toBe(false);
  });

  test("an upload refused before its body was read: the client reads the error, nothing is stored, the same connection carries the next request", async () => {
    const key = `${prefix}refused-then-next`;
    // far more than the sockets buffer: node:http reads the rest and drops it
    const body = "x".repeat(16 * 1024 * 1024);
    const signed = await signedPut(key, { "content-length": String(body.length) });
    const wrong = { ...signed, authorization: signed.authorization!.replace(/Signature=\w+/, `Signature=${"0".repeat(64)}`) };
    const get = await signRaw("GET", env.ospEndpoint, `/${bucket}/${key}`, {}, env.accessKey, env.secretKey);
    const conn = await keptAlive(env.ospEndpoint);
    try {
      const refused = await conn.exchange([`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(wrong)], body);
      expect([refused.status, xmlCode(refused.body)]).toEqual([403, "SignatureDoesNotMatch"]);
      const next = await conn.exchange([`GET /${bucket}/${key} HTTP/1.1`, ...headerLines(get)]);
      expect([next.status, xmlCode(next.body)]).toEqual([404, "NoSuchKey"]);
    } finally {
      conn.close();
    }
  });

  test("UTF-8 metadata is signed and stored as the bytes sent", async () => {
    const key = `${prefix}utf8`;
    const value = "Grüße aus Köln — voilà, 東京";
    const bytes = Buffer.from(value, "utf8").toString("latin1");
    const signed = await signedPut(key, { "content-length": "5", "x-amz-meta-note": `  ${bytes}  ` });
    const res = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key} HTTP/1.1`, ...headerLines(signed)], "hello");
    expect(res.status).toBe(200);
    const head = await rawExchange(env.minioA.endpoint, [`HEAD /${bucket}/${key} HTTP/1.1`, ...headerLines(await signRaw("HEAD", env.minioA.endpoint, `/${bucket}/${key}`, {}, env.minioA.accessKey, env.minioA.secretKey))]);
    // MinIO answers a non-ASCII value RFC 2047-encoded: =?UTF-8?b?<base64 of the bytes stored>?=
    const storedValue = /x-amz-meta-note: =\?UTF-8\?b\?([^?]*)\?=/i.exec(head.head)![1]!;
    expect(Buffer.from(storedValue, "base64").toString("utf8")).toBe(value);
    const tampered = await rawExchange(env.ospEndpoint, [`PUT /${bucket}/${key}2 HTTP/1.1`, ...headerLines({ ...signed, "x-amz-meta-note": bytes.replace("Köln", "Koln") })], "hello");
    expectRefused(tampered, 403, "SignatureDoesNotMatch");
  });

  test("no mutation of a signed request makes osp answer 5xx", async () => {
    // a fixed-seed walk over header and target mutations: each answer is a 2xx/3xx/4xx, never a fault of osp's
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const junk = ["", " ", "\t", "\xff\xfe", "%", "%zz", "a,b", "0", "-1", "99999999999999999999", "AWS4-HMAC-SHA256", "=", ";", "x".repeat(300), "é"];
    const statuses = new Map<number, number>();
    for (let i = 0; i < 120; i++) {
      const key = `${prefix}fuzz-${i}`;
      const signed: Record<string, string> = await signedPut(key);
      const names = Object.keys(signed);
      const lines = headerLines(signed);
      const pick = rand(4);
      if (pick === 0) lines[rand(lines.length)] = `${names[rand(names.length)]}: ${junk[rand(junk.length)]}`;
      else if (pick === 1) lines.push(lines[rand(lines.length)]!);
      else if (pick === 2) lines.push(`x-amz-${junk[rand(junk.length)]!.replace(/[^a-z]/g, "") || "z"}: ${junk[rand(junk.length)]}`);
      const path = pick === 3 ? `/${bucket}/${key}${["?", "?uploadId=", "?partNumber=x&uploadId=1", "%", "/../x", "?X-Amz-Signature=1"][rand(6)]}` : `/${bucket}/${key}`;
      const res = await rawExchange(env.ospEndpoint, [`PUT ${path} HTTP/1.1`, ...lines], "hello");
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect(res.status >= 200 && res.status < 500).toBe(true);
    }
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
  });
});

describe("Signature Version 2 switched off", () => {
  test("[server] sigv2 = false refuses a V2 presigned URL from boto3 and writes nothing; SigV4 still works", async () => {
    const port = await freePort();
    const osp = await startOsp({ configToml: serverToml(port, { workers: 1, sigv2: false }) + keyToml(env.accessKey, env.secretKey) + bucketToml(bucket, env.minioA) });
    try {
      const key = `${prefix}v2-off`;
      // boto3's default signer for presigned URLs against a custom endpoint is SigV2
      const script = `import boto3,sys\nc=boto3.client("s3",endpoint_url=sys.argv[1],aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3],region_name="us-east-1")\nprint(c.generate_presigned_url("put_object",Params={"Bucket":sys.argv[4],"Key":sys.argv[5]},ExpiresIn=300))`;
      const url = (await Bun.$`python3 -c ${script} ${osp.endpoint} ${env.accessKey} ${env.secretKey} ${bucket} ${key}`.text()).trim();
      expect(url).toContain("AWSAccessKeyId=");
      const res = await rawExchange(osp.endpoint, [`PUT ${target(url)} HTTP/1.1`, `Host: ${new URL(osp.endpoint).host}`, "Content-Length: 5"], "hello");
      expectRefused(res, 400, "InvalidRequest");
      expect(await stored(key)).toBe(false);
      await sdkClient(osp.endpoint).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "hello" }));
      expect(await stored(key)).toBe(true);
    } finally {
      await osp.stop();
    }
  });
});
