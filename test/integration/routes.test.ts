/** Buckets by pattern, bucket names, ListBuckets, the virtual-hosted frontend and public buckets, against both MinIOs. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListBucketsCommand,
  ListObjectsV2Command, PutObjectCommand, S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { FetchHttpHandler } from "@smithy/fetch-http-handler";
import { bucketToml, keyToml, serverToml } from "../harness/env.ts";
import { freePort, startOsp, type OspInstance } from "../harness/osp.ts";
import { backendClient, env, errorOf, rawRequest, sdkClient, signRaw, xmlCode } from "./util.ts";

const tag = Date.now().toString(36);
const minioA = backendClient(env.minioA);
const minioB = backendClient(env.minioB);
let osp: OspInstance;
let s3: S3Client;

const route = (match: string, b: typeof env.minioA, extra = "") =>
  `[[routes]]\nmatch = "${match}"\nendpoint = "${b.endpoint}"\naddressing_style = "path"\naccess_key = "${b.accessKey}"\nsecret_key = "${b.secretKey}"\n${extra}`;

beforeAll(async () => {
  osp = await startOsp({
    configToml: serverToml(await freePort(), { workers: 1 }) + `domains = ["s3.localhost"]\n` +
      keyToml("ADMIN", "admin-secret") + keyToml("RTAONLY", "rta-secret", ["rta-*"]) +
      bucketToml("pub", env.minioA, { backend_bucket: env.bucketA, anonymous: ["GetObject", "HeadObject", "ListObjectsV2"] }) +
      bucketToml("gone", env.minioA, { backend_bucket: `gone-${tag}` }) +
      route("rta-*", env.minioA) +
      route("rtb-*", env.minioB, `backend_bucket = "x-{bucket}"\n`) +
      // the default backend: not running, so any request that reached it would be a 502
      `[[routes]]\nmatch = "*"\nendpoint = "http://127.0.0.1:${env.downPort}"\naddressing_style = "path"\naccess_key = "x"\nsecret_key = "y"\n`,
  });
  s3 = sdkClient(osp.endpoint, "ADMIN", "admin-secret");
});
afterAll(() => osp?.stop());

const backendBuckets = async (c: S3Client) => ((await c.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name!);
const signed = async (method: string, target: string, body?: string, headers: Record<string, string> = {}) =>
  rawRequest(osp.endpoint, method, target, await signRaw(method, osp.endpoint, target, headers, "ADMIN", "admin-secret"), body);

describe("buckets by pattern", () => {
  test("invalid names are 400 InvalidBucketName before any backend is asked; nothing is created", async () => {
    const before = [...(await backendBuckets(minioA)), ...(await backendBuckets(minioB))];
    for (const name of ["ab", "Bad_Name", "a..b", "192.168.1.2", "x".repeat(64), "rta-", "rtb-.x"]) {
      for (const method of ["PUT", "GET", "DELETE"]) {
        const r = await signed(method, `/${name}`);
        // the default route's backend is down: had it been asked, this would be 502
        expect({ name, method, status: r.status, code: xmlCode(r.body) }).toEqual({ name, method, status: 400, code: "InvalidBucketName" });
      }
    }
    expect([...(await backendBuckets(minioA)), ...(await backendBuckets(minioB))]).toEqual(before);
    // a valid name of the default route does reach it
    expect((await signed("PUT", `/other-${tag}`)).status).toBe(502);
  });

  test("CreateBucket and DeleteBucket go to the route's backend, under its name template", async () => {
    const a = `rta-${tag}-make`;
    const b = `rtb-${tag}-make`;
    await s3.send(new CreateBucketCommand({ Bucket: a }));
    await s3.send(new CreateBucketCommand({ Bucket: b }));
    expect(await backendBuckets(minioA)).toContain(a);
    expect(await backendBuckets(minioB)).toContain(`x-${b}`);
    expect(await backendBuckets(minioB)).not.toContain(b);
    expect(await backendBuckets(minioA)).not.toContain(`x-${b}`);

    await s3.send(new PutObjectCommand({ Bucket: b, Key: "k", Body: "routed bytes" }));
    const direct = await minioB.send(new GetObjectCommand({ Bucket: `x-${b}`, Key: "k" }));
    expect(await direct.Body!.transformToString()).toBe("routed bytes");
    // the listing names the frontend bucket
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: b }));
    expect(listed.Name).toBe(b);
    expect(listed.Contents!.map((o) => o.Key)).toEqual(["k"]);

    expect(await errorOf(s3.send(new CreateBucketCommand({ Bucket: a })))).toMatchObject({ status: 409 });
    await minioB.send(new DeleteObjectCommand({ Bucket: `x-${b}`, Key: "k" }));
    await s3.send(new DeleteBucketCommand({ Bucket: b }));
    await s3.send(new DeleteBucketCommand({ Bucket: a }));
    expect(await errorOf(minioB.send(new HeadBucketCommand({ Bucket: `x-${b}` })))).toMatchObject({ status: 404 });
    expect(await errorOf(minioA.send(new HeadBucketCommand({ Bucket: a })))).toMatchObject({ status: 404 });
  });

  test("a key limited to a pattern may use the names it matches and no other", async () => {
    const limited = sdkClient(osp.endpoint, "RTAONLY", "rta-secret");
    const mine = `rta-${tag}-limited`;
    await limited.send(new CreateBucketCommand({ Bucket: mine }));
    expect(await errorOf(limited.send(new CreateBucketCommand({ Bucket: `rtb-${tag}-limited` })))).toEqual({ name: "AccessDenied", status: 403 });
    expect(await backendBuckets(minioB)).not.toContain(`x-rtb-${tag}-limited`);
    expect((await limited.send(new ListBucketsCommand({}))).Buckets!.map((b) => b.Name)).toEqual([mine]);
    await limited.send(new DeleteBucketCommand({ Bucket: mine }));
  });
});

describe("ListBuckets", () => {
  test("existing configured buckets and the routes' own buckets, paginated; a backend that is down is named", async () => {
    const names = [1, 2, 3].map((i) => `rta-${tag}-l${i}`).concat([1, 2].map((i) => `rtb-${tag}-l${i}`));
    for (const n of names) await s3.send(new CreateBucketCommand({ Bucket: n }));
    // on the backends, but no route serves them under these names
    await minioB.send(new CreateBucketCommand({ Bucket: `rtb-${tag}-unmapped` }));

    const all = await s3.send(new ListBucketsCommand({}));
    const listed = all.Buckets!.map((b) => b.Name!);
    expect(listed).toEqual([...names, "pub"].sort()); // not "gone": its backend bucket does not exist
    expect(all.Buckets!.every((b) => b.CreationDate instanceof Date)).toBe(true);

    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListBucketsCommand({ MaxBuckets: 2, ContinuationToken: token }));
      pages.push(page.Buckets!.map((b) => b.Name!));
      token = page.ContinuationToken;
    } while (token);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2]);
    expect(pages.flat()).toEqual(listed);
    const rtb = await s3.send(new ListBucketsCommand({ Prefix: "rtb-" }));
    expect(rtb.Buckets!.map((b) => b.Name)).toEqual(names.slice(3));
    expect(rtb.Prefix).toBe("rtb-");

    const raw = await signed("GET", "/?max-buckets=0");
    expect({ status: raw.status, code: xmlCode(raw.body) }).toEqual({ status: 400, code: "InvalidArgument" });
    const ok = await signed("GET", "/");
    expect(ok.status).toBe(200);
    expect(ok.headers["x-osp-unavailable"]).toBe("*");
    expect(osp.output()).toContain("their backend did not answer");

    for (const n of names) await s3.send(new DeleteBucketCommand({ Bucket: n }));
    await minioB.send(new DeleteBucketCommand({ Bucket: `rtb-${tag}-unmapped` }));
    expect((await s3.send(new ListBucketsCommand({}))).Buckets!.map((b) => b.Name)).toEqual(["pub"]);
  });
});

describe("virtual-hosted frontend", () => {
  // Bun's fetch resolves *.localhost to the loopback address (getaddrinfo, which node:http uses, does not),
  // so the SDK sends through fetch to BUCKET.s3.localhost
  const virtual = () => new S3Client({
    endpoint: `http://s3.localhost:${osp.port}`, region: env.region, forcePathStyle: false, maxAttempts: 1,
    requestHandler: new FetchHttpHandler(),
    credentials: { accessKeyId: "ADMIN", secretAccessKey: "admin-secret" },
  });

  test("the SDK in virtual-hosted style creates, writes, lists and reads; the signature covers its Host", async () => {
    const v = virtual();
    const bucket = `rta-${tag}-virtual`;
    const hosts: string[] = [];
    v.middlewareStack.add((next) => async (args) => {
      hosts.push((args.request as { hostname: string }).hostname);
      return next(args);
    }, { step: "finalizeRequest", name: "recordHost" });
    await v.send(new CreateBucketCommand({ Bucket: bucket }));
    await v.send(new PutObjectCommand({ Bucket: bucket, Key: "dir/a b+c.txt", Body: "virtual bytes" }));
    expect(hosts).toEqual([`${bucket}.s3.localhost`, `${bucket}.s3.localhost`]);
    const direct = await minioA.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/a b+c.txt" }));
    expect(await direct.Body!.transformToString()).toBe("virtual bytes");
    expect((await v.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents!.map((o) => o.Key)).toEqual(["dir/a b+c.txt"]);
    const got = await v.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/a b+c.txt" }));
    expect(await got.Body!.transformToString()).toBe("virtual bytes");
    // a presigned URL of the virtual host
    const url = await getSignedUrl(v, new GetObjectCommand({ Bucket: bucket, Key: "dir/a b+c.txt" }), { expiresIn: 60 });
    expect(new URL(url).hostname).toBe(`${bucket}.s3.localhost`);
    expect(await (await fetch(url)).text()).toBe("virtual bytes");
    // the same signature sent under another Host does not verify
    const target = "/dir/a%20b%2Bc.txt";
    const headers = await signRaw("GET", `http://${bucket}.s3.localhost:${osp.port}`, target, {}, "ADMIN", "admin-secret");
    const ok = await rawRequest(osp.endpoint, "GET", target, headers);
    expect(ok.body).toBe("virtual bytes");
    const moved = await rawRequest(osp.endpoint, "GET", target, { ...headers, host: `rta-${tag}-other.s3.localhost:${osp.port}` });
    expect({ status: moved.status, code: xmlCode(moved.body) }).toEqual({ status: 403, code: "SignatureDoesNotMatch" });

    await v.send(new DeleteObjectCommand({ Bucket: bucket, Key: "dir/a b+c.txt" }));
    await v.send(new DeleteBucketCommand({ Bucket: bucket }));
    expect(await errorOf(minioA.send(new HeadBucketCommand({ Bucket: bucket })))).toMatchObject({ status: 404 });
  });
});

describe("public buckets", () => {
  const key = `public-${tag}.txt`;
  const url = (k = key, q = "") => `${osp.endpoint}/pub/${k}${q}`;
  const absent = async (k: string) => (await errorOf(minioA.send(new HeadObjectCommand({ Bucket: env.bucketA, Key: k })))).status === 404;

  beforeAll(() => s3.send(new PutObjectCommand({ Bucket: "pub", Key: key, Body: "public bytes", ContentType: "text/plain" })));

  test("anonymous GET, HEAD and ListObjectsV2 work where opened", async () => {
    const got = await fetch(url());
    expect(got.status).toBe(200);
    expect(await got.text()).toBe("public bytes");
    expect((await fetch(url(), { method: "HEAD" })).headers.get("content-length")).toBe("12");
    const list = await fetch(`${osp.endpoint}/pub?list-type=2&prefix=public-${tag}`);
    expect(await list.text()).toContain(`<Key>${key}</Key>`);
    // with a response override, which the operation allows
    expect((await fetch(url(key, "?response-content-type=application%2Fx-test"))).headers.get("content-type")).toBe("application/x-test");
  });

  test("anonymous writes, deletes, copies, other operations and other buckets are refused, with nothing written", async () => {
    const refused = async (r: Response | Promise<Response>) => {
      const res = await r;
      return { status: res.status, code: res.headers.get("x-osp-error-code") };
    };
    const denied = { status: 403, code: "AccessDenied" };
    expect(await refused(fetch(url("anon-put"), { method: "PUT", body: "x" }))).toEqual(denied);
    expect(await absent("anon-put")).toBe(true);
    expect(await refused(fetch(url("anon-copy"), { method: "PUT", headers: { "x-amz-copy-source": `/pub/${key}` } }))).toEqual(denied);
    expect(await absent("anon-copy")).toBe(true);
    expect(await refused(fetch(url(), { method: "DELETE" }))).toEqual(denied);
    expect(await refused(fetch(`${osp.endpoint}/pub?delete`, { method: "POST", body: `<Delete><Object><Key>${key}</Key></Object></Delete>` }))).toEqual(denied);
    expect(await refused(fetch(url(key, "?uploads"), { method: "POST" }))).toEqual(denied);
    expect(await refused(fetch(url(key, "?tagging")))).toEqual(denied);
    expect(await refused(fetch(`${osp.endpoint}/pub?policy`))).toEqual(denied);
    expect(await refused(fetch(`${osp.endpoint}/pub?versions`))).toEqual(denied);
    expect(await refused(fetch(url(), { headers: { "x-amz-checksum-mode": "ENABLED" } }))).toEqual(denied);
    expect(await refused(fetch(`${osp.endpoint}/`))).toEqual(denied);
    expect(await refused(fetch(`${osp.endpoint}/rta-${tag}-x/k`))).toEqual(denied);
    expect(await refused(fetch(`${osp.endpoint}/Bad_Name/k`))).toEqual(denied);
    const still = await minioA.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
    expect(await still.Body!.transformToString()).toBe("public bytes");
  });
});
