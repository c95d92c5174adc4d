/**
 * The multipart/form-data body of a browser form upload, read as a stream: the fields before
 * the file, parsed in memory (at most 20 KiB, as S3 allows), then the file's bytes passed on as
 * they arrive.
 *
 * The file goes to the backend as a PUT, which needs its length up front. S3 requires the file to
 * be the form's last field, so its length is the request's Content-Length minus the fields before
 * it and the closing delimiter "\r\n--boundary--\r\n" that every browser, curl, Go, Python and
 * JavaScript form encoder writes. A body of another shape (fields after the file, no final CRLF,
 * an epilogue) is refused, and since the file's last byte is held back until the closing
 * delimiter has been checked, the backend then writes nothing.
 */
import { S3Error } from "../errors.ts";

export const MAX_FIELDS_BYTES = 20 * 1024;

const CRLF = Buffer.from("\r\n");

/** What is used of a body's reader. */
export interface BodyReader {
  read(): Promise<{ done: true; value?: Uint8Array } | { done: false; value: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

export const malformedForm = (why: string) =>
  new S3Error(400, "MalformedPOSTRequest", `The body of your POST request is not well-formed multipart/form-data: ${why}.`);

export function formBoundary(contentType: string): string | undefined {
  const m = /^multipart\/form-data\s*;(?:.*;)?\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Length of the closing delimiter that follows the file. */
export const closingLength = (boundary: string) => boundary.length + 8;

export interface FormHead {
  /** The fields before the file, by lower-case name (S3 reads field names case-insensitively). */
  fields: Map<string, string>;
  /** The file part's filename, for ${filename} in the key. */
  filename: string;
  /** The file part's own Content-Type header. */
  fileType?: string;
  /** Bytes of the body before the file's content. */
  headLength: number;
}

function param(disposition: string, name: string): string | undefined {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, "i").exec(disposition);
  return m ? (m[1]?.replace(/\\(.)/g, "$1") ?? m[2]) : undefined;
}

function partHeaders(text: string): Map<string, string> {
  const h = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) h.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return h;
}

/** The fields up to and including the file part's headers; undefined while more bytes are needed. */
export function parseFormHead(buf: Buffer, boundary: string): FormHead | undefined {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const opening = Buffer.concat([delimiter.subarray(2), CRLF]);
  const n = Math.min(buf.length, opening.length);
  if (!buf.subarray(0, n).equals(opening.subarray(0, n))) throw malformedForm("it does not begin with its boundary");
  if (n < opening.length) return undefined;
  const fields = new Map<string, string>();
  let pos = opening.length;
  for (;;) {
    const end = buf.indexOf("\r\n\r\n", pos);
    if (end < 0) return undefined;
    const headers = partHeaders(buf.toString("utf8", pos, end));
    const disposition = headers.get("content-disposition") ?? "";
    const name = param(disposition, "name");
    if (!/^form-data\s*;/i.test(disposition) || !name) throw malformedForm("a part lacks Content-Disposition: form-data; name=");
    const start = end + 4;
    const lower = name.toLowerCase();
    if (lower === "file") return { fields, filename: param(disposition, "filename") ?? "", fileType: headers.get("content-type"), headLength: start };
    const valueEnd = buf.indexOf(delimiter, start);
    if (valueEnd < 0) return undefined;
    if (fields.has(lower)) throw new S3Error(400, "InvalidArgument", `The form field ${name} is given more than once.`);
    fields.set(lower, buf.toString("utf8", start, valueEnd));
    const after = valueEnd + delimiter.length;
    if (buf.length < after + 2) return undefined;
    const next = buf.toString("latin1", after, after + 2);
    if (next === "--") throw new S3Error(400, "InvalidArgument", "POST requires exactly one file upload per request.");
    if (next !== "\r\n") throw malformedForm("a boundary is followed by neither CRLF nor --");
    pos = after + 2;
  }
}

/** Reads the fields before the file; `first` is what was read of the file already. */
export async function readFormHead(reader: BodyReader, boundary: string): Promise<{ head: FormHead; first: Buffer }> {
  let buf = Buffer.alloc(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new S3Error(400, "InvalidArgument", "POST requires exactly one file upload per request.");
    buf = Buffer.concat([buf, value]);
    const head = parseFormHead(buf, boundary);
    if ((head?.headLength ?? buf.length) > MAX_FIELDS_BYTES)
      throw new S3Error(400, "MaxPostPreDataLengthExceeded", "Your POST request fields preceding the upload file were too large.");
    if (head) return { head, first: buf.subarray(head.headLength) };
  }
}

/**
 * The file's `length` bytes, from `first` and then the reader. A delimiter inside them means the
 * file is not the last field; anything but the closing delimiter after them is not the body's
 * end. Either errors the stream (reported through onError) before its last byte is given out.
 */
export function fileStream(
  first: Buffer, reader: BodyReader, length: number, boundary: string, onError: (e: S3Error) => void,
): ReadableStream<Uint8Array> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const closing = Buffer.from(`\r\n--${boundary}--\r\n`);
  let seen = 0;
  let tail = Buffer.alloc(0); // the file's last bytes read so far, for a delimiter split between chunks
  let held: Buffer | undefined;
  const after: Buffer[] = [];
  let pending: Buffer | undefined = first.length ? first : undefined;

  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, why: string) => {
    const e = malformedForm(why);
    onError(e);
    controller.error(e);
    reader.cancel(e).catch(() => {});
  };

  /** Takes one chunk; true when something was given out. */
  const take = (controller: ReadableStreamDefaultController<Uint8Array>, c: Buffer): boolean => {
    const n = Math.max(0, Math.min(c.length, length - seen));
    const content = c.subarray(0, n);
    seen += c.length;
    if (seen > length + closing.length) {
      fail(controller, "the file must be the last field, followed only by the closing boundary");
      return true;
    }
    if (c.length > n) after.push(c.subarray(n));
    if (n === 0) return false;
    const k = delimiter.length - 1;
    if (content.indexOf(delimiter) >= 0 || Buffer.concat([tail, content.subarray(0, k)]).indexOf(delimiter) >= 0) {
      fail(controller, "the file must be the form's last field");
      return true;
    }
    tail = Buffer.concat([tail, content.subarray(Math.max(0, n - k))]).subarray(-k);
    if (seen - (c.length - n) < length) {
      controller.enqueue(content);
      return true;
    }
    held = content.subarray(n - 1);
    if (n === 1) return false;
    controller.enqueue(content.subarray(0, n - 1));
    return true;
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (pending) {
          const c = pending;
          pending = undefined;
          if (take(controller, c)) return;
          continue;
        }
        const { done, value } = await reader.read();
        if (!done) {
          if (take(controller, Buffer.from(value.buffer, value.byteOffset, value.byteLength))) return;
          continue;
        }
        if (seen !== length + closing.length || !Buffer.concat(after).equals(closing))
          return fail(controller, "the file must be the last field, followed only by the closing boundary");
        if (held) controller.enqueue(held);
        controller.close();
        return;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}
