import { describe, expect, test } from "bun:test";
import {
  AwsChunkedDecoder, chunkSignature, payloadMode, Reframer, reframedLength, trailerSignature, type ChunkChain, type DecodeOptions,
} from "../../src/sigv4/chunked.ts";
import { signingKey } from "../../src/sigv4/sigv4.ts";
import { s3Code } from "./s3code.ts";
import type { S3Error } from "../../src/errors.ts";

// The example of "Signature Calculations for the Authorization Header: Transferring Payload in
// Multiple Chunks" in the S3 documentation: 66560 bytes of "a" in chunks of 65536 and 1024.
const chain: ChunkChain = {
  signingKey: signingKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3"),
  datetime: "20130524T000000Z",
  scope: "20130524/us-east-1/s3/aws4_request",
  seedSignature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
};
const SIGS = [
  "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
  "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
  "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
const a = (n: number) => new Uint8Array(n).fill(97);
const enc = new TextEncoder();

function docBody(sigs = SIGS, chunks = [a(65536), a(1024), a(0)]): Uint8Array {
  const parts: Uint8Array[] = [];
  chunks.forEach((c, i) => {
    parts.push(enc.encode(`${c.length.toString(16)};chunk-signature=${sigs[i]}\r\n`), c, enc.encode("\r\n"));
  });
  return Buffer.concat(parts);
}

/** The body in pieces of `piece` bytes, as a connection delivers it. */
function piecesOf(body: Uint8Array, piece = 1000): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < body.length; at += piece) out.push(body.slice(at, at + piece));
  return out;
}

/** Decodes the body fed in pieces; `released` counts the data bytes given out before a fault. */
function decodeWith(body: Uint8Array, o: DecodeOptions, piece?: number) {
  const decoder = new AwsChunkedDecoder(o);
  const out: Uint8Array[] = [];
  let released = 0;
  const run = async () => {
    for (const p of piecesOf(body, piece)) {
      for (const d of decoder.push(p)) {
        out.push(d.slice()); // a copy: the pieces given out are views of the input
        released += d.length;
      }
    }
    const { data, trailers } = decoder.end();
    out.push(...data);
    return { data: new Uint8Array(Buffer.concat(out)), trailers };
  };
  return { result: run(), released: () => released };
}

const decode = (body: Uint8Array, o: DecodeOptions, piece?: number) => decodeWith(body, o, piece).result;

describe("signed chunks (documentation vector)", () => {
  const o: DecodeOptions = { mode: "signed-chunks", decodedLength: 66560, chain };

  test("signatures chain from the seed", () => {
    expect(chunkSignature(chain, chain.seedSignature, a(65536))).toBe(SIGS[0]!);
    expect(chunkSignature(chain, SIGS[0]!, a(1024))).toBe(SIGS[1]!);
    expect(chunkSignature(chain, SIGS[1]!, a(0))).toBe(SIGS[2]!);
  });

  test.each([1, 7, 1000, 70000])("decodes exactly, whatever the network's piece size (%d)", async (piece) => {
    const body = docBody();
    expect(body.length).toBe(66824); // the documented Content-Length
    const { data } = await decode(body, o, piece);
    expect(data).toEqual(a(66560));
  });

  test("a tampered byte, a bad signature, a wrong length or a cut body each fail", async () => {
    const tampered = docBody();
    tampered[200] = 98;
    expect(await s3Code(decode(tampered, o))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(decode(docBody([SIGS[0]!, SIGS[2]!, SIGS[2]!]), o))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(decode(docBody([SIGS[0]!, SIGS[1]!, SIGS[0]!]), o))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(decode(docBody(), { ...o, decodedLength: 66561 }))).toBe("IncompleteBody");
    expect(await s3Code(decode(docBody(), { ...o, decodedLength: 66559 }))).toBe("IncompleteBody");
    expect(await s3Code(decode(docBody().subarray(0, 66000), o))).toBe("IncompleteBody");
    expect(await s3Code(decode(Buffer.concat([docBody(), enc.encode("x")]), o))).toBe("IncompleteBody");
    expect(await s3Code(decode(enc.encode("zz;chunk-signature=00\r\n"), o))).toBe("IncompleteBody");
  });

  test("the last data is held back until the final chunk is verified", async () => {
    // the first chunk at most: the second waits for the final one. A fault throws, and what the
    // same input would have released is not given out either.
    for (const [piece, released] of [[1, 65536], [50, 65536], [1000, 0], [70000, 0]]) {
      const run = decodeWith(docBody([SIGS[0]!, SIGS[1]!, "0".repeat(64)]), o, piece);
      expect(await s3Code(run.result)).toBe("SignatureDoesNotMatch");
      expect(run.released()).toBe(released!);
    }
  });

  test("nothing is released before the end of a body cut after its final chunk", () => {
    const decoder = new AwsChunkedDecoder(o);
    const body = docBody();
    expect(Buffer.concat(decoder.push(body.subarray(0, body.length - 2))).length).toBe(65536);
    expect(() => decoder.end()).toThrow("incomplete");
  });
});

