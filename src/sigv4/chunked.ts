/**
 * aws-chunked request bodies (x-amz-content-sha256: STREAMING-*): decoded, verified, re-framed.
 *
 * Signed chunks are checked along their signature chain, seeded by the request's signature.
 * The backend cannot check them (osp re-signs the request), so nothing unverified may complete an
 * upload there: the decoder holds back the last data chunk until the final chunk, the trailer and
 * the decoded length have all been verified. A fault before that errors the body stream, the
 * backend receives fewer bytes than announced, and no object is written or overwritten.
 *
 * Trailing checksums are passed on as trailers of an unsigned aws-chunked body, re-chunked to a
 * fixed size so that its Content-Length is known in advance; the backend verifies and stores them.
 */
import { S3Error } from "../errors.ts";
import { constantTimeEqual, hmacHex, sha256Hex } from "./sigv4.ts";

export type PayloadMode = "plain" | "signed-chunks" | "unsigned-trailer" | "signed-trailer";

export function payloadMode(payloadHash: string): PayloadMode {
  switch (payloadHash) {
    case "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": return "signed-chunks";
    case "STREAMING-UNSIGNED-PAYLOAD-TRAILER": return "unsigned-trailer";
    case "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": return "signed-trailer";
  }
  if (payloadHash.startsWith("STREAMING-AWS4-ECDSA"))
    throw new S3Error(501, "NotImplemented", "SigV4a (ECDSA) streaming payloads are not supported; sign with SigV4");
  if (payloadHash.startsWith("STREAMING-")) throw new S3Error(400, "InvalidArgument", `Unknown x-amz-content-sha256 ${payloadHash}`);
  return "plain";
}

/** Base64 lengths of the checksums S3 accepts as trailers. */
const TRAILER_VALUE_LENGTH: Record<string, number> = {
  "x-amz-checksum-crc32": 8, "x-amz-checksum-crc32c": 8, "x-amz-checksum-crc64nvme": 12,
  "x-amz-checksum-sha1": 28, "x-amz-checksum-sha256": 44,
};

/** The trailer a client announces in x-amz-trailer: one checksum header, or none. */
export function announcedTrailer(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const name = value.trim().toLowerCase();
  if (!(name in TRAILER_VALUE_LENGTH)) throw new S3Error(400, "InvalidArgument", `Unsupported x-amz-trailer ${value}; expecting an x-amz-checksum-* header`);
  return name;
}

const MAX_CHUNK = 16 * 1024 * 1024;
const MAX_LINE = 4096;
const CRLF = "\r\n";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const incomplete = (why: string) => new S3Error(400, "IncompleteBody", `The aws-chunked body is incomplete or malformed: ${why}`);
const badChunkSignature = () =>
  new S3Error(403, "SignatureDoesNotMatch", "The chunk signature we calculated does not match the signature you provided.");

/** What continues a chunk signature chain: the signing key and scope of the request, its signature as seed. */
export interface ChunkChain {
  signingKey: Uint8Array;
  datetime: string;
  /** yyyymmdd/region/s3/aws4_request */
  scope: string;
  seedSignature: string;
}


/** The signature of one chunk (given whole or in pieces), chained from the previous one. */
export function chunkSignature(chain: ChunkChain, previous: string, data: Uint8Array | Uint8Array[]): string {
  const hash = new Bun.CryptoHasher("sha256");
  for (const piece of Array.isArray(data) ? data : [data]) hash.update(piece);
  return hmacHex(chain.signingKey, ["AWS4-HMAC-SHA256-PAYLOAD", chain.datetime, chain.scope, previous, EMPTY_SHA256, hash.digest("hex")].join("\n"));
}

