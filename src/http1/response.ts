/**
 * An HTTP/1.1 response read from a backend connection (RFC 9112), as bytes arrive: the head, then
 * the body by its framing. Pure: bytes in, events out; the connection is client.ts's.
 *
 * Strict where leniency could let one answer run into the next on a kept-alive connection (and so
 * hand one client's bytes to another): CRLF line ends only, no obs-fold, one Content-Length value,
 * never Transfer-Encoding and Content-Length together, chunked as the only transfer coding. A
 * connection with bytes left over after an answer is never reused.
 */

export class ProtocolError extends Error {}

export interface ResponseHead {
  status: number;
  statusText: string;
  /** Alternating names and values, as sent (values read as latin1 byte strings, like node:http's). */
  rawHeaders: string[];
}

export type ResponseEvent =
  | { type: "head"; head: ResponseHead }
  | { type: "body"; data: Uint8Array }
  /** The answer is complete; `reusable` when its connection may carry another request. */
  | { type: "end"; reusable: boolean };

const MAX_HEAD = 64 * 1024;
const MAX_LINE = 4096;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$/;
const FIELD_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;

/**
 * Whether a header value is one HTTP/1.1 allows (no control character but tab), as this parser
 * reads them. What osp sends is built from such values only: the client's (node:http checks them),
 * its own, and those from osp.toml, hooks and IAM, checked where they come in.
 */