describe("trailers", () => {
  const crc = "sOO8/Q==";
  const unsigned = enc.encode(`6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:${crc}\r\n\r\n`);
  const o: DecodeOptions = { mode: "unsigned-trailer", decodedLength: 11, trailer: "x-amz-checksum-crc32" };

  test("unsigned payload with a trailing checksum", async () => {
    const { data, trailers } = await decode(unsigned, o, 3);
    expect(new TextDecoder().decode(data)).toBe("hello world");
    expect(trailers).toEqual([["x-amz-checksum-crc32", crc]]);
    expect(await s3Code(decode(unsigned, { ...o, trailer: "x-amz-checksum-sha256" }))).toBe("MalformedTrailerError");
    expect(await s3Code(decode(enc.encode(`6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:abc\r\n\r\n`), o))).toBe("InvalidRequest");
    expect(await s3Code(decode(enc.encode(`6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n`), o))).toBe("MalformedTrailerError");
  });

  test("minio-go's unsigned trailer, with one CRLF more, is accepted; data after it is not", async () => {
    const mc = enc.encode(`6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:${crc}\n\r\n\r\n`);
    const { data, trailers } = await decode(mc, o, 5);
    expect(new TextDecoder().decode(data)).toBe("hello world");
    expect(trailers).toEqual([["x-amz-checksum-crc32", crc]]);
    expect(await s3Code(decode(enc.encode(`6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:${crc}\n\r\n\r\nX`), o))).toBe("IncompleteBody");
  });

  test("signed payload with a signed trailer", async () => {
    const s1 = chunkSignature(chain, chain.seedSignature, enc.encode("hello world"));
    const s0 = chunkSignature(chain, s1, a(0));
    const st = trailerSignature(chain, s0, [["x-amz-checksum-crc32", crc]]);
    const body = (trailerSig: string, value = crc) =>
      enc.encode(`b;chunk-signature=${s1}\r\nhello world\r\n0;chunk-signature=${s0}\r\nx-amz-checksum-crc32:${value}\r\nx-amz-trailer-signature:${trailerSig}\r\n\r\n`);
    const so: DecodeOptions = { mode: "signed-trailer", decodedLength: 11, trailer: "x-amz-checksum-crc32", chain };
    expect((await decode(body(st), so)).trailers).toEqual([["x-amz-checksum-crc32", crc]]);
    // minio-go ends the checksum line with "\n\r\n"
    const mc = new TextDecoder().decode(body(st)).replace(`${crc}\r\n`, `${crc}\n\r\n`);
    expect((await decode(enc.encode(mc), so)).trailers).toEqual([["x-amz-checksum-crc32", crc]]);
    expect(await s3Code(decode(body(st, "AAAAAA=="), so))).toBe("SignatureDoesNotMatch");
    expect(await s3Code(decode(body("0".repeat(64)), so))).toBe("SignatureDoesNotMatch");
  });

  test("a refusal's message names what is wrong without echoing a signature", async () => {
    const s1 = chunkSignature(chain, chain.seedSignature, enc.encode("hello world"));
    const so: DecodeOptions = { mode: "signed-trailer", decodedLength: 11, trailer: "x-amz-checksum-crc32", chain };
    const message = (body: string, opts: DecodeOptions) => decode(enc.encode(body), opts).then(() => "", (e: S3Error) => `${e.code}: ${e.message}`);
    // a chunk header with a signature one digit short
    const header = await message(`b;chunk-signature=${s1.slice(1)}\r\nhello world\r\n`, so);
    expect(header).toContain("IncompleteBody");
    expect(header).not.toContain(s1.slice(1, 20));
    // a trailer signature where only the checksum was announced, and a trailer line without a name
    const extra = await message(`6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:${crc}\r\nx-amz-trailer-signature:${s1}\r\n\r\n`, o);
    expect(extra).toContain('unexpected trailer "x-amz-trailer-signature"');
    expect(extra).not.toContain(s1.slice(0, 20));
    const nameless = await message(`6\r\nhello \r\n5\r\nworld\r\n0\r\n${s1}\r\n\r\n`, o);
    expect(nameless).toContain("MalformedTrailerError");
    expect(nameless).not.toContain(s1.slice(0, 20));
  });

  test("re-framed for the backend in fixed chunks, with a length known in advance", async () => {
    for (const [size, chunk] of [[0, 4], [11, 4], [12, 4], [11, 64 * 1024], [200_000, 64 * 1024]] as const) {
      const data = new Uint8Array(size).map((_, i) => i % 251);
      const wire = Buffer.concat([enc.encode(`${size.toString(16)}\r\n`), data, enc.encode(`\r\n`), ...(size ? [enc.encode(`0\r\n`)] : []), enc.encode(`x-amz-checksum-crc32:${crc}\r\n\r\n`)]);
      const input = size ? wire : enc.encode(`0\r\nx-amz-checksum-crc32:${crc}\r\n\r\n`);
      const decoder = new AwsChunkedDecoder({ ...o, decodedLength: size });
      const framer = new Reframer(chunk);
      const out: Uint8Array[] = [];
      for (const p of piecesOf(input, 1000)) out.push(...framer.push(decoder.push(p)).map((f) => f.slice()));
      const { data: rest, trailers } = decoder.end();
      out.push(...framer.push(rest), ...framer.end(trailers));
      const framed = Buffer.concat(out);
      expect(framed.length).toBe(reframedLength(size, "x-amz-checksum-crc32", chunk));
      // and it decodes back to the same bytes
      expect((await decode(framed, { ...o, decodedLength: size })).data).toEqual(data);
    }
  });
});

test("payload modes", () => {
  expect(payloadMode("UNSIGNED-PAYLOAD")).toBe("plain");
  expect(payloadMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")).toBe("signed-chunks");
  expect(payloadMode("STREAMING-UNSIGNED-PAYLOAD-TRAILER")).toBe("unsigned-trailer");
  expect(payloadMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")).toBe("signed-trailer");
  expect(() => payloadMode("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")).toThrow("SigV4a");
});
