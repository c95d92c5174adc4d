import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config.ts";
import { bucketFor, frontendName, upstreamUrl, validBucketName } from "../../src/pipeline/route.ts";
import { bucketPage, bucketsOfListing, listBucketsQuery, listBucketsXml } from "../../src/pipeline/listbuckets.ts";
import { parseRequest } from "../../src/pipeline/request.ts";
import { anonymousIdentity } from "../../src/pipeline/anonymous.ts";
import { ruleAllows } from "../../src/pipeline/authorize.ts";
import { S3Error } from "../../src/errors.ts";

const toml = `
[server]
domains = ["s3.example.com"]
[[keys]]
access_key = "AK"
secret_key = "sk"
buckets = ["logs-*", "data"]
[buckets.data]
endpoint = "http://127.0.0.1:9000"
addressing_style = "path"
access_key = "BK"
secret_key = "bs"
anonymous = ["GetObject", "ListObjectsV2"]
[buckets.logs-exact]
endpoint = "http://127.0.0.1:9001"
addressing_style = "path"
[[routes]]
match = "logs-*"
endpoint = "http://127.0.0.1:9002"
addressing_style = "path"
backend_bucket = "prod-{bucket}"
[[routes]]
match = "*"
endpoint = "http://127.0.0.1:9003"
addressing_style = "path"
`;
const config = parseConfig(toml, {}, "/");

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof S3Error) return `${e.status} ${e.code}`;
    throw e;
  }
  return "ok";
};

describe("routes", () => {
  test("exact names first, then the first matching route, with its name template", () => {
    expect(bucketFor(config, "logs-exact")).toMatchObject({ backendBucket: "logs-exact", endpoint: new URL("http://127.0.0.1:9001") });
    expect(bucketFor(config, "logs-2024")).toMatchObject({ name: "logs-2024", backendBucket: "prod-logs-2024", addressingStyle: "path" });
    expect(bucketFor(config, "anything").endpoint.port).toBe("9003");
    expect(bucketFor(config, "anything").backendBucket).toBe("anything");
  });

  test("names S3 refuses are 400 InvalidBucketName; without a route a valid name is 404", () => {
    for (const bad of ["ab", "a".repeat(64), "Upper", "a_b", "a..b", "a.-b", "192.168.5.4", "-ab", "ab-", "xn--ab", "ab-s3alias"]) {
      expect(validBucketName(bad)).toBe(false);
      expect(codeOf(() => bucketFor(config, bad))).toBe("400 InvalidBucketName");
    }
    expect(validBucketName("my.bucket-1")).toBe(true);
    const noRoutes = parseConfig(`[buckets.data]\nendpoint = "http://127.0.0.1:9000"\naddressing_style = "path"\n`, {}, "/");
    expect(codeOf(() => bucketFor(noRoutes, "other"))).toBe("404 NoSuchBucket");
    expect(codeOf(() => bucketFor(noRoutes, "Bad_Name"))).toBe("400 InvalidBucketName");
    // the template's prefix makes this one too long on its backend
    expect(codeOf(() => bucketFor(config, "logs-" + "x".repeat(58)))).toBe("400 InvalidBucketName");
  });

  test("a virtual-hosted URL cannot be made from an IP address endpoint: 502 with the reason", () => {
    const ip = parseConfig(`[buckets.data]\nendpoint = "http://10.0.0.1:9000"\n`, {}, "/").buckets.get("data")!;
    expect(codeOf(() => upstreamUrl(ip, "k", []))).toBe("502 BadGateway");
    expect(upstreamUrl({ ...ip, addressingStyle: "path" }, "k", [])).toBe("http://10.0.0.1:9000/data/k");
  });

  test("backend names map back only to the names their route serves", () => {
    const [logs, all] = config.routes as [typeof config.routes[0], typeof config.routes[0]];
    expect(frontendName(config, logs, "prod-logs-a")).toBe("logs-a");
    expect(frontendName(config, logs, "prod-other")).toBeUndefined(); // "other" is not logs-*
    expect(frontendName(config, logs, "logs-a")).toBeUndefined();
    expect(frontendName(config, all, "logs-a")).toBeUndefined(); // served by the first route
    expect(frontendName(config, all, "logs-exact")).toBeUndefined(); // an exact name
    expect(frontendName(config, all, "free")).toBe("free");
  });

  test("key rules may name buckets by glob", () => {
    const rule = config.keys[0]!;
    expect(ruleAllows(rule, "logs-x", "GetObject")).toBe(true);
    expect(ruleAllows(rule, "data", "PutObject")).toBe(true);
    expect(ruleAllows(rule, "other", "GetObject")).toBe(false);
  });

});

