/** POST Object's pure parts: the form's framing, the policy document and its conditions. */
import { describe, expect, test } from "bun:test";
import { closingLength, fileStream, formBoundary, parseFormHead, type BodyReader } from "../../src/pipeline/formdata.ts";
import { checkConditions, parsePolicy, verifyPolicySignature } from "../../src/pipeline/postpolicy.ts";
import { objectHeaders, taggingHeader } from "../../src/pipeline/postobject.ts";
import { S3Error } from "../../src/errors.ts";

/** "ok", or the S3 error code the call threw. */
function s3Code(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof S3Error) return e.code;
    throw e;
  }
}

const B = "----WebKitFormBoundaryAbc123";
const form = (fields: [string, string][], file: Uint8Array, tail = `\r\n--${B}--\r\n`) =>
  Buffer.concat([
    ...fields.map(([n, v]) => Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`)),
    Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="a \\"b\\".png"\r\nContent-Type: image/png\r\n\r\n`),
    file,
    Buffer.from(tail),
  ]);

/** A reader that hands out the body in pieces of `size` bytes. */
function readerOf(body: Buffer, size: number): BodyReader & { cancelled: boolean } {
  let pos = 0;
  return {
    cancelled: false,
    async read() {
      if (pos >= body.length) return { done: true };
      const value = body.subarray(pos, (pos += size));
      return { done: false, value };
    },
    async cancel() {
      this.cancelled = true;
    },
  };
}

/** The file as fileStream gives it out, and whether it ended well; `declared` is the body's Content-Length. */
async function streamFile(body: Buffer, piece: number, declared = body.length) {
  const head = parseFormHead(body, B)!;
  const length = declared - head.headLength - closingLength(B);
  const out: Uint8Array[] = [];
  let failure: S3Error | undefined;
  const reader = fileStream(body.subarray(head.headLength, head.headLength + piece), readerOf(body.subarray(head.headLength + piece), piece), length, B, (e) => (failure = e)).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      out.push(value);
    }
  } catch {
    // the failure is reported through onError
  }
  return { data: Buffer.concat(out), failure, length };
}

