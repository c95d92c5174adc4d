/**
 * The minimum pace of a request body. Time counts only while osp waits for the client (not while
 * the backend holds the body back): in every `seconds` of that waiting the body must deliver at
 * least `seconds × minRate` bytes (at least one byte when minRate is 0). A body that does not is
 * stopped with RequestTimeout, which cuts the upstream body short, so the backend stores nothing.
 */
import { requestTimeout, type S3Error } from "../errors.ts";

export interface GuardedBody {
  body: ReadableStream<Uint8Array>;
  /** The RequestTimeout that stopped the body, if it was stopped. */
  failure(): S3Error | undefined;
}

export function bodyDeadline(source: ReadableStream<Uint8Array>, seconds: number, minRate: number): GuardedBody {
  const reader = source.getReader();
  const windowMs = seconds * 1000;
  const minBytes = Math.max(1, seconds * minRate);
  let failure: S3Error | undefined;
  let waited = 0; // ms spent waiting for the client in the current window
  let bytes = 0; // bytes received in the current window
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let started = performance.now();
      let timer: Timer | undefined;
      // resolves when a window ends, while waiting here, with too few bytes
      const stalled = new Promise<undefined>((resolve) => {
        const arm = () => {
          timer = setTimeout(() => {
            if (bytes < minBytes) return resolve(undefined);
            started = performance.now();
            waited = bytes = 0;
            arm();
          }, windowMs - waited);
        };
        arm();
      });
      const next = await Promise.race([reader.read(), stalled]);
      clearTimeout(timer);
      if (next?.done) return controller.close();
      waited += performance.now() - started;
      if (next) bytes += next.value.length;
      if (next && waited < windowMs) return controller.enqueue(next.value);
      if (next && bytes >= minBytes) {
        waited = bytes = 0;
        return controller.enqueue(next.value);
      }
      failure = requestTimeout();
      reader.cancel(failure).catch(() => {});
      controller.error(failure);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
  return { body, failure: () => failure };
}
