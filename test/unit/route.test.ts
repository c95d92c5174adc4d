import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config.ts";
import { backendCopySource, parseCopySource, upstreamUrl } from "../../src/pipeline/route.ts";
import { renameBucketInXml } from "../../src/pipeline/respond.ts";
import { s3Operation } from "../../src/pipeline/operation.ts";
import { forwardedHeaders } from "../../src/pipeline/resign.ts";
import { upstreamBody } from "../../src/pipeline/payload.ts";
import { parseRequest } from "../../src/pipeline/request.ts";
import { canonicalQuery, headerMap, parseQuery, uriEncode } from "../../src/sigv4/sigv4.ts";
import { S3Error } from "../../src/errors.ts";

const config = parseConfig(`
[buckets.path-b]
endpoint = "http://127.0.0.1:9000"
addressing_style = "path"
backend_bucket = "real-b"
[buckets.virt-b]
endpoint = "https://s3.eu-de.example.com"
`, {}, "/");
const pathB = config.buckets.get("path-b")!;
const virtB = config.buckets.get("virt-b")!;

describe("route", () => {
  test("path-style and virtual-hosted URLs with the backend name", () => {
    expect(upstreamUrl(pathB, "dir/a b+c%.txt", [])).toBe("http://127.0.0.1:9000/real-b/dir/a%20b%2Bc%25.txt");
    expect(upstreamUrl(virtB, "k", [["uploadId", "x/y"], ["partNumber", "2"]])).toBe("https://virt-b.s3.eu-de.example.com/k?partNumber=2&uploadId=x%2Fy");
    expect(upstreamUrl(pathB, "", [["list-type", "2"], ["prefix", "a b"]])).toBe("http://127.0.0.1:9000/real-b?list-type=2&prefix=a%20b");
    expect(upstreamUrl(virtB, "", [])).toBe("https://virt-b.s3.eu-de.example.com/");
  });

  test("keys that URL parsing would change keep their bytes", () => {
    expect(upstreamUrl(pathB, "a//b\\c/..d/日本", [])).toBe("http://127.0.0.1:9000/real-b/a//b%5Cc/..d/%E6%97%A5%E6%9C%AC");
    expect(new URL(upstreamUrl(pathB, "a//b\\c/..d/日本", [])).pathname).toBe("/real-b/a//b%5Cc/..d/%E6%97%A5%E6%9C%AC");
  });

  test("dot-segment keys are refused, not resolved into another key", () => {
    expect(() => upstreamUrl(pathB, "a/../other", [])).toThrow(S3Error);
    for (const key of ["./x", "..", ".", "a/.", "a/..", "a/./b", "a//../b"]) expect(() => upstreamUrl(pathB, key, [])).toThrow(S3Error);
    for (const key of ["...", "a/...", ".x", "x.", "a/..b", "a..b/c", "a/.b./c"]) expect(upstreamUrl(pathB, key, [])).toBe(`http://127.0.0.1:9000/real-b/${key}`);
  });

  test("presigned parameters are not forwarded; response-* overrides are", () => {
    const q = parseQuery("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab&X-Amz-Credential=a%2Fb&response-content-disposition=attachment%3B%20x");
    expect(upstreamUrl(pathB, "k", q)).toBe("http://127.0.0.1:9000/real-b/k?response-content-disposition=attachment%3B%20x");
  });

  test("copy source", () => {
    expect(parseCopySource("/path-b/dir/a%20b")).toEqual({ bucket: "path-b", key: "dir/a b", versionId: undefined });
    expect(parseCopySource("path-b/k?versionId=v%2B1")).toEqual({ bucket: "path-b", key: "k", versionId: "v+1" });
    expect(backendCopySource(pathB, { bucket: "path-b", key: "a b/c", versionId: "v+1" })).toBe("/real-b/a%20b/c?versionId=v%2B1");
    expect(() => parseCopySource("nokey")).toThrow(S3Error);
    expect(() => parseCopySource("b/k?x=1")).toThrow(S3Error);
  });
});

