/**
 * aws-chunked request bodies (x-amz-content-sha256: STREAMING-*): decoded, verified, re-framed.
 *
 * Signed chunks are checked along their signature chain, seeded by the request's signature.
 * The backend cannot check them (osp re-signs the request), so nothing unverified may complete an
 * upload there: the decoder holds back the last data chunk until the final chunk, the trailer and
 * the decoded length have all been verified. A fault before that stops the body: the backend
 * receives fewer bytes than announced, and no object is written or overwritten.
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
const CRLF_BYTES = Buffer.from(CRLF);
const utf8 = new TextDecoder();
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const incomplete = (why: string) => new S3Error(400, "IncompleteBody", `The aws-chunked body is incomplete or malformed: ${why}`);
const malformedTrailer = (why: string) => new S3Error(400, "MalformedTrailerError", `The request contained trailing data that was not well-formed: ${why}`);
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

/** The signature of one chunk, chained from the previous one, given the SHA-256 of its data. */
function signChunk(chain: ChunkChain, previous: string, dataSha256: string): string {
  return hmacHex(chain.signingKey, ["AWS4-HMAC-SHA256-PAYLOAD", chain.datetime, chain.scope, previous, EMPTY_SHA256, dataSha256].join("\n"));
}

/** The signature of one chunk's data, chained from the previous one. */
export function chunkSignature(chain: ChunkChain, previous: string, data: Uint8Array): string {
  return signChunk(chain, previous, sha256Hex(data));
}

/** The signature of the trailer: the canonical trailer is "name:value\n" for each trailing header. */
export function trailerSignature(chain: ChunkChain, previous: string, trailers: [string, string][]): string {
  const canonical = trailers.map(([k, v]) => `${k}:${v}\n`).join("");
  return hmacHex(chain.signingKey, ["AWS4-HMAC-SHA256-TRAILER", chain.datetime, chain.scope, previous, sha256Hex(canonical)].join("\n"));
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

/** What a decoder is reading: a chunk's header line, its data, the line end after it, trailers, or what may follow them. */
type Stage = "header" | "data" | "data-end" | "trailers" | "after";

/**
 * A decoder fed with the body's bytes as the client's connection delivers them. It returns the data
 * it releases (views of the input, not copies: copying cost as much as hashing) and throws an
 * S3Error on any fault. A chunk's data is released only once the next chunk has been verified, and
 * the last only by end(), once the final chunk, the trailer and the decoded length have been.
 * Synchronous, so that the body needs no stream between the client and the backend (upload.ts).
 */
export class AwsChunkedDecoder {
  private stage: Stage = "header";
  private readonly signed: boolean;
  /** The line read so far, when it began in an earlier input. */
  private partial: Uint8Array | undefined;
  private previous: string;
  private total = 0;
  /** Of the current chunk: its data still to come, its signature, the hash of its data so far. */
  private need = 0;
  private size = 0;
  private signature = "";
  private hash: Bun.CryptoHasher | undefined;
  private current: Uint8Array[] = [];
  /** The last verified chunk's data, released when the next one is verified. */
  private held: Uint8Array[] = [];
  private readonly lines: [string, string][] = [];
  /** An empty line came before every expected trailer had. */
  private trailerEnded = false;
  private trailers: [string, string][] = [];

  constructor(private readonly o: DecodeOptions) {
    this.signed = o.mode !== "unsigned-trailer";
    this.previous = o.chain?.seedSignature ?? "";
  }

  push(input: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < input.length) {
      if (this.stage === "data") {
        const take = Math.min(this.need, input.length - at);
        const piece = input.subarray(at, at + take);
        this.hash?.update(piece);
        this.current.push(piece);
        this.need -= take;
        at += take;
        if (this.need === 0) this.chunkRead();
      } else if (this.stage === "after") {
        // minio-go ends an unsigned trailer with one more CRLF than the format has; S3 accepts that
        const b = input[at++]!;
        if (b !== 13 && b !== 10) throw incomplete("data after the final chunk");
      } else {
        const lf = input.indexOf(10, at);
        const upto = input.subarray(at, lf >= 0 ? lf : input.length);
        const bytes = this.partial ? Buffer.concat([this.partial, upto]) : upto;
        if (bytes.length > MAX_LINE) throw incomplete("a chunk header is too long");
        if (lf < 0) {
          // a copy: a Buffer's slice() is a view, which would keep the whole input alive
          this.partial = new Uint8Array(bytes);
          return out;
        }
        this.partial = undefined;
        at = lf + 1;
        this.lineRead(bytes, out);
      }
    }
    return out;
  }

  /** The body has ended: the data held back, and the verified trailers. */
  end(): { data: Uint8Array[]; trailers: [string, string][] } {
    switch (this.stage) {
      case "after":
        return { data: this.held, trailers: this.trailers };
      case "data":
        throw incomplete("the body ended inside a chunk");
      case "trailers":
        if (this.trailerEnded) throw malformedTrailer(`missing ${this.o.trailer ?? "x-amz-trailer-signature"}`);
    }
    throw incomplete("the body ended inside a chunk header");
  }

  private lineRead(bytes: Uint8Array, out: Uint8Array[]): void {
    const cr = bytes.length > 0 && bytes[bytes.length - 1] === 13;
    // trailer lines may end in a bare LF: minio-go ends a trailer with "\n\r\n"
    if (!cr && this.stage !== "trailers") throw incomplete("a line does not end with CRLF");
    const line = utf8.decode(cr ? bytes.subarray(0, -1) : bytes);
    if (this.stage === "header") return this.chunkHeader(line);
    if (this.stage === "trailers") return this.trailerLine(line);
    if (line !== "") throw incomplete("chunk data is not followed by CRLF");
    out.push(...this.held);
    this.held = this.current;
    this.current = [];
    this.stage = "header";
  }

  private chunkHeader(line: string): void {
    const m = this.signed ? /^([0-9a-fA-F]{1,8});chunk-signature=([0-9a-f]{64})$/.exec(line) : /^([0-9a-fA-F]{1,8})$/.exec(line);
    // the line itself is not echoed: it may hold a chunk signature
    if (!m) throw incomplete(`a chunk header is not ${this.signed ? "<hex size>;chunk-signature=<64 hex digits>" : "<hex size>"}`);
    const size = parseInt(m[1]!, 16);
    if (size > MAX_CHUNK) throw incomplete(`a chunk of ${size} bytes is larger than ${MAX_CHUNK}`);
    this.total += size;
    if (this.total > this.o.decodedLength) throw incomplete("more data than x-amz-decoded-content-length");
    this.size = this.need = size;
    this.signature = m[2] ?? "";
    this.hash = this.signed ? new Bun.CryptoHasher("sha256") : undefined;
    this.stage = "data";
    if (size === 0) this.chunkRead();
  }

  private chunkRead(): void {
    if (this.hash) {
      if (!constantTimeEqual(signChunk(this.o.chain!, this.previous, this.hash.digest("hex")), this.signature)) throw badChunkSignature();
      this.previous = this.signature;
    }
    this.stage = this.size === 0 ? "trailers" : "data-end";
  }

  /**
   * Trailing headers, then the empty line that ends the body. Empty lines count as the end only
   * once every expected trailer (and, when signed, the trailer signature) has been read.
   */
  private trailerLine(line: string): void {
    const expected = (this.o.trailer ? 1 : 0) + (this.o.mode === "signed-trailer" ? 1 : 0);
    if (line === "") {
      if (this.lines.length >= expected) {
        this.trailers = this.verifiedTrailers();
        if (this.total !== this.o.decodedLength) throw incomplete(`${this.total} bytes of data, x-amz-decoded-content-length says ${this.o.decodedLength}`);
        this.stage = "after";
      } else {
        this.trailerEnded = true;
      }
      return;
    }
    // only a trailer's name is echoed: its value may be a signature
    const i = line.indexOf(":");
    if (i <= 0) throw malformedTrailer("a trailer line has no name");
    if (this.lines.length >= expected) throw malformedTrailer(`unexpected trailer ${JSON.stringify(line.slice(0, Math.min(i, 100)))}`);
    this.lines.push([line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()]);
  }

  private verifiedTrailers(): [string, string][] {
    const o = this.o;
    const signature = this.lines.find(([k]) => k === "x-amz-trailer-signature")?.[1];
    const trailers = this.lines.filter(([k]) => k !== "x-amz-trailer-signature");
    const names = trailers.map(([k]) => k);
    if (names.length !== (o.trailer ? 1 : 0) || (o.trailer && names[0] !== o.trailer))
      throw malformedTrailer(`the trailer does not carry what x-amz-trailer announced (${o.trailer ?? "nothing"})`);
    for (const [name, value] of trailers) {
      if (value.length !== TRAILER_VALUE_LENGTH[name] || !/^[A-Za-z0-9+/]+=*$/.test(value))
        throw new S3Error(400, "InvalidRequest", `Value for ${name} trailing header is invalid.`);
    }
    if (o.mode === "signed-trailer") {
      if (!signature || !constantTimeEqual(trailerSignature(o.chain!, this.previous, trailers), signature)) throw badChunkSignature();
    } else if (signature) {
      throw malformedTrailer("x-amz-trailer-signature in a payload that is not signed with trailers");
    }
    return trailers;
  }
}