describe("form framing", () => {
  test("boundary from the Content-Type", () => {
    expect(formBoundary(`multipart/form-data; boundary=${B}`)).toBe(B);
    expect(formBoundary(`multipart/form-data; charset=utf-8; boundary="a b"`)).toBe("a b");
    expect(formBoundary("multipart/form-data")).toBeUndefined();
  });

  test("fields before the file, by lower-case name; undefined until the file's headers are complete", () => {
    const body = form([["Key", "user/${filename}"], ["x-amz-meta-note", "zoë"], ["policy", "e30="]], Buffer.from("PNG"));
    const head = parseFormHead(body, B)!;
    expect(Object.fromEntries(head.fields)).toEqual({ key: "user/${filename}", "x-amz-meta-note": "zoë", policy: "e30=" });
    expect([head.filename, head.fileType]).toEqual(['a "b".png', "image/png"]);
    expect(body.subarray(head.headLength, head.headLength + 3).toString()).toBe("PNG");
    for (let cut = 0; cut < head.headLength; cut++) expect(parseFormHead(body.subarray(0, cut), B)).toBeUndefined();
    expect(s3Code(() => parseFormHead(Buffer.from(`--other\r\n`), B))).toBe("MalformedPOSTRequest");
    expect(s3Code(() => parseFormHead(Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--${B}--\r\n`), B))).toBe("InvalidArgument");
    expect(s3Code(() => parseFormHead(form([["a", "1"], ["A", "2"]], Buffer.from("")), B))).toBe("InvalidArgument");
  });

  test("the file streams out whole, however the body is cut into pieces", async () => {
    // the file holds a CRLF, dashes and most of the delimiter, which are not its end
    const file = Buffer.concat([crypto.getRandomValues(new Uint8Array(5000)), Buffer.from(`\r\n--${B.slice(0, -1)}\r\n--`), Buffer.from("end")]);
    const body = form([["key", "k"]], file);
    for (const piece of [1, 2, 7, 64, 1000, 65536]) {
      const r = await streamFile(body, piece);
      expect(r.failure).toBeUndefined();
      expect(r.data.equals(file)).toBe(true);
    }
    expect((await streamFile(form([["key", "k"]], Buffer.alloc(0)), 3)).failure).toBeUndefined();
  });

  test("another shape of body errors the stream before the file's last byte is given out", async () => {
    const file = Buffer.from("0123456789".repeat(100));
    const shapes = [
      form([["key", "k"]], file, `\r\n--${B}--`), // no CRLF after the closing delimiter
      form([["key", "k"]], file, `\r\n--${B}\r\nContent-Disposition: form-data; name="submit"\r\n\r\nUpload\r\n--${B}--\r\n`), // a field after the file
      form([["key", "k"]], file, `\r\n--${B}--\r\nepilogue`),
    ];
    for (const body of shapes) {
      for (const piece of [1, 5, 4096]) {
        const r = await streamFile(body, piece);
        expect(r.failure?.code).toBe("MalformedPOSTRequest");
        expect(r.data.length).toBeLessThan(r.length);
      }
    }
    // a body cut short of its Content-Length
    const short = await streamFile(form([["key", "k"]], file), 100, form([["key", "k"]], file).length + 10);
    expect(short.failure?.code).toBe("MalformedPOSTRequest");
    expect(short.data.length).toBeLessThan(short.length);
  });
});

const policy = (doc: unknown) => Buffer.from(JSON.stringify(doc)).toString("base64");
const later = new Date(Date.now() + 3600_000).toISOString();

describe("policy", () => {
  test("expiration and conditions are required, by their exact names", () => {
    const now = Date.now();
    expect(parsePolicy(policy({ expiration: later, conditions: [{ bucket: "b" }, ["starts-with", "$Key", "u/"], ["content-length-range", "1", 10]] }), now)).toEqual([
      { op: "eq", field: "bucket", value: "b", text: '{"bucket":"b"}' },
      { op: "starts-with", field: "key", value: "u/", text: '["starts-with","$Key","u/"]' },
      { op: "content-length-range", min: 1, max: 10, text: '["content-length-range","1",10]' },
    ]);
    const code = (doc: unknown) => s3Code(() => parsePolicy(typeof doc === "string" ? doc : policy(doc), now));
    expect(code({ expiration: "2000-01-01T00:00:00Z", conditions: [] })).toBe("AccessDenied");
    expect(code({ conditions: [] })).toBe("InvalidPolicyDocument");
    expect(code({ expiration: later })).toBe("InvalidPolicyDocument");
    expect(code({ EXPIRATION: later, conditions: [] })).toBe("InvalidPolicyDocument");
    expect(code({ expiration: later, CONDITIONS: [] })).toBe("InvalidPolicyDocument");
    expect(code({ expiration: "2030-01-01 00:00:00", conditions: [] })).toBe("InvalidPolicyDocument");
    expect(code({ expiration: later, conditions: [["content-length-range", -1, 0]] })).toBe("InvalidPolicyDocument");
    expect(code({ expiration: later, conditions: [["matches", "$key", ".*"]] })).toBe("InvalidPolicyDocument");
    expect(code({ expiration: later, conditions: [["eq", "key", "x"]] })).toBe("InvalidPolicyDocument");
    expect(code({ expiration: later, conditions: [{}] })).toBe("InvalidPolicyDocument");
    expect(code("not base64!")).toBe("InvalidPolicyDocument");
    expect(code(Buffer.from("{nope").toString("base64"))).toBe("InvalidPolicyDocument");
  });

  test("signature fields: none is anonymous; SigV2 only while [server] sigv2 allows it", async () => {
    const lookup = async (k: string) => (k === "AK" ? "secret" : null);
    const code = (fields: Record<string, string>, sigv2 = true) =>
      verifyPolicySignature(new Map(Object.entries(fields)), lookup, sigv2).then(() => "ok", (e: S3Error) => e.code);
    expect(await code({ key: "k" })).toBe("AccessDenied");
    expect(await code({ policy: "e30=" })).toBe("AccessDenied");
    expect(await code({ policy: "e30=", awsaccesskeyid: "AK", signature: "x" }, false)).toBe("InvalidRequest");
    expect(await code({ policy: "e30=", awsaccesskeyid: "AK", signature: "x" })).toBe("SignatureDoesNotMatch");
    expect(await code({ policy: "e30=", awsaccesskeyid: "NOPE", signature: "x" })).toBe("InvalidAccessKeyId");
    expect(await code({ policy: "e30=", "x-amz-algorithm": "AWS4-HMAC-SHA1", "x-amz-credential": "AK/20260101/us-east-1/s3/aws4_request", "x-amz-date": "20260101T000000Z", "x-amz-signature": "0" })).toBe("InvalidArgument");
    expect(await code({ policy: "e30=", "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": "AK/20260101/us-east-1/s3/aws4_request", "x-amz-date": "20260102T000000Z", "x-amz-signature": "0" })).toBe("InvalidArgument");
    expect(await code({ policy: "e30=", "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": "AK/20260101/us-east-1/s3/aws4_request", "x-amz-date": "20260101T000000Z", "x-amz-signature": "0" })).toBe("SignatureDoesNotMatch");
  });

  test("conditions: every one met, every field named by one", () => {
    const conditions = parsePolicy(policy({
      expiration: later,
      conditions: [{ bucket: "b" }, ["starts-with", "$key", "u/"], ["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, 100], { "x-amz-meta-a": "1" }],
    }), Date.now());
    const values = (extra: Record<string, string> = {}) =>
      new Map(Object.entries({ bucket: "b", key: "u/x", "content-type": "image/png, image/jpeg", "x-amz-meta-a": "1", policy: "p", "x-amz-signature": "s", "x-ignore-me": "1",
        "x-amz-checksum-sha256": "aTL9MeXa9HObn6eP93eygxsJlcwdCwCTysgGAZAgE7w=", ...extra }));
    checkConditions(conditions, values(), 50);
    const code = (extra: Record<string, string>, size = 50) => s3Code(() => checkConditions(conditions, values(extra), size));
    expect(code({ key: "v/x" })).toBe("AccessDenied");
    expect(code({ bucket: "c" })).toBe("AccessDenied");
    expect(code({ "content-type": "image/png, text/html" })).toBe("AccessDenied");
    expect(code({ "x-amz-meta-a": "2" })).toBe("AccessDenied");
    expect(code({ "x-amz-meta-b": "1" })).toBe("AccessDenied");
    expect(code({ acl: "public-read" })).toBe("AccessDenied");
    expect(code({}, 101)).toBe("EntityTooLarge");
    expect(code({}, 0)).toBe("EntityTooSmall");
  });

  test("fields that become the object's headers", () => {
    const h = objectHeaders(new Map(Object.entries({
      key: "k", policy: "p", "x-amz-signature": "s", "x-amz-credential": "c", "content-type": "text/plain", acl: "private",
      "x-amz-meta-note": "zoë", "x-amz-storage-class": "STANDARD", tagging: "<Tagging><TagSet><Tag><Key>a b</Key><Value>x&amp;y</Value></Tag></TagSet></Tagging>",
      success_action_status: "201",
    })), "image/png");
    expect(Object.fromEntries(h)).toEqual({
      "content-type": "text/plain", "x-amz-acl": "private", "x-amz-meta-note": Buffer.from("zoë").toString("latin1"),
      "x-amz-storage-class": "STANDARD", "x-amz-tagging": "a%20b=x%26y",
    });
    expect(s3Code(() => objectHeaders(new Map([["x-amz-meta-a", "1\r\nx-amz-acl: public-read"]]), undefined))).toBe("InvalidArgument");
    // the PUT must stay a PutObject: a copy source would read another object with the backend's keys
    expect(s3Code(() => objectHeaders(new Map([["x-amz-copy-source", "/other-bucket/secret"]]), undefined))).toBe("InvalidArgument");
    expect(s3Code(() => taggingHeader("<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>"))).toBe("MalformedXML");
  });
});
