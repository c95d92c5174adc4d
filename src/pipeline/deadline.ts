/**
 * The minimum pace of a request body. Time counts only while osp waits for the client (not while
 * the backend holds the body back): in every `seconds` of that waiting the body must deliver at
 * least `seconds × minRate` bytes (at least one byte when minRate is 0). A body that does not is
 * stopped with RequestTimeout, which cuts the upstream body short, so the backend stores nothing.
 */
import { requestTimeout, type S3Error } from "../errors.ts";

export interface PaceMeter {
  /** osp is waiting for the client's next bytes. */
  waiting(): void;
  /** osp is not waiting (the backend holds the body back, or it has ended). */
  idle(): void;
  received(bytes: number): void;
}

/**
 * One timer per stretch of waiting, not per chunk: it fires when a window of waiting ends, and
 * `fail` is called once if that window brought too few bytes.
 */
export function paceMeter(seconds: number, minRate: number, fail: () => void): PaceMeter {
  const windowMs = seconds * 1000;
  const minBytes = Math.max(1, seconds * minRate);
  let waited = 0; // ms spent waiting in the current window
  let bytes = 0; // bytes received in the current window
  let since = 0;
  let timer: Timer | undefined;
  const windowEnds = () => {
    if (bytes < minBytes) {
      timer = undefined;
      return fail();
    }
    waited = bytes = 0;
    since = performance.now();
    timer = setTimeout(windowEnds, windowMs);
  };
  return {
    waiting() {
      if (timer) return;
      since = performance.now();
      timer = setTimeout(windowEnds, windowMs - waited);
    },
    idle() {
      if (!timer) return;
      clearTimeout(timer);
      timer = undefined;
      waited += performance.now() - since;
    },
    received(n) {
      bytes += n;
    },
  };
}

export interface GuardedBody {
  body: ReadableStream<Uint8Array>;
  /** The RequestTimeout that stopped the body, if it was stopped. */
  failure(): S3Error | undefined;
}

export function bodyDeadline(source: ReadableStream<Uint8Array>, seconds: number, minRate: number): GuardedBody {
  const reader = source.getReader();
  let failure: S3Error | undefined;
  // cancelling the reader ends the read that is waiting
  const meter = paceMeter(seconds, minRate, () => {
    failure = requestTimeout();
    reader.cancel(failure).catch(() => {});
  });
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      meter.waiting();
      const next = await reader.read().finally(meter.idle);
      if (failure) return controller.error(failure);
      if (next.done) return controller.close();
      meter.received(next.value.length);
      controller.enqueue(next.value);
    },
    cancel: (reason) => {
      meter.idle();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { body, failure: () => failure };
}
