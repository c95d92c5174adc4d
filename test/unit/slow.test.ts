import { describe, expect, test } from "bun:test";
import { createBackendSlots } from "../../src/state/slots.ts";
import { resumableExtent } from "../../src/pipeline/resume.ts";
import { bodyDeadline } from "../../src/pipeline/deadline.ts";
import { S3Error } from "../../src/errors.ts";

const never = new AbortController().signal;

describe("backend slots", () => {
  test("a queue per endpoint, first come first served; each release counts once", async () => {
    const acquire = createBackendSlots(2, 5);
    const a = await acquire("http://a", never);
    await acquire("http://a", never);
    await acquire("http://b", never); // another endpoint has its own slots
    const order: number[] = [];
    const third = acquire("http://a", never).then((r) => (order.push(3), r));
    const fourth = acquire("http://a", never).then((r) => (order.push(4), r));
    a();
    a(); // a second call must not free another slot
    const r3 = await third;
    await Bun.sleep(10);
    expect(order).toEqual([3]);
    r3();
    await fourth;
    expect(order).toEqual([3, 4]);
  });

  test("a wait longer than the queue timeout is SlowDown; a client gone while queued leaves the queue", async () => {
    const acquire = createBackendSlots(1, 0.05);
    const held = await acquire("http://a", never);
    const err = await acquire("http://a", never).catch((e) => e);
    expect(err).toBeInstanceOf(S3Error);
    expect([err.status, err.code]).toEqual([503, "SlowDown"]);
    const gone = new AbortController();
    const aborted = acquire("http://a", gone.signal).catch((e) => e);
    gone.abort();
    expect((await aborted).code).toBe("RequestAborted");
    held();
    // neither the timed-out nor the aborted waiter kept the slot
    const again = await acquire("http://a", never);
    again();
  });
});

describe("resumable GET answers", () => {
  const h = (o: Record<string, string>) => new Headers(o);
  test("the extent of 200 and 206 answers with an ETag and a length", () => {
    expect(resumableExtent(200, h({ etag: '"e"', "content-length": "10" }))).toEqual({ first: 0, last: 9, etag: '"e"' });
    expect(resumableExtent(206, h({ etag: '"e"', "content-length": "5", "content-range": "bytes 5-9/10" }))).toEqual({ first: 5, last: 9, etag: '"e"' });
    expect(resumableExtent(200, h({ "content-length": "10" }))).toBeUndefined();
    expect(resumableExtent(200, h({ etag: '"e"', "content-length": "0" }))).toBeUndefined();
    expect(resumableExtent(206, h({ etag: '"e"', "content-length": "5", "content-range": "bytes */10" }))).toBeUndefined();
    expect(resumableExtent(304, h({ etag: '"e"', "content-length": "10" }))).toBeUndefined();
  });
});

describe("request body deadline", () => {
  /** A client that sends `n` pieces of `size` bytes, one every `everyMs`. */
  const client = (n: number, size: number, everyMs: number) => {
    let i = 0;
    return new ReadableStream<Uint8Array>({
      async pull(c) {
        await Bun.sleep(everyMs);
        if (i++ < n) c.enqueue(new Uint8Array(size));
        else c.close();
      },
    }, { highWaterMark: 0 });
  };
  const readAll = async (s: ReadableStream<Uint8Array>, pauseMs = 0) => {
    let bytes = 0;
    for (const r = s.getReader(); ; ) {
      const { done, value } = await r.read();
      if (done) return bytes;
      bytes += value.length;
      await Bun.sleep(pauseMs);
    }
  };

  test("a body slower than the minimum rate stops with RequestTimeout", async () => {
    const g = bodyDeadline(client(100, 1, 20), 0.2, 1000);
    const err = await readAll(g.body).catch((e) => e);
    expect(err).toBeInstanceOf(S3Error);
    expect(err.code).toBe("RequestTimeout");
    expect(g.failure()).toBe(err);
  });

  test("a body that stops sending stops with RequestTimeout, even with a minimum rate of 0", async () => {
    const g = bodyDeadline(client(1, 10, 1000), 0.1, 0);
    expect((await readAll(g.body).catch((e) => e)).code).toBe("RequestTimeout");
  });

  test("a body fast enough passes, however long it lasts and however slowly it is consumed", async () => {
    const g = bodyDeadline(client(10, 100, 20), 0.05, 1000); // 5 kB/s, read with pauses of two windows
    expect(await readAll(g.body, 100)).toBe(1000);
    expect(g.failure()).toBeUndefined();
  });
});
