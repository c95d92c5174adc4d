/**
 * An upload body, written to the backend from the client's node:http stream straight onto the
 * backend's socket (src/http1/), without web streams in between: plain bodies as they come (per GB
 * this costs less than the reference proxy, bench/README.md), aws-chunked ones through their
 * decoder. Form uploads, which osp reads as web streams, are written the same way by pumpStream.
 */
import type { Readable } from "node:stream";
import type { BodySink } from "../http1/client.ts";
import { S3Error, requestAborted, requestTimeout } from "../errors.ts";
import { paceMeter } from "./deadline.ts";

/** The client's request body as node:http hands it over. */
export interface ClientBody {
  /** As a web stream, for the bodies osp reads itself; made on the first call. */
  stream(): ReadableStream<Uint8Array>;
  node: Readable;
  /** Sends "100 Continue" if the client waits for it: only once the request is authorized. */
  proceed(): void;
  /** Whether the client may send its body: it did not wait for "100 Continue", or that was sent. */
  readonly continued: boolean;
  /** Whether the body was piped upstream and not read to its end (the connection cannot go on). */
  unfinished: boolean;
  /** Bytes of it read so far, counted where they are read: a listener of its own would set it flowing. */
  received: number;
}

/**
 * What becomes of a client body on its way upstream (aws-chunked decoded, payload.ts): the bytes to
 * send for each piece read, and the rest once it has all been read. Throws an S3Error when the
 * body is refused.
 */
export interface BodyTransform {
  push(chunk: Uint8Array): Uint8Array[];
  end(): Uint8Array[];
}

/** A client body to pipe upstream, the minimum pace it must keep (deadline.ts), what it becomes. */
export interface PipedBody {
  body: ClientBody;
  pace: { seconds: number; minRate: number };
  transform?: BodyTransform;
}

/** Stops reading the body (the upstream request is over: answered, or failed). */
export type Pump = () => void;

/**
 * Pipes the body into `upstream` with backpressure. `sent` is called once it has all been sent;
 * `failed` when it cannot be (too slow, client gone, refused by the transform), and the caller then
 * destroys the upstream request, so that the backend stores nothing.
 */
export function pumpBody({ body, pace, transform }: PipedBody, upstream: BodySink, sent: () => void, failed: (e: S3Error) => void): Pump {
  const source = body.node;
  let ended = false;
  let stopped = false;
  const meter = paceMeter(pace.seconds, pace.minRate, () => failed(requestTimeout()));
  const detach = () => {
    stopped = true;
    meter.idle();
    source.off("data", onData).off("end", onEnd).off("close", onClose);
  };
  // the rest is read and dropped, so that the client, still sending, gets to read the refusal and
  // its connection can go on
  const refuse = (e: unknown) => {
    detach();
    source.resume();
    failed(e instanceof S3Error ? e : new S3Error(400, "IncompleteBody", "The request body could not be read to its end."));
  };
  /** Whether the socket took all of it. */
  const send = (pieces: Uint8Array[]) => {
    let taken = true;
    for (const piece of pieces) taken = upstream.write(piece) && taken;
    return taken;
  };
  const onData = (chunk: Buffer) => {
    meter.received(chunk.length);
    body.received += chunk.length;
    let taken: boolean;
    try {
      taken = transform ? send(transform.push(chunk)) : upstream.write(chunk);
    } catch (e) {
      return refuse(e);
    }
    if (!taken) {
      source.pause();
      meter.idle();
    }
  };
  const onEnd = () => {
    ended = true;
    meter.idle();
    try {
      if (transform) send(transform.end());
    } catch (e) {
      return refuse(e);
    }
    upstream.end();
    sent();
  };
  const onClose = () => !ended && failed(requestAborted());
  upstream.onDrain(() => {
    if (stopped || ended) return;
    meter.waiting();
    source.resume();
  });
  source.on("data", onData).on("end", onEnd).on("close", onClose);
  // a client that goes away mid-body is seen by "close"; an "error" without a listener would throw
  source.on("error", () => {});
  body.proceed();
  meter.waiting();
  source.resume();
  return () => {
    if (stopped) return;
    detach();
    body.unfinished = !ended;
    if (!ended) source.pause();
  };
}

/**
 * Writes a body osp decodes (a web stream) into `upstream` with backpressure. `sent` is called once
 * it has ended; `failed` when it errors, and then nothing more of it is written: the caller ends the
 * upstream request before its Content-Length is reached, so that the backend stores nothing.
 */
export function pumpStream(stream: ReadableStream<Uint8Array>, upstream: BodySink, sent: () => void, failed: (e: unknown) => void): Pump {
  const reader = stream.getReader();
  let ended = false;
  let stopped = false;
  let wake: (() => void) | undefined;
  upstream.onDrain(() => wake?.());
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (stopped) return;
        if (done) {
          ended = true;
          upstream.end();
          return sent();
        }
        if (!upstream.write(value)) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (stopped) return;
      }
    } catch (e) {
      if (!stopped) failed(e);
    }
  })();
  return () => {
    if (stopped) return;
    stopped = true;
    wake?.();
    if (!ended) reader.cancel().catch(() => {});
  };
}
