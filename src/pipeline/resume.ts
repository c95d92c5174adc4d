/**
 * The response body on its way to the client. It gives the backend slot back when it ends, however
 * it ends (complete, backend error, client gone). And a GET that the backend cuts short is resumed
 * where it stopped, with a Range request for the rest of the same object version (If-Match on its
 * ETag), so that a slow reader gets the whole object.
 *
 * Why a backend cuts a slow reader through a proxy and not directly: osp stops reading the backend
 * while its client socket is full, and the buffers on both of osp's sockets let the backend's
 * writes block for (buffered bytes / client rate) at a time; MinIO drops a connection whose write
 * blocks longer than its idle timeout (30 s). A steady reader straight from MinIO holds fewer
 * buffers and is not cut at the same pace (README, "Slow clients").
 */
import type { Release } from "../state/slots.ts";

/** Sends the request again for bytes `first`-`last` of the object with this ETag. */
export type Refetch = (first: number, last: number, etag: string) => Promise<Response>;

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

/**
 * The body passed on chunk by chunk; `release` runs once when it ends. With `resume`, a failed read
 * after some progress fetches the rest; a resumption that delivers nothing is not tried again.
 */
export function settledBody(body: ReadableStream<Uint8Array>, release: Release, resume?: { extent: Extent; refetch: Refetch }): ReadableStream<Uint8Array> {
  let reader = body.getReader();
  let delivered = 0;
  let resumedAt = 0;
  const rest = async (): Promise<ReadableStream<Uint8Array> | undefined> => {
    if (!resume || delivered === resumedAt) return undefined;
    resumedAt = delivered;
    const first = resume.extent.first + delivered;
    const res = await resume.refetch(first, resume.extent.last, resume.extent.etag).catch(() => undefined);
    if (res?.status === 206 && res.body && res.headers.get("content-range")?.startsWith(`bytes ${first}-${resume.extent.last}/`)) return res.body;
    res?.body?.cancel().catch(() => {});
    return undefined;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            release();
            return controller.close();
          }
          delivered += value.length;
          return controller.enqueue(value);
        } catch (e) {
          const next = await rest();
          if (!next) {
            release();
            throw e;
          }
          reader = next.getReader();
        }
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