describe("canonical forms", () => {
  test("UriEncode", () => {
    expect(uriEncode("a b/c~d*e'(f)!+=&", true)).toBe("a%20b/c~d%2Ae%27%28f%29%21%2B%3D%26");
    expect(uriEncode("a/b", false)).toBe("a%2Fb");
  });
  test("query: repeated names are kept, '+' is a plus, sorting is by name then value", () => {
    expect(canonicalQuery(parseQuery("b=2&a=1&a=0&c&d=x+y"))).toBe("a=0&a=1&b=2&c=&d=x%2By");
  });
  test("header values are combined in arrival order", () => {
    const h = headerMap(["X-Amz-Meta-A", "1", "x-amz-meta-a", "2"]);
    expect(h.get("x-amz-meta-a")).toEqual(["1", "2"]);
  });
});

describe("re-signing input", () => {
  test("client auth and hop-by-hop headers go; everything S3 reads stays when signed", () => {
    const h = headerMap([
      "Authorization", "AWS4-HMAC-SHA256 ...", "Host", "osp", "X-Amz-Date", "20200101T000000Z", "Connection", "keep-alive, x-drop",
      "X-Drop", "1", "Transfer-Encoding", "chunked", "Expect", "100-continue", "X-Amz-Security-Token", "t",
      "x-amz-server-side-encryption", "aws:kms", "x-amz-storage-class", "STANDARD_IA", "x-amz-acl", "private",
      "x-amz-object-lock-mode", "GOVERNANCE", "x-amz-checksum-crc32", "AAAAAA==", "x-amz-meta-k", "v", "x-amz-tagging", "a=b",
      "If-None-Match", "*", "x-amz-copy-source-if-match", "e", "Content-MD5", "m", "Content-Length", "3",
      "x-amz-server-side-encryption-customer-key", "k",
    ]);
    const out = forwardedHeaders(h, [...h.keys()], { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" });
    expect([...out.keys()].sort()).toEqual([
      "content-length", "content-md5", "if-none-match", "x-amz-acl", "x-amz-checksum-crc32", "x-amz-content-sha256", "x-amz-copy-source-if-match",
      "x-amz-meta-k", "x-amz-object-lock-mode", "x-amz-server-side-encryption", "x-amz-server-side-encryption-customer-key", "x-amz-storage-class", "x-amz-tagging",
    ]);
  });
  test("unsigned headers: only the harmless ones are forwarded", () => {
    const h = headerMap([
      "Host", "osp", "Content-Type", "text/plain", "Content-Length", "3", "Range", "bytes=0-1", "If-Match", "e", "User-Agent", "ua",
      "Content-MD5", "m", "Cache-Control", "no-cache", "x-minio-internal", "1", "X-Forwarded-For", "10.0.0.1", "X-Custom", "c",
      "x-amz-meta-k", "v",
    ]);
    const out = forwardedHeaders(h, ["host", "x-custom"], {});
    expect([...out.keys()].sort()).toEqual(["cache-control", "content-length", "content-md5", "content-type", "if-match", "range", "user-agent", "x-custom"]);
  });
  const put = (headers: Record<string, string>) =>
    parseRequest({ method: "PUT", url: "/b/k", rawHeaders: Object.entries({ host: "osp", ...headers }).flat(), clientAddress: "", scheme: "http" });
  const identity = (payloadHash: string) => ({ accessKey: "a", payloadHash, signedHeaders: [] });

  test("the client's body hash reaches the backend so it still checks the body", () => {
    const hex = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    expect(upstreamBody(put({ "content-length": "3" }), identity(hex), true).headers).toEqual({ "x-amz-content-sha256": hex });
    expect(upstreamBody(put({ "content-length": "3" }), identity("UNSIGNED-PAYLOAD"), true).headers).toEqual({ "x-amz-content-sha256": "UNSIGNED-PAYLOAD" });
  });

  test("aws-chunked: decoded length and encodings upstream, trailers kept as trailers", () => {
    const headers = { "content-encoding": "aws-chunked,gzip", "x-amz-decoded-content-length": "11", "x-amz-trailer": "x-amz-checksum-crc32" };
    expect(upstreamBody(put(headers), identity("STREAMING-UNSIGNED-PAYLOAD-TRAILER"), true).headers).toEqual({
      "content-length": String(3 + 11 + 2 + 3 + "x-amz-checksum-crc32:sOO8/Q==\r\n".length + 2), "content-encoding": "aws-chunked,gzip", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-trailer": "x-amz-checksum-crc32",
    });
    const signed = { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "11" };
    expect(upstreamBody(put(signed), identity("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), true).headers).toMatchObject({
      "content-length": "11", "content-encoding": null, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-decoded-content-length": null,
    });
    expect(() => upstreamBody(put({ "content-encoding": "aws-chunked" }), identity("STREAMING-UNSIGNED-PAYLOAD-TRAILER"), true)).toThrow("Content-Length");
    expect(() => upstreamBody(put({ "transfer-encoding": "chunked" }), identity("UNSIGNED-PAYLOAD"), true)).toThrow("Content-Length");
    // no body at all is not even the final chunk: refused before anything goes upstream
    expect(() => upstreamBody(put(signed), identity("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), false)).toThrow("incomplete");
  });
});

describe("operation names", () => {
  const op = (m: string, b: string, k: string, q: string, copy = false) => s3Operation(m, b, k, new Map(parseQuery(q)), copy);
  test.each([
    ["GET", "", "", "", false, "ListBuckets"],
    ["GET", "b", "", "list-type=2&prefix=a", false, "ListObjectsV2"],
    ["GET", "b", "", "prefix=a", false, "ListObjects"],
    ["GET", "b", "", "uploads", false, "ListMultipartUploads"],
    ["POST", "b", "", "delete", false, "DeleteObjects"],
    ["GET", "b", "", "location", false, "GetBucketLocation"],
    ["HEAD", "b", "", "", false, "HeadBucket"],
    ["GET", "b", "k", "", false, "GetObject"],
    ["PUT", "b", "k", "", false, "PutObject"],
    ["PUT", "b", "k", "", true, "CopyObject"],
    ["POST", "b", "k", "uploads", false, "CreateMultipartUpload"],
    ["PUT", "b", "k", "partNumber=1&uploadId=u", false, "UploadPart"],
    ["PUT", "b", "k", "partNumber=1&uploadId=u", true, "UploadPartCopy"],
    ["POST", "b", "k", "uploadId=u", false, "CompleteMultipartUpload"],
    ["DELETE", "b", "k", "uploadId=u", false, "AbortMultipartUpload"],
    ["GET", "b", "k", "uploadId=u", false, "ListParts"],
    ["PUT", "b", "k", "tagging", false, "PutObjectTagging"],
    ["DELETE", "b", "k", "", false, "DeleteObject"],
  ] as const)("%s /%s/%s?%s copy=%p → %s", (m, b, k, q, copy, expected) => {
    expect(op(m, b, k, q, copy)).toBe(expected);
  });
});

describe("backend bucket names in responses", () => {

  test("names, error resources and locations say the frontend name; keys that merely contain it do not change", () => {
    const xml =
      "<ListBucketResult><Name>real.b</Name><Prefix>real.b/</Prefix><Contents><Key>real.b</Key></Contents></ListBucketResult>" +
      "<Error><BucketName>real.b</BucketName><Resource>/real.b/k</Resource></Error>" +
      "<CompleteMultipartUploadResult><Location>http://10.0.0.1:9000/real.b/k</Location><Bucket>real.b</Bucket><Key>k</Key></CompleteMultipartUploadResult>" +
      "<Name>realxb</Name>";
    expect(renameBucketInXml(xml, "real.b", "front", "http://osp/front/k")).toBe(
      "<ListBucketResult><Name>front</Name><Prefix>real.b/</Prefix><Contents><Key>real.b</Key></Contents></ListBucketResult>" +
      "<Error><BucketName>front</BucketName><Resource>/front/k</Resource></Error>" +
      "<CompleteMultipartUploadResult><Location>http://osp/front/k</Location><Bucket>front</Bucket><Key>k</Key></CompleteMultipartUploadResult>" +
      "<Name>realxb</Name>",
    );
  });
});