/** Upstream chunk size when a body is re-framed. */
export const REFRAME_CHUNK = 64 * 1024;

/** Content-Length of the unsigned aws-chunked body that a Reframer makes. */
export function reframedLength(decodedLength: number, trailer: string | undefined, chunk = REFRAME_CHUNK): number {
  const frame = (n: number) => n.toString(16).length + 2 + n + 2;
  const full = Math.floor(decodedLength / chunk);
  const rest = decodedLength % chunk;
  const trailerLine = trailer ? trailer.length + 1 + TRAILER_VALUE_LENGTH[trailer]! + 2 : 0;
  return full * frame(chunk) + (rest ? frame(rest) : 0) + 3 + trailerLine + 2;
}

/**
 * The decoded data as an unsigned aws-chunked body with trailers, in fixed-size chunks: fed with the
 * decoder's data as it is released, it returns the frames that are full; end() the rest, with the
 * trailers. Data is not copied.
 */
export class Reframer {
  private readonly pending: Uint8Array[] = [];
  private pendingLength = 0;
  constructor(private readonly chunk = REFRAME_CHUNK) {}

  push(data: Uint8Array[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const piece of data) {
      this.pending.push(piece);
      this.pendingLength += piece.length;
      while (this.pendingLength >= this.chunk) this.frame(this.chunk, out);
    }
    return out;
  }

  end(trailers: [string, string][]): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.pendingLength) this.frame(this.pendingLength, out);
    out.push(Buffer.from("0" + CRLF + trailers.map(([k, v]) => `${k}:${v}${CRLF}`).join("") + CRLF, "latin1"));
    return out;
  }

  private frame(length: number, out: Uint8Array[]): void {
    out.push(Buffer.from(length.toString(16) + CRLF, "latin1"));
    for (let need = length; need > 0; ) {
      const piece = this.pending[0]!;
      const take = Math.min(need, piece.length);
      out.push(piece.subarray(0, take));
      if (take === piece.length) this.pending.shift();
      else this.pending[0] = piece.subarray(take);
      need -= take;
    }
    this.pendingLength -= length;
    out.push(CRLF_BYTES);
  }
}
