import { describe, expect, test } from "bun:test";
import { ProtocolError, ResponseParser, type ResponseEvent } from "../../src/http1/response.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

/** Feeds `text` in pieces of `step` bytes (0: whole); the events, the body joined, and whether it ended reusable. */
function parse(text: string, method = "GET", step = 0, close = false) {
  const p = new ResponseParser(method);
  const events: ResponseEvent[] = [];
  const b = bytes(text);
  if (step === 0) events.push(...p.push(b));
  else for (let i = 0; i < b.length; i += step) events.push(...p.push(b.subarray(i, i + step)));
  if (close) events.push(...p.close());
  const heads = events.filter((e) => e.type === "head");
  const body = Buffer.concat(events.flatMap((e) => (e.type === "body" ? [e.data] : []))).toString("latin1");
  const end = events.find((e) => e.type === "end");
  return { heads, head: heads[0]?.type === "head" ? heads[0].head : undefined, body, ended: !!end, reusable: end?.type === "end" && end.reusable, last: events.at(-1)?.type };
}

const refused = (text: string, message: RegExp, method = "GET") => {
  expect(() => parse(text, method)).toThrow(ProtocolError);
  expect(() => parse(text, method)).toThrow(message);
};

describe("HTTP/1.1 answers from a backend", () => {
  const sized = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nETag: \"x\"\r\nx-amz-meta-name: caf\xe9\r\n\r\nhello world";
  const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n";

  test("a body by Content-Length, its head as sent (latin1 values), the connection reusable, read in any pieces", () => {
    for (const step of [0, 1, 2, 3, 7, 50]) {
      const r = parse(sized, "GET", step);
      expect(r.head).toEqual({ status: 200, statusText: "OK", rawHeaders: ["Content-Length", "11", "ETag", '"x"', "x-amz-meta-name", "caf\xe9"] });
      expect(r.body).toBe("hello world");
      expect(r).toMatchObject({ ended: true, reusable: true, last: "end" });
    }
  });

  test("a chunked body decoded, extensions and trailers left out, in any pieces", () => {
    for (const step of [0, 1, 2, 5, 13]) {
      const r = parse(chunked, "GET", step);
      expect(r.body).toBe("hello world");
      expect(r).toMatchObject({ ended: true, reusable: true });
    }
  });

  test("no body for HEAD, 204 and 304, whatever the head says; Content-Length: 0 is an empty body", () => {
    expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD")).toMatchObject({ body: "", ended: true, reusable: true });
    expect(parse("HTTP/1.1 204 No Content\r\n\r\n")).toMatchObject({ body: "", ended: true, reusable: true });
    expect(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")).toMatchObject({ ended: true, reusable: true });
    expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).toMatchObject({ body: "", ended: true, reusable: true });
  });

  test("a body without length runs to the close, and its connection is not reused", () => {
    const text = "HTTP/1.1 200 OK\r\n\r\nall of it";
    expect(parse(text)).toMatchObject({ body: "all of it", ended: false });
    expect(parse(text, "GET", 4, true)).toMatchObject({ body: "all of it", ended: true, reusable: false });
  });

  test("Connection: close, HTTP/1.0 and bytes after the answer make the connection not reusable", () => {
    expect(parse("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx")).toMatchObject({ ended: true, reusable: false });
    expect(parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx")).toMatchObject({ ended: true, reusable: false });
    const extra = parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n");
    expect(extra).toMatchObject({ body: "x", ended: true, reusable: false });
    expect(extra.heads.length).toBe(1);
    expect(parse(chunked + "junk")).toMatchObject({ body: "hello world", reusable: false });
  });

  test("interim answers are passed over; no status line, no reason phrase", () => {
    const r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 404 \r\nContent-Length: 2\r\n\r\nno");
    expect(r.heads.length).toBe(1);
    expect(r.head).toMatchObject({ status: 404, statusText: "" });
    expect(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").head).toMatchObject({ status: 200, statusText: "" });
  });

  test("identical Content-Length values are one", () => {
    expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok").body).toBe("ok");
  });

  test("what could let one answer run into the next is refused", () => {
    refused("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", /Content-Length/);
    refused("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", /Content-Length/);
    refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /Content-Length/);
    refused("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", /Content-Length/);
    refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", /both/);
    refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", /transfer coding/);
    refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", /transfer coding/);
    refused("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", /header line/);
    refused("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", /status line|header line/);
    refused("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", /header line/);
    refused("HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", /header line/);
    refused("HTTP/2 200\r\n\r\n", /status line/);
    refused("HTTP/1.1 101 Switching Protocols\r\n\r\n", /switched/);
    refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", /chunk size/);
    refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", /longer than its size/);
    refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n", /CRLF/);
    refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n", /chunk size/);
    refused(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(70_000)}\r\n\r\n`, /too large/);
  });

  test("a connection closed early is an error, told apart from one closed before any answer", () => {
    expect(() => parse("", "GET", 0, true)).toThrow(/without an answer/);
    expect(() => parse("HTTP/1.1 200 OK\r\nContent-Le", "GET", 0, true)).toThrow(/before the end/);
    expect(() => parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "GET", 0, true)).toThrow(/before the end/);
    expect(() => parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "GET", 0, true)).toThrow(/before the end/);
  });
});