const req = (host: string, url: string, method = "GET", headers: Record<string, string> = {}) =>
  parseRequest({ method, url, rawHeaders: Object.entries({ host, ...headers }).flat(), clientAddress: "", scheme: "http" }, "id", config.server.domains);

describe("virtual-hosted frontend", () => {
  test("BUCKET.DOMAIN names the bucket and the whole path is the key; other hosts are path style", () => {
    expect(req("data.s3.example.com:6190", "/a/b%20c")).toMatchObject({ bucket: "data", key: "a/b c", virtualHosted: true, operation: "GetObject" });
    expect(req("Data.S3.Example.com", "/?list-type=2")).toMatchObject({ bucket: "data", key: "", operation: "ListObjectsV2" });
    expect(req("s3.example.com", "/data/k")).toMatchObject({ bucket: "data", key: "k", virtualHosted: false });
    expect(req("127.0.0.1:6190", "/data/k")).toMatchObject({ bucket: "data", key: "k", virtualHosted: false });
    expect(req("a.b.s3.example.com", "/k").bucket).toBe("a.b");
    expect(req("s3.example.com", "/")).toMatchObject({ bucket: "", operation: "ListBuckets" });
  });
});

describe("ListBuckets", () => {
  const names = ["b", "a", "c", "ab", "d"].map((name) => ({ name }));
  const q = (query: Record<string, string>) => listBucketsQuery(new Map(Object.entries(query)));

  test("pages by MaxBuckets and ContinuationToken, filtered by Prefix, in name order", () => {
    const first = bucketPage(names, q({ "max-buckets": "2" }));
    expect(first.buckets.map((b) => b.name)).toEqual(["a", "ab"]);
    const second = bucketPage(names, q({ "max-buckets": "2", "continuation-token": first.next! }));
    expect(second.buckets.map((b) => b.name)).toEqual(["b", "c"]);
    const last = bucketPage(names, q({ "max-buckets": "2", "continuation-token": second.next! }));
    expect(last).toEqual({ buckets: [{ name: "d" }], next: undefined });
    expect(bucketPage(names, q({ prefix: "a" })).buckets.map((b) => b.name)).toEqual(["a", "ab"]);
    for (const bad of <Record<string, string>[]>[{ "max-buckets": "0" }, { "max-buckets": "10001" }, { "max-buckets": "x" }, { "continuation-token": "!!" }, { "continuation-token": "" }])
      expect(codeOf(() => q(bad))).toBe("400 InvalidArgument");
  });

  test("the document carries the token and the prefix; a backend's listing is read back", () => {
    const xml = listBucketsXml({ buckets: [{ name: "a", created: "2026-01-01T00:00:00.000Z" }], next: "YQ" }, "a", "AK", new Date(0));
    expect(xml).toContain("<Bucket><Name>a</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>");
    expect(xml).toContain("<ContinuationToken>YQ</ContinuationToken><Prefix>a</Prefix>");
    expect(bucketsOfListing(xml)).toEqual([{ name: "a", created: "2026-01-01T00:00:00.000Z" }]);
    expect(bucketsOfListing(xml + xml, 1)).toHaveLength(1);
  });
});

describe("public buckets", () => {
  const anon = (url: string, method = "GET", headers: Record<string, string> = {}) => {
    const r = req("127.0.0.1", url, method, headers);
    return codeOf(() => anonymousIdentity(r, config.buckets.get(r.bucket)));
  };
  test("only the listed operations, with their own query parameters and no x-amz-* header", () => {
    expect(anon("/data/k?response-content-type=text/plain")).toBe("ok");
    expect(anon("/data?list-type=2&prefix=a")).toBe("ok");
    expect(anon("/data/k", "HEAD")).toBe("403 AccessDenied"); // HeadObject is not listed
    expect(anon("/data/k", "PUT")).toBe("403 AccessDenied");
    expect(anon("/data/k", "DELETE")).toBe("403 AccessDenied");
    expect(anon("/data/k", "PUT", { "x-amz-copy-source": "data/j" })).toBe("403 AccessDenied");
    expect(anon("/data/k", "GET", { "x-amz-checksum-mode": "ENABLED" })).toBe("403 AccessDenied");
    expect(anon("/data/k?acl")).toBe("403 AccessDenied");
    expect(anon("/data?policyStatus")).toBe("403 AccessDenied"); // read as ListObjects, but not its parameter
    expect(anon("/data")).toBe("403 AccessDenied"); // ListObjects (V1) is not listed
    expect(anon("/logs-exact/k")).toBe("403 AccessDenied");
    expect(anon("/")).toBe("403 AccessDenied");
  });
});
