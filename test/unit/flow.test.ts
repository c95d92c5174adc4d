/**
 * The body on its way to the client (resume.ts): sendBody's pacing and its resumption of a body the
 * backend cut, with a Writable standing in for the client's response and web streams for bodies.
 */
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { sendBody, type Extent, type Flow } from "../../src/pipeline/resume.ts";
import type { BackendAnswer } from "../../src/pipeline/forward.ts";

const bytes = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) % 251);

/** A stream of `data` in chunks of `size`, failing after `cutAfter` bytes if given. */
function source(data: Uint8Array, size: number, cutAfter = Infinity): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= cutAfter) return c.error(new Error("connection reset"));
      if (at >= data.length) return c.close();
      const end = Math.min(at + size, data.length, cutAfter);
      c.enqueue(data.slice(at, end));
      at = end;
    },
  }, { highWaterMark: 0 });
}

/** A web stream as sendBody reads a body: read only while resumed, "close" without "end" when it fails. */
function webFlow(stream: ReadableStream<Uint8Array>): Flow {
  const reader = stream.getReader();
  let paused = true;
  let reading = false;
  let over = false;
  const flow = new EventEmitter() as EventEmitter & Flow;
  const pump = async () => {
    if (reading) return;
    reading = true;
    try {
      while (!paused && !over) {
        const { done, value } = await reader.read();
        if (over) return;
        if (done) {
          over = true;
          flow.emit("end");
          return void flow.emit("close");
        }
        flow.emit("data", value);
      }
    } catch {
      if (!over) {
        over = true;
        flow.emit("close");
      }
    } finally {
      reading = false;
    }
  };
  flow.pause = () => ((paused = true), flow);
  flow.resume = () => ((paused = false), void pump(), flow);
  flow.destroy = () => ((over = true), reader.cancel().catch(() => {}), flow);
  return flow;
}

/** A client that takes what it is written, slowly if asked (backpressure); got() is all written to it. */
function client(highWaterMark = 16 * 1024, delayMs = 0) {
  const got: Uint8Array[] = [];
  const out = new Writable({ highWaterMark, write: (_chunk, _enc, done) => void setTimeout(done, delayMs) });
  const write = out.write.bind(out);
  out.write = ((chunk: Uint8Array) => (got.push(chunk), write(chunk))) as typeof out.write;
  return { out, got: () => Buffer.concat(got) };
}

const answer = (status: number, headers: Record<string, string>, body: ReadableStream<Uint8Array>): BackendAnswer => ({
  status, statusText: "", headers: new Headers(headers),
  body: { bytes: async () => new Uint8Array(), stream: () => webFlow(body), discard: () => void body.cancel() },
});

describe("sendBody", () => {
  const extent: Extent = { first: 0, last: 99_999, etag: '"e"' };

  test("a body cut by the backend is resumed from where it stopped, with If-Match, and arrives whole", async () => {
    const data = bytes(100_000);
    const asked: [number, number, string][] = [];
    let released = 0;
    const { out, got } = client(8 * 1024, 1);
    await sendBody({
      source: webFlow(source(data, 4096, 30_000)),
      release: () => released++,
      resume: {
        extent,
        refetch: async (first, last, etag) => {
          asked.push([first, last, etag]);
          return answer(206, { "content-range": `bytes ${first}-${last}/100000` }, source(data.subarray(first), 4096));
        },
      },
    }, out);
    expect(asked).toEqual([[30_000, 99_999, '"e"']]);
    expect(got()).toEqual(Buffer.from(data));
    expect(out.writableEnded).toBe(true);
    expect(released).toBe(1);
  });

  test("a resumption that is not the rest asked for (200, another range) ends the body short", async () => {
    for (const wrong of [answer(200, {}, source(bytes(100_000), 4096)), answer(206, { "content-range": "bytes 0-99999/100000" }, source(bytes(100_000), 4096))]) {
      let released = 0;
      const { out, got } = client();
      await sendBody({ source: webFlow(source(bytes(100_000), 4096, 30_000)), release: () => released++, resume: { extent, refetch: async () => wrong } }, out);
      expect(got().length).toBe(30_000);
      expect(out.destroyed).toBe(true);
      expect(out.writableEnded).toBe(false);
      expect(released).toBe(1);
    }
  });

  test("without resume, or before any byte was passed on, a cut body is not asked for again", async () => {
    let asked = 0;
    const refetch = async () => (asked++, answer(200, {}, source(bytes(1), 1)));
    for (const [cut, resume] of [[30_000, undefined], [0, { extent, refetch }]] as const) {
      const { out, got } = client();
      await sendBody({ source: webFlow(source(bytes(100_000), 4096, cut)), release: () => {}, resume }, out);
      expect(got().length).toBe(cut);
      expect(out.destroyed).toBe(true);
    }
    expect(asked).toBe(0);
  });

  test("the body is read at the client's pace; a client that goes away stops it and gives the slot back once", async () => {
    let released = 0;
    let cancelled = false;
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull: (c) => (pulled++, c.enqueue(bytes(1024))),
      cancel: () => void (cancelled = true),
    }, { highWaterMark: 0 });
    const { out } = client(4096, 5);
    const sent = sendBody({ source: webFlow(endless), release: () => released++ }, out);
    await Bun.sleep(30);
    // read only as fast as the client takes it: about one write per 5 ms, and its 4 KiB buffer
    expect(pulled).toBeLessThan(20);
    out.destroy();
    await sent;
    const after = pulled;
    await Bun.sleep(30);
    expect([cancelled, released, pulled]).toEqual([true, 1, after]);
  });
});