/** The signature of the trailer: the canonical trailer is "name:value\n" for each trailing header. */
export function trailerSignature(chain: ChunkChain, previous: string, trailers: [string, string][]): string {
  const canonical = trailers.map(([k, v]) => `${k}:${v}\n`).join("");
  return hmacHex(chain.signingKey, ["AWS4-HMAC-SHA256-TRAILER", chain.datetime, chain.scope, previous, sha256Hex(canonical)].join("\n"));
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/** Reads of lines and exact byte counts from a stream; data bytes are not copied. */
class ByteReader {
  private buf: Uint8Array = new Uint8Array(0);
  constructor(private readonly reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }) {}

  private async next(): Promise<Uint8Array | undefined> {
    const { done, value } = await this.reader.read();
    return done ? undefined : value!;
  }

  /** A line ending in CRLF; or, when `bareLf`, in LF with an optional CR. Only the line's own bytes are copied. */
  async line(bareLf = false): Promise<string> {
    let partial: Uint8Array | undefined;
    for (;;) {
      const lf = this.buf.indexOf(10);
      const upto = lf >= 0 ? this.buf.subarray(0, lf) : this.buf;
      const bytes = partial ? concat(partial, upto) : upto;
      if (bytes.length > MAX_LINE) throw incomplete("a chunk header is too long");
      if (lf >= 0) {
        this.buf = this.buf.subarray(lf + 1);
        const cr = bytes.length > 0 && bytes[bytes.length - 1] === 13;
        if (!cr && !bareLf) throw incomplete("a line does not end with CRLF");
        return new TextDecoder().decode(cr ? bytes.subarray(0, -1) : bytes);
      }
      partial = bytes.slice();
      const more = await this.next();
      if (!more) throw incomplete("the body ended inside a chunk header");
      this.buf = more;
    }
  }

  /** The next n bytes, as views of what the stream delivered: copying them cost as much as hashing them. */
  async bytes(n: number): Promise<Uint8Array[]> {
    const pieces: Uint8Array[] = [];
    for (let need = n; need > 0; ) {
      if (this.buf.length === 0) {
        const more = await this.next();
        if (!more) throw incomplete("the body ended inside a chunk");
        this.buf = more;
        continue;
      }
      const take = Math.min(need, this.buf.length);
      pieces.push(this.buf.subarray(0, take));
      this.buf = this.buf.subarray(take);
      need -= take;
    }
    return pieces;
  }

  /** Whether nothing but line ends is left. */
  async atEnd(): Promise<boolean> {
    for (;;) {
      let i = 0;
      while (i < this.buf.length && (this.buf[i] === 13 || this.buf[i] === 10)) i++;
      this.buf = this.buf.subarray(i);
      if (this.buf.length) return false;
      const more = await this.next();
      if (!more) return true;
      this.buf = more;
    }
  }
}

export interface DecodeOptions {
  mode: Exclude<PayloadMode, "plain">;
  /** x-amz-decoded-content-length */
  decodedLength: number;
  /** The checksum header announced in x-amz-trailer. */
  trailer?: string;
  /** For signed modes. */
  chain?: ChunkChain;
}

/**
 * Yields the decoded data; returns the verified trailers. Throws an S3Error on any fault, and
 * only yields the last data once everything after it has been verified.
 */
export async function* decodeAwsChunked(body: ReadableStream<Uint8Array>, o: DecodeOptions): AsyncGenerator<Uint8Array, [string, string][]> {
  const signed = o.mode !== "unsigned-trailer";
  const reader = body.getReader();
  const input = new ByteReader(reader);
  let previous = o.chain?.seedSignature ?? "";
  let total = 0;
  let held: Uint8Array[] = [];
  try {
    for (;;) {
      const header = await input.line();
      const m = signed ? /^([0-9a-fA-F]{1,8});chunk-signature=([0-9a-f]{64})$/.exec(header) : /^([0-9a-fA-F]{1,8})$/.exec(header);
      if (!m) throw incomplete(`bad chunk header ${JSON.stringify(header.slice(0, 100))}`);
      const size = parseInt(m[1]!, 16);
      if (size > MAX_CHUNK) throw incomplete(`a chunk of ${size} bytes is larger than ${MAX_CHUNK}`);
      total += size;
      if (total > o.decodedLength) throw incomplete("more data than x-amz-decoded-content-length");
      const data = await input.bytes(size);
      if (signed) {
        if (!constantTimeEqual(chunkSignature(o.chain!, previous, data), m[2]!)) throw badChunkSignature();
        previous = m[2]!;
      }
      if (size === 0) break;
      if ((await input.line()) !== "") throw incomplete("chunk data is not followed by CRLF");
      yield* held;
      held = data;
    }
    const trailers = await readTrailers(input, o, previous);
    if (total !== o.decodedLength) throw incomplete(`${total} bytes of data, x-amz-decoded-content-length says ${o.decodedLength}`);
    // minio-go ends an unsigned trailer with one more CRLF than the format has; S3 accepts that
    if (!(await input.atEnd())) throw incomplete("data after the final chunk");
    yield* held;
    return trailers;
  } catch (e) {
    reader.cancel(e).catch(() => {});
    throw e;
  }
}

