/**
 * A backend's body on its way to the client: piped from the backend's connection (src/http1/) into
 * the client's response, reading on only once the client has taken the last chunk. It gives the backend slot
 * back when it ends, however it ends (complete, backend error, client gone). And a GET that the
 * backend cuts short is resumed where it stopped, with a Range request for the rest of the same object version (If-Match on its
 * ETag), so that a slow reader gets the whole object.
 *
 * Why a backend cuts a slow reader through a proxy and not directly: osp stops reading the backend
 * while its client socket is full, and the buffers on both of osp's sockets let the backend's
 * writes block for (buffered bytes / client rate) at a time; MinIO drops a connection whose write
 * blocks longer than its idle timeout (30 s). A steady reader straight from MinIO holds fewer
 * buffers and is not cut at the same pace (README, "Slow clients").
 */
import type { Writable } from "node:stream";
import type { Release } from "../state/slots.ts";
import type { BackendAnswer } from "./forward.ts";

/**
 * A body as sendBody reads it: "data" chunks while flowing, "end", and "close" (without "end" when
 * it was cut). osp's HTTP/1.1 client's bodies are (src/http1/client.ts), as node Readables are.
 */
export interface Flow {
  on(event: "data", listener: (chunk: Uint8Array) => void): this;
  once(event: "end" | "close", listener: () => void): this;
  off(event: "data", listener: (chunk: Uint8Array) => void): this;
  off(event: "end" | "close", listener: () => void): this;
  pause(): this;
  resume(): this;
  destroy(): this;
}

/** Sends the request again for bytes `first`-`last` of the object with this ETag. */
export type Refetch = (first: number, last: number, etag: string) => Promise<BackendAnswer>;

/** What a 200 or 206 answer to a GET covers: bytes first..last of the object with `etag`. */
export interface Extent {
  first: number;
  last: number;
  etag: string;
}

/** The extent of a GetObject answer that can be resumed, if it can. */
export function resumableExtent(status: number, headers: Headers): Extent | undefined {
  const etag = headers.get("etag");
  const length = headers.get("content-length");
  if (!etag || length === null || !/^\d+$/.test(length)) return undefined;
  if (status === 200) return Number(length) > 0 ? { first: 0, last: Number(length) - 1, etag } : undefined;
  const range = status === 206 ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers.get("content-range") ?? "") : null;
  return range ? { first: Number(range[1]), last: Number(range[2]), etag } : undefined;
}

/** A body still on the backend's connection; `release` gives its backend slot back. */
export interface BackendBody {
  source: Flow;
  release: Release;
  resume?: { extent: Extent; refetch: Refetch };
}

/** An answer whose body the server pipes from the backend (sendBody); its own body is null. */
export class StreamedResponse extends Response {
  constructor(readonly backend: BackendBody, init: ResponseInit) {
    super(null, init);
  }
}

/**
 * Writes the body to `out` and ends it, or destroys it when the body fails (the client sees a short
 * body) or the client goes away. `release` runs once, when it is over. A failed read after some
 * progress fetches the rest, if the body can be resumed; a resumption that delivers nothing is not
 * tried again.
 */
export function sendBody(body: BackendBody, out: Writable): Promise<void> {
  return new Promise((done) => {
    let source = body.source;
    let delivered = 0;
    let resumedAt = 0;
    let over = false;
    const end = (complete: boolean) => {
      if (over) return;
      over = true;
      detach();
      out.off("drain", onDrain).off("close", onGone);
      body.release();
      if (complete) out.end();
      else {
        source.destroy();
        out.destroy();
      }
      done();
    };
    const onData = (chunk: Uint8Array) => {
      delivered += chunk.length;
      if (!out.write(chunk)) source.pause();
    };
    const onEnd = () => end(true);
    // "close" without "end": the backend cut the body
    const onCut = () => {
      detach();
      source.destroy();
      void rest().then((next) => {
        if (over) return void next?.destroy();
        if (!next) return end(false);
        source = next;
        attach();
      });
    };
    const onDrain = () => source.resume();
    const onGone = () => end(false);
    const attach = () => {
      source.on("data", onData).once("end", onEnd).once("close", onCut);
      if (out.writableNeedDrain) source.pause();
      else source.resume();
    };
    const detach = () => void source.off("data", onData).off("end", onEnd).off("close", onCut);
    const rest = async (): Promise<Flow | undefined> => {
      const resume = body.resume;
      if (!resume || delivered === resumedAt) return undefined;
      resumedAt = delivered;
      const first = resume.extent.first + delivered;
      const res = await resume.refetch(first, resume.extent.last, resume.extent.etag).catch(() => undefined);
      if (res?.status === 206 && res.body && res.headers.get("content-range")?.startsWith(`bytes ${first}-${resume.extent.last}/`)) return res.body.stream();
      res?.body?.discard();
      return undefined;
    };
    out.on("drain", onDrain).once("close", onGone);
    if (out.destroyed) return end(false);
    attach();
  });
}
