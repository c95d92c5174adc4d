import { describe, expect, test } from "bun:test";
import { authenticate } from "../../src/pipeline/authenticate.ts";
import { parseRequest } from "../../src/pipeline/request.ts";
import { resign } from "../../src/pipeline/resign.ts";
import { canonicalValue } from "../../src/sigv4/sigv4.ts";
import { s3Code } from "./s3code.ts";

// The signed examples of the S3 SigV4 documentation ("Signature Calculations for the
// Authorization Header", "Authenticating Requests: Using Query Parameters").
const AK = "AKIAIOSFODNN7EXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const NOW = Date.UTC(2013, 4, 24, 0, 0, 0);
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const lookup = async (ak: string) => (ak === AK ? SECRET : null);
const POLICY = { maxClockSkew: 900, sigv2: true };

function req(method: string, url: string, headers: Record<string, string>) {
  return parseRequest({ method, url, rawHeaders: Object.entries({ host: "examplebucket.s3.amazonaws.com", ...headers }).flat(), clientAddress: "127.0.0.1", scheme: "http" });
}
const auth = (signed: string, sig: string) =>
  `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=${signed},Signature=${sig}`;

describe("SigV4 documentation vectors", () => {
  const getObject = (sig: string, extra: Record<string, string> = {}) =>
    req("GET", "/test.txt", {
      range: "bytes=0-9", "x-amz-content-sha256": EMPTY, "x-amz-date": "20130524T000000Z",
      authorization: auth("host;range;x-amz-content-sha256;x-amz-date", sig), ...extra,
    });

  test("GET object with a Range header", async () => {
    const id = await authenticate(getObject("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"), lookup, NOW, POLICY);
    expect(id.accessKey).toBe(AK);
    expect(id.payloadHash).toBe(EMPTY);
  });

  test("PUT object with a storage class and a $ in the key", async () => {
    const r = req("PUT", "/test%24file.text", {
      date: "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-date": "20130524T000000Z",
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      "x-amz-content-sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
      authorization: auth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
    });
    expect(await s3Code(authenticate(r, lookup, NOW, POLICY))).toBe("ok");
  });

  test("GET bucket lifecycle (value-less query parameter)", async () => {
    const r = req("GET", "/?lifecycle", {
      "x-amz-date": "20130524T000000Z", "x-amz-content-sha256": EMPTY,
      authorization: auth("host;x-amz-content-sha256;x-amz-date", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    });
    expect(await s3Code(authenticate(r, lookup, NOW, POLICY))).toBe("ok");
  });

  test("list objects: query parameters are sorted", async () => {
    const r = req("GET", "/?prefix=J&max-keys=2", {
      "x-amz-date": "20130524T000000Z", "x-amz-content-sha256": EMPTY,
      authorization: auth("host;x-amz-content-sha256;x-amz-date", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    });
    expect(await s3Code(authenticate(r, lookup, NOW, POLICY))).toBe("ok");
  });

  test("presigned GET", async () => {
    const url = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    const id = await authenticate(req("GET", url, {}), lookup, NOW + 3600_000, POLICY);
    expect(id.payloadHash).toBe("UNSIGNED-PAYLOAD");
    expect(await s3Code(authenticate(req("GET", url, {}), lookup, NOW + 86401_000, POLICY))).toBe("AccessDenied");
    expect(await s3Code(authenticate(req("GET", url.replace("test.txt", "test.txu"), {}), lookup, NOW, POLICY))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(authenticate(req("GET", url.replace("86400", "604801"), {}), lookup, NOW, POLICY))).toBe("AuthorizationQueryParametersError");
  });

  test("each fault has its own error", async () => {
    const good = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    expect(await s3Code(authenticate(getObject(good.replace("f0", "f1")), lookup, NOW, POLICY))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(authenticate(getObject(good, { range: "bytes=0-10" }), lookup, NOW, POLICY))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(authenticate(getObject(good), async () => null, NOW, POLICY))).toBe("InvalidAccessKeyId");
    expect(await s3Code(authenticate(getObject(good), async () => SECRET + "x", NOW, POLICY))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(authenticate(getObject(good), lookup, NOW + 16 * 60_000, POLICY))).toBe("RequestTimeTooSkewed");
    expect(await s3Code(authenticate(getObject(good), lookup, NOW - 16 * 60_000, POLICY))).toBe("RequestTimeTooSkewed");
    expect(await s3Code(authenticate(getObject(good), lookup, NOW + 14 * 60_000, POLICY))).toBe("ok");
    expect(await s3Code(authenticate(req("GET", "/test.txt", { "x-amz-date": "20130524T000000Z" }), lookup, NOW, POLICY))).toBe("AccessDenied");
    expect(await s3Code(authenticate(getObject("x", { authorization: "AWS AKIA:abc" }), lookup, NOW, { ...POLICY, sigv2: false }))).toBe("InvalidRequest");
    expect(await s3Code(authenticate(getObject("x", { authorization: "AWS4-ECDSA-P256-SHA256 Credential=a" }), lookup, NOW, POLICY))).toBe("NotImplemented");
    expect(await s3Code(authenticate(getObject("x", { authorization: "AWS4-HMAC-SHA256 garbage" }), lookup, NOW, POLICY))).toBe("AuthorizationHeaderMalformed");
  });

  test("a dot-segment path is verified as sent, not as normalised", async () => {
    // signed for /test.txt; the same signature must not hold for /x/../test.txt
    const r = req("GET", "/x/../test.txt", {
      range: "bytes=0-9", "x-amz-content-sha256": EMPTY, "x-amz-date": "20130524T000000Z",
      authorization: auth("host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
    });
    expect(await s3Code(authenticate(r, lookup, NOW, POLICY))).toBe("SignatureDoesNotMatch");
  });
});

describe("requests S3 would refuse", () => {
  const sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  const signed = "host;range;x-amz-content-sha256;x-amz-date";
  const raw = (...extra: string[]) =>
    parseRequest({
      method: "GET", url: "/test.txt", clientAddress: "", scheme: "http",
      rawHeaders: ["host", "examplebucket.s3.amazonaws.com", "range", "bytes=0-9", "x-amz-content-sha256", EMPTY, "x-amz-date", "20130524T000000Z", ...extra],
    });
  const code = (r: ReturnType<typeof raw>) => s3Code(authenticate(r, lookup, NOW, POLICY));

  test("the vector itself passes", async () => {
    expect(await code(raw("authorization", auth(signed, sig)))).toBe("ok");
  });

  test("an unsigned x-amz-* header is refused, naming it", async () => {
    const r = raw("authorization", auth(signed, sig), "x-amz-copy-source", "/other/secret");
    const err = await authenticate(r, lookup, NOW, POLICY).catch((e) => e);
    expect(err.code).toBe("AccessDenied");
    expect(err.status).toBe(403);
    expect(err.detail).toEqual({ HeadersNotSigned: "x-amz-copy-source" });
  });

  test("a repeated Authorization header, even in two halves, is refused", async () => {
    expect(await code(raw("authorization", auth(signed, sig), "authorization", auth(signed, sig)))).toBe("AuthorizationHeaderMalformed");
    const [first, second] = [auth(signed, sig).split(",Signature=")[0]!, `Signature=${sig}`];
    expect(await code(raw("authorization", first, "authorization", second))).toBe("AuthorizationHeaderMalformed");
  });

  test("unknown or repeated Authorization parameters are refused", async () => {
    expect(await code(raw("authorization", auth(signed, sig) + ",Foo=bar"))).toBe("AuthorizationHeaderMalformed");
    expect(await code(raw("authorization", auth(signed, sig) + `,Signature=${sig}`))).toBe("AuthorizationHeaderMalformed");
    expect(await code(raw("authorization", auth(signed, sig) + ",garbage"))).toBe("AuthorizationHeaderMalformed");
  });

  test("repeated x-amz-date or x-amz-content-sha256 is refused", async () => {
    expect(await code(raw("authorization", auth(signed, sig), "x-amz-date", "20130524T000000Z"))).toBe("InvalidArgument");
    expect(await code(raw("authorization", auth(signed, sig), "x-amz-content-sha256", EMPTY))).toBe("InvalidArgument");
  });

  test("a repeated presigned parameter is refused, whichever copy is valid", async () => {
    const url = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    const presigned = (u: string) => s3Code(authenticate(parseRequest({ method: "GET", url: u, clientAddress: "", scheme: "http", rawHeaders: ["host", "examplebucket.s3.amazonaws.com"] }), lookup, NOW + 3600_000, POLICY));
    expect(await presigned(url)).toBe("ok");
    for (const dup of ["X-Amz-Signature=00", "X-Amz-Expires=604800", "X-Amz-Date=20130524T000000Z", "X-Amz-Credential=x", "X-Amz-SignedHeaders=host", "X-Amz-Algorithm=AWS4-HMAC-SHA256"])
      expect(await presigned(`${url}&${dup}`)).toBe("AuthorizationQueryParametersError");
  });
});

describe("header values are signed as the bytes sent", () => {
  // node:http hands header values over one char per byte; fetch() sends them back the same way
  const bytes = (s: string) => Buffer.from(s, "utf8").toString("latin1");

  test("white space is judged on the UTF-8 reading: the 0xA0 of 'à' is not a space", () => {
    expect(canonicalValue(bytes("  voilà  à la  carte "))).toBe(bytes("voilà à la carte"));
    expect(canonicalValue(bytes("naïve\u00a0 café"))).toBe(bytes("naïve café"));
    expect(canonicalValue("\xe9t\xe9 a  b")).toBe("\xe9t\xe9 a b"); // not UTF-8: bytes kept, ASCII spaces folded
    expect(canonicalValue(" plain   ascii ")).toBe("plain ascii");
  });

  test("osp's re-signature of a UTF-8 metadata value verifies as a server would verify it", async () => {
    const value = bytes("Grüße, 東京 — à bientôt");
    const url = "http://127.0.0.1:9000/bucket/key";
    const headers = await resign("PUT", url, new Map([["x-amz-meta-note", value], ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]]), { kind: "hmac", accessKey: AK, secretKey: SECRET }, { region: "us-east-1" });
    const received = (v: string) =>
      parseRequest({ method: "PUT", url: "/bucket/key", clientAddress: "", scheme: "http", rawHeaders: ["host", "127.0.0.1:9000", ...[...headers].flat().map((h) => (h === value ? v : h))] });
    expect((await authenticate(received(value), lookup, Date.now(), POLICY)).accessKey).toBe(AK);
    const tampered = received(bytes("Grüße, 東京 — a bientôt"));
    expect(await s3Code(authenticate(tampered, lookup, Date.now(), POLICY))).toBe("SignatureDoesNotMatch");
  });
});

describe("Signature Version 2", () => {
  // the signed examples of the S3 documentation ("Signing and authenticating REST requests"),
  // path-style: the bucket is the first path segment
  const v2 = (method: string, url: string, date: string, signature: string, extra: Record<string, string> = {}) =>
    parseRequest({
      method, url, clientAddress: "", scheme: "http",
      rawHeaders: Object.entries({ host: "s3.us-west-1.amazonaws.com", date, authorization: `AWS ${AK}:${signature}`, ...extra }).flat(),
    });
  const at = (date: string) => Date.parse(date) + 5000;
  const get = v2("GET", "/awsexamplebucket1/photos/puppy.jpg", "Tue, 27 Mar 2007 19:36:42 +0000", "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");

  test("documentation vectors: GET, PUT with a Content-Type, a listing, a subresource", async () => {
    expect(await s3Code(authenticate(get, lookup, at("Tue, 27 Mar 2007 19:36:42 +0000"), POLICY))).toBe("ok");
    const put = v2("PUT", "/awsexamplebucket1/photos/puppy.jpg", "Tue, 27 Mar 2007 21:15:45 +0000", "iqRzw+ileNPu1fhspnRs8nOjjIA=", { "content-type": "image/jpeg", "content-length": "94328" });
    expect(await s3Code(authenticate(put, lookup, at("Tue, 27 Mar 2007 21:15:45 +0000"), POLICY))).toBe("ok");
    const list = v2("GET", "/awsexamplebucket1/?prefix=photos&max-keys=50&marker=puppy", "Tue, 27 Mar 2007 19:42:41 +0000", "m0WP8eCtspQl5Ahe6L1SozdX9YA=");
    expect(await s3Code(authenticate(list, lookup, at("Tue, 27 Mar 2007 19:42:41 +0000"), POLICY))).toBe("ok");
    const acl = v2("GET", "/awsexamplebucket1/?acl", "Tue, 27 Mar 2007 19:44:46 +0000", "82ZHiFIjc+WbcwFKGUVEQspPn+0=");
    const id = await authenticate(acl, lookup, at("Tue, 27 Mar 2007 19:44:46 +0000"), POLICY);
    expect(id).toEqual({ accessKey: AK, signedHeaders: ["date"], payloadHash: "UNSIGNED-PAYLOAD" });
  });

  test("each fault has its own error", async () => {
    const now = at("Tue, 27 Mar 2007 19:36:42 +0000");
    const with_ = (extra: Record<string, string>) => v2("GET", "/awsexamplebucket1/photos/puppy.jpg", "Tue, 27 Mar 2007 19:36:42 +0000", "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=", extra);
    expect(await s3Code(authenticate(with_({ "x-amz-meta-added": "1" }), lookup, now, POLICY))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(authenticate(v2("GET", "/awsexamplebucket1/photos/kitten.jpg", "Tue, 27 Mar 2007 19:36:42 +0000", "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="), lookup, now, POLICY))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(authenticate(get, async () => SECRET + "x", now, POLICY))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(authenticate(get, async () => null, now, POLICY))).toBe("InvalidAccessKeyId");
    expect(await s3Code(authenticate(get, lookup, now + 16 * 60_000, POLICY))).toBe("RequestTimeTooSkewed");
    expect(await s3Code(authenticate(get, lookup, now, { ...POLICY, sigv2: false }))).toBe("InvalidRequest");
    expect(await s3Code(authenticate(v2("GET", "/b/k", "not a date", "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="), lookup, now, POLICY))).toBe("AccessDenied");
    expect(await s3Code(authenticate(with_({ authorization: `AWS ${AK}` }), lookup, now, POLICY))).toBe("AuthorizationHeaderMalformed");
  });

  test("a query parameter V2 does not sign is refused unless it only shapes a listing", async () => {
    const now = at("Tue, 27 Mar 2007 19:36:42 +0000");
    // the signature still matches (V2 signs only sub-resources), but osp would re-sign GetObjectAttributes
    for (const extra of ["attributes", "object-lock", "x-unknown=1"]) {
      const req = v2("GET", `/awsexamplebucket1/photos/puppy.jpg?${extra}`, "Tue, 27 Mar 2007 19:36:42 +0000", "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
      expect(await s3Code(authenticate(req, lookup, now, POLICY))).toBe("AccessDenied");
    }
    const sdk = v2("GET", "/awsexamplebucket1/photos/puppy.jpg?x-id=GetObject", "Tue, 27 Mar 2007 19:36:42 +0000", "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    expect(await s3Code(authenticate(sdk, lookup, now, POLICY))).toBe("ok");
  });

  test("presigned: valid until Expires, at most a week ahead, no parameter twice", async () => {
    // HMAC-SHA1 of "GET\n\n\n1175139620\n/awsexamplebucket1/photos/puppy.jpg", computed with Python's hmac
    const url = `/awsexamplebucket1/photos/puppy.jpg?AWSAccessKeyId=${AK}&Expires=1175139620&Signature=1No4mq5ETf02z8aet9voy6gui6E%3D`;
    const presigned = (u: string, now: number) =>
      s3Code(authenticate(parseRequest({ method: "GET", url: u, clientAddress: "", scheme: "http", rawHeaders: ["host", "s3.amazonaws.com"] }), lookup, now, POLICY));
    expect(await presigned(url, 1175139619_000)).toBe("ok");
    expect(await presigned(url, 1175139620_000)).toBe("AccessDenied");
    expect(await presigned(url, 1175139620_000 - 8 * 86400_000)).toBe("AuthorizationQueryParametersError");
    expect(await presigned(url.replace("puppy", "kitty"), 1175139619_000)).toBe("SignatureDoesNotMatch");
    expect(await presigned(`${url}&Signature=AAAA`, 1175139619_000)).toBe("AuthorizationQueryParametersError");
    expect(await presigned(url.replace("Expires=1175139620&", ""), 1175139619_000)).toBe("AuthorizationQueryParametersError");
    const both = parseRequest({ method: "GET", url, clientAddress: "", scheme: "http", rawHeaders: ["host", "s3.amazonaws.com", "authorization", `AWS ${AK}:x`] });
    expect(await s3Code(authenticate(both, lookup, 1175139619_000, POLICY))).toBe("InvalidArgument");
  });
});