export const isFieldValue = (v: string) => FIELD_VALUE.test(v);
const CHUNK_SIZE = /^0*([0-9a-fA-F]{1,13})(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;
const CRLF = Buffer.from("\r\n\r\n");

type Framing = { kind: "none" } | { kind: "length"; left: number } | { kind: "chunked" } | { kind: "close" };
type State = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers" | "close" | "done";

export class ResponseParser {
  private state: State = "head";
  private pending: Buffer | undefined;
  private line = "";
  private trailerBytes = 0;
  private left = 0;
  private keepAlive = false;
  private ended = false;
  private events: ResponseEvent[] = [];

  /** `method` of the request: a HEAD answer has no body, whatever its head says. */
  constructor(private readonly method: string) {}

  /**
   * Reads the next bytes of the connection; throws a ProtocolError for what is not HTTP/1.1. The
   * events are the caller's alone: kept here until the next read, a body's bytes outlived their
   * use, and 64 fast readers of 1 MiB took a worker to 244-313 MiB instead of 139-144
   * (bench/README.md, "Sixth round"). Kept in this form on purpose: the same hand-over through a
   * helper method cost 29-36 % more CPU per 1 MiB GET under that load (three alternating runs).
   */
  push(chunk: Uint8Array): ResponseEvent[] {
    try {
      return this.read(chunk);
    } finally {
      this.events = [];
    }
  }

  /** The connection was closed: that ends a body framed by the close, and nothing else. */
  close(): ResponseEvent[] {
    try {
      return this.closed();
    } finally {
      this.events = [];
    }
  }

  private read(chunk: Uint8Array): ResponseEvent[] {
    // a new array for this read, although push() left an empty one: without it, 64 fast readers of
    // 1 MiB cost 789-918 against 669-691 µs per GET and 2.5 times the collector threads' CPU (two
    // side-by-side runs). The array left at the end of a read waits for the next one, may age out of the
    // young generation meanwhile, and would then keep this read's bytes until a full collection.
    this.events = [];
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    while (at < buf.length) {
      switch (this.state) {
        case "head": {
          if (this.pending) {
            buf = Buffer.concat([this.pending, buf.subarray(at)]);
            at = 0;
            this.pending = undefined;
          }
          const end = buf.indexOf(CRLF, at);
          if (end < 0) {
            if (buf.length - at > MAX_HEAD) throw new ProtocolError("the answer's head is too large");
            this.pending = Buffer.from(buf.subarray(at));
            return this.events;
          }
          if (end - at > MAX_HEAD) throw new ProtocolError("the answer's head is too large");
          this.head(buf.toString("latin1", at, end));
          at = end + 4;
          if (this.complete()) return this.end(at < buf.length);
          break;
        }
        case "length":
        case "chunk-data": {
          const n = Math.min(this.left, buf.length - at);
          this.events.push({ type: "body", data: buf.subarray(at, at + n) });
          at += n;
          this.left -= n;
          if (this.left > 0) break;
          if (this.state === "length") return this.end(at < buf.length);
          this.state = "chunk-end";
          break;
        }
        case "chunk-size":
        case "chunk-end":
        case "trailers": {
          const nl = buf.indexOf(10, at);
          const piece = buf.toString("latin1", at, nl < 0 ? buf.length : nl + 1);
          at += piece.length;
          if (this.line.length + piece.length > MAX_LINE) throw new ProtocolError("a chunk line is too long");
          this.line += piece;
          if (nl >= 0) this.chunkLine();
          if (this.complete()) return this.end(at < buf.length);
          break;
        }
        case "close":
          this.events.push({ type: "body", data: buf.subarray(at) });
          at = buf.length;
          break;
        case "done":
          throw new ProtocolError("the backend sent bytes after its answer");
      }
    }
    // an empty answer may be complete with its head (see head())
    return this.complete() ? this.end(false) : this.events;
  }

  private closed(): ResponseEvent[] {
    this.events = [];
    if (this.state === "close") {
      this.state = "done";
      return this.end(false);
    }
    if (this.state !== "done") throw new ProtocolError(this.state === "head" && !this.pending ? "the backend closed the connection without an answer" : "the backend closed the connection before the end of its answer");
    return this.events;
  }

  private head(text: string): void {
    const lines = text.split("\r\n");
    const status = STATUS_LINE.exec(lines[0]!);
    if (!status) throw new ProtocolError("the answer's status line is malformed");
    const code = Number(status[2]);
    const rawHeaders: string[] = [];
    let connection = "";
    let transferEncoding: string | undefined;
    let length: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const h = HEADER_LINE.exec(lines[i]!);
      if (!h) throw new ProtocolError("a header line of the answer is malformed");
      const name = h[1]!.toLowerCase();
      const value = h[2]!;
      rawHeaders.push(h[1]!, value);
      if (name === "connection") connection += "," + value.toLowerCase();
      else if (name === "transfer-encoding") transferEncoding = transferEncoding === undefined ? value : transferEncoding + "," + value;
      else if (name === "content-length") {
        // a list of identical values is one value (RFC 9110 8.6); different ones are not framing
        for (const v of value.split(",")) {
          const t = v.trim();
          if (!/^\d{1,15}$/.test(t) || (length !== undefined && Number(t) !== Number(length))) throw new ProtocolError("the answer's Content-Length is not one number");
          length = t;
        }
      }
    }
    // an interim answer (100 Continue, 103 Early Hints): the real one follows
    if (code < 200) {
      if (code === 101) throw new ProtocolError("the backend switched protocols");
      return;
    }
    const tokens = connection.split(",").map((t) => t.trim());
    this.keepAlive = status[1] === "1" && !tokens.includes("close");
    this.events.push({ type: "head", head: { status: code, statusText: status[3] ?? "", rawHeaders } });
    const framing = this.framing(code, transferEncoding, length);
    if (framing.kind === "none") this.state = "done";
    else if (framing.kind === "length") {
      this.left = framing.left;
      this.state = this.left === 0 ? "done" : "length";
    } else if (framing.kind === "chunked") this.state = "chunk-size";
    else {
      this.keepAlive = false;
      this.state = "close";
    }
  }

  /** RFC 9112 6.3, without its lenient branches. */
  private framing(status: number, transferEncoding: string | undefined, length: string | undefined): Framing {
    if (this.method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
    if (transferEncoding !== undefined) {
      if (length !== undefined) throw new ProtocolError("the answer has both Transfer-Encoding and Content-Length");
      if (transferEncoding.trim().toLowerCase() !== "chunked") throw new ProtocolError(`the answer's transfer coding ${JSON.stringify(transferEncoding.slice(0, 40))} is not chunked`);
      return { kind: "chunked" };
    }
    if (length !== undefined) return { kind: "length", left: Number(length) };
    return { kind: "close" };
  }

  /** A whole line of the chunked framing. */
  private chunkLine(): void {
    if (!this.line.endsWith("\r\n")) throw new ProtocolError("a chunk line does not end in CRLF");
    const line = this.line.slice(0, -2);
    this.line = "";
    if (this.state === "chunk-end") {
      if (line !== "") throw new ProtocolError("a chunk is longer than its size");
      this.state = "chunk-size";
    } else if (this.state === "chunk-size") {
      const size = CHUNK_SIZE.exec(line);
      if (!size) throw new ProtocolError("a chunk size is malformed");
      this.left = parseInt(size[1]!, 16);
      this.state = this.left === 0 ? "trailers" : "chunk-data";
    } else if (line === "") this.state = "done";
    else {
      // trailer fields: read and left out, as a proxy may (RFC 9110 6.5.1)
      this.trailerBytes += line.length;
      if (this.trailerBytes > MAX_HEAD || !HEADER_LINE.test(line)) throw new ProtocolError("the answer's trailers are malformed");
    }
  }

  /** Whether the whole answer has been read (a method: a switch on the state does not narrow it). */
  private complete(): boolean {
    return this.state === "done";
  }

  /** The answer has ended; bytes after it (`leftover`) are not read, and spoil the connection. */
  private end(leftover: boolean): ResponseEvent[] {
    if (!this.ended) {
      this.ended = true;
      this.events.push({ type: "end", reusable: this.keepAlive && !leftover });
    }
    return this.events;
  }
}