/**
 * Trailing headers, then the empty line that ends the body. minio-go ends a trailer with "\n\r\n",
 * so lines may end in a bare LF, and empty lines count as the end only once every expected
 * trailer (and, when signed, the trailer signature) has been read.
 */
async function readTrailers(input: ByteReader, o: DecodeOptions, previous: string): Promise<[string, string][]> {
  const lines: [string, string][] = [];
  const expected = (o.trailer ? 1 : 0) + (o.mode === "signed-trailer" ? 1 : 0);
  const malformed = (why: string) => new S3Error(400, "MalformedTrailerError", `The request contained trailing data that was not well-formed: ${why}`);
  let ended = false;
  for (;;) {
    const line = await input.line(true).catch((e) => Promise.reject(ended ? malformed(`missing ${o.trailer ?? "x-amz-trailer-signature"}`) : e));
    if (line === "") {
      if (lines.length >= expected) break;
      ended = true;
      continue;
    }
    const i = line.indexOf(":");
    if (i <= 0 || lines.length >= expected) throw malformed(JSON.stringify(line.slice(0, 100)));
    lines.push([line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()]);
  }
  const signature = lines.find(([k]) => k === "x-amz-trailer-signature")?.[1];
  const trailers = lines.filter(([k]) => k !== "x-amz-trailer-signature");
  const names = trailers.map(([k]) => k);
  if (names.length !== (o.trailer ? 1 : 0) || (o.trailer && names[0] !== o.trailer))
    throw malformed(`the trailer does not carry what x-amz-trailer announced (${o.trailer ?? "nothing"})`);
  for (const [name, value] of trailers) {
    if (value.length !== TRAILER_VALUE_LENGTH[name] || !/^[A-Za-z0-9+/]+=*$/.test(value))
      throw new S3Error(400, "InvalidRequest", `Value for ${name} trailing header is invalid.`);
  }
  if (o.mode === "signed-trailer") {
    if (!signature || !constantTimeEqual(trailerSignature(o.chain!, previous, trailers), signature)) throw badChunkSignature();
  } else if (signature) {
    throw malformed("x-amz-trailer-signature in a payload that is not signed with trailers");
  }
  return trailers;
}

/** Upstream chunk size when a body is re-framed. */
export const REFRAME_CHUNK = 64 * 1024;

/** Content-Length of the unsigned aws-chunked body that reframe() makes. */
export function reframedLength(decodedLength: number, trailer: string | undefined, chunk = REFRAME_CHUNK): number {
  const frame = (n: number) => n.toString(16).length + 2 + n + 2;
  const full = Math.floor(decodedLength / chunk);
  const rest = decodedLength % chunk;
  const trailerLine = trailer ? trailer.length + 1 + TRAILER_VALUE_LENGTH[trailer]! + 2 : 0;
  return full * frame(chunk) + (rest ? frame(rest) : 0) + 3 + trailerLine + 2;
}

/** The decoded data as an unsigned aws-chunked body with trailers, in fixed-size chunks; data is not copied. */
export async function* reframe(decoded: AsyncGenerator<Uint8Array, [string, string][]>, chunk = REFRAME_CHUNK): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  const crlf = enc.encode(CRLF);
  const pending: Uint8Array[] = [];
  let pendingLength = 0;
  function* frame(length: number): Generator<Uint8Array> {
    yield enc.encode(length.toString(16) + CRLF);
    for (let need = length; need > 0; ) {
      const piece = pending[0]!;
      const take = Math.min(need, piece.length);
      yield piece.subarray(0, take);
      if (take === piece.length) pending.shift();
      else pending[0] = piece.subarray(take);
      need -= take;
    }
    pendingLength -= length;
    yield crlf;
  }
  for (;;) {
    const next = await decoded.next();
    if (next.done) {
      if (pendingLength) yield* frame(pendingLength);
      yield enc.encode("0" + CRLF + next.value.map(([k, v]) => `${k}:${v}${CRLF}`).join("") + CRLF);
      return;
    }
    pending.push(next.value);
    pendingLength += next.value.length;
    while (pendingLength >= chunk) yield* frame(chunk);
  }
}

/** A pull-driven stream over a generator, so that nothing is read ahead of the backend. */
export function streamOf(gen: AsyncGenerator<Uint8Array, unknown>, onError: (e: unknown) => void): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await gen.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (e) {
        onError(e);
        controller.error(e);
      }
    },
    async cancel() {
      await gen.return(undefined as never).catch(() => {});
    },
  }, { highWaterMark: 0 });
}
