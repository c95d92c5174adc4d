/**
 * A cap on the requests one worker sends to one backend endpoint at once. Requests beyond it
 * wait in a FIFO queue; one that waits longer than the queue timeout is answered SlowDown, as
 * S3 answers a client it wants to slow down. A slot is given back exactly once, by the release
 * function its request received.
 */
import { requestAborted, slowDown, type S3Error } from "../errors.ts";

export type Release = () => void;
export type AcquireSlot = (endpoint: string, signal: AbortSignal) => Promise<Release>;

interface Endpoint {
  busy: number;
  waiting: Array<() => void>;
}

export function createBackendSlots(max: number, queueTimeoutSeconds: number): AcquireSlot {
  const endpoints = new Map<string, Endpoint>();

  const releaser = (e: Endpoint): Release => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = e.waiting.shift();
      if (next) next(); // the slot passes straight to the first waiter
      else e.busy--;
    };
  };

  return (endpoint, signal) => {
    let e = endpoints.get(endpoint);
    if (!e) endpoints.set(endpoint, (e = { busy: 0, waiting: [] }));
    const ep = e;
    if (ep.busy < max) {
      ep.busy++;
      return Promise.resolve(releaser(ep));
    }
    if (signal.aborted) return Promise.reject(requestAborted());
    return new Promise<Release>((resolve, reject) => {
      const leave = (err: S3Error) => {
        const i = ep.waiting.indexOf(granted);
        if (i >= 0) ep.waiting.splice(i, 1);
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        reject(err);
      };
      const onAbort = () => leave(requestAborted());
      const granted = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        resolve(releaser(ep));
      };
      const timer = setTimeout(() => leave(slowDown()), queueTimeoutSeconds * 1000);
      signal.addEventListener("abort", onAbort, { once: true });
      ep.waiting.push(granted);
    });
  };
}
