/** Helpers shared by the integration tests: clients bound to the harness' osp and backends, and raw HTTP. */
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { request } from "node:http";
import { connect } from "node:net";
import { testEnv, type Backend } from "../harness/env.ts";
import { signRawRequest } from "../harness/sign.ts";

export const env = testEnv();

export function sdkClient(endpoint = env.ospEndpoint, accessKey = env.accessKey, secretKey = env.secretKey): S3Client {
  return new S3Client({
    endpoint, region: env.region, forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  });
}

/** The S3 error a client's call ended with; it must end with one. */
export async function errorOf(p: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof S3ServiceException) return { name: e.name, status: e.$metadata.httpStatusCode };
    throw e;
  }
  throw new Error("expected an S3 error");
}

export const backendClient = (b: Backend) => sdkClient(b.endpoint, b.accessKey, b.secretKey);

export const uniquePrefix = (name: string) => `${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}/`;

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

export const sha256 = (b: Uint8Array | ArrayBuffer) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

/** `size` bytes of pseudo-random data, each MiB different, made as they are read. */
export function* blocks(size: number): Generator<Uint8Array> {
  const BLOCK = 1024 * 1024;
  const block = crypto.getRandomValues(new Uint8Array(BLOCK));
  for (let at = 0, n = 0; at < size; at += BLOCK, n++) {
    const out = block.slice(0, Math.min(BLOCK, size - at));
    new DataView(out.buffer).setFloat64(0, n);
    yield out;
  }
}

/** SHA-256 and length of a stream, read to its end. */
export async function sha256OfStream(stream: AsyncIterable<Uint8Array>): Promise<[string, number]> {
  const h = new Bun.CryptoHasher("sha256");
  let n = 0;
  for await (const chunk of stream) {
    h.update(chunk);
    n += chunk.length;
  }
  return [h.digest("hex"), n];
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP request whose target is sent byte for byte (fetch() would normalise it). */
export function rawRequest(base: string, method: string, target: string, headers: Record<string, string>, body?: Uint8Array | string): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path: target, headers }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: data }));
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

export const xmlCode = (body: string) => /<Code>([^<]*)<\/Code>/.exec(body)?.[1];

/** SigV4 header auth for a raw target, with the harness' region (see test/harness/sign.ts). */
export const signRaw = (method: string, base: string, target: string, headers: Record<string, string>, accessKey: string, secret: string, when?: Date) =>
  signRawRequest(method, target, headers, { base, region: env.region, accessKey, secret, when });

export interface RawExchange {
  status: number;
  /** The response head, as sent. */
  head: string;
  body: string;
}

/**
 * One request written to a socket byte for byte (header lines as given, repeated ones and all;
 * strings as one byte per char), read to the connection's end.
 */
export function rawExchange(base: string, lines: string[], body = ""): Promise<RawExchange> {
  const u = new URL(base);
  const request = Buffer.from([...lines, "Connection: close", "", body].join("\r\n"), "latin1");
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    // written, not ended: a half-closed client may be taken for one that went away
    const socket = connect({ host: u.hostname, port: Number(u.port) }, () => socket.write(request));
    socket.setTimeout(20_000, () => socket.destroy(new Error("no answer within 20 s")));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), head: text.slice(0, end), body: text.slice(end + 4) });
    });
  });
}

/** One kept-alive connection: requests sent one after the other, each answer read by its Content-Length. */
export async function keptAlive(base: string) {
  const u = new URL(base);
  let received = Buffer.alloc(0);
  let wake = () => {};
  const socket = connect({ host: u.hostname, port: Number(u.port) });
  await new Promise((ready) => socket.once("connect", ready));
  socket.on("data", (c: Buffer) => {
    received = Buffer.concat([received, c]);
    wake();
  });
  socket.on("close", () => wake());
  const answer = async (): Promise<{ status: number; body: string }> => {
    for (;;) {
      const text = received.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (end >= 0 && received.length >= end + 4 + length) {
        received = received.subarray(end + 4 + length);
        return { status: Number(text.slice(9, 12)), body: text.slice(end + 4, end + 4 + length) };
      }
      if (socket.destroyed) throw new Error("the connection was closed before a whole answer");
      await new Promise<void>((r) => (wake = r));
    }
  };
  return {
    exchange: (lines: string[], body = "") => {
      socket.write(Buffer.from([...lines, "", body].join("\r\n"), "latin1"));
      return answer();
    },
    close: () => socket.destroy(),
  };
}
