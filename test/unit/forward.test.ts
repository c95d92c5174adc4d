import { describe, expect, test } from "bun:test";
import { createServer, type AddressInfo } from "node:net";
import { asksLargeRange, forward, LARGE_RANGE, type BackendAnswer, type UpstreamRequest } from "../../src/pipeline/forward.ts";

describe("which client asks the backend", () => {
  test("node:http's client for a GET of an open-ended range or one of LARGE_RANGE bytes or more", () => {
    expect(asksLargeRange("GET", "bytes=0-")).toBe(true);
    expect(asksLargeRange("GET", "bytes=123456-")).toBe(true);
    expect(asksLargeRange("GET", ` bytes=0-${LARGE_RANGE - 1} `)).toBe(true);
    expect(asksLargeRange("GET", `bytes=10-${LARGE_RANGE + 9}`)).toBe(true);
  });
  test("fetch() for anything else: no range, a smaller one, a suffix, several, or another method", () => {
    expect(asksLargeRange("GET", undefined)).toBe(false);
    expect(asksLargeRange("GET", `bytes=0-${LARGE_RANGE - 2}`)).toBe(false);
    expect(asksLargeRange("GET", "bytes=-5000000")).toBe(false);
    expect(asksLargeRange("GET", "bytes=0-10,20-")).toBe(false);
    expect(asksLargeRange("GET", "items=0-")).toBe(false);
    expect(asksLargeRange("HEAD", "bytes=0-")).toBe(false);
    expect(asksLargeRange("GET", "bytes=5-2")).toBe(false);
  });
});

describe("a kept-alive backend connection closed as a request arrives", () => {
  // a backend that closes an idle connection just as osp reuses it: the request is cut before any
  // answer. No S3 server can be made to do that on cue, so a socket server plays that backend's part.
  async function closingBackend() {
    let connections = 0;
    let requests = 0;
    const server = createServer((socket) => {
      const n = ++connections;
      let seen = 0;
      socket.on("data", (chunk) => {
        for (const _ of chunk.toString("latin1").matchAll(/\r\n\r\n/g)) {
          requests++;
          // the first connection serves one request, then is gone when the next arrives
          if (n === 1 && ++seen === 2) return void socket.destroy();
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b/k`;
    return { url, server, counts: () => ({ connections, requests }) };
  }
  const tls = { rejectUnauthorized: true } as UpstreamRequest["tls"];
  const text = async (a: BackendAnswer) => new TextDecoder().decode(await a.body!.bytes());

  test("a request without a body is sent again, once, on a new connection", async () => {
    const b = await closingBackend();
    const ask = () => forward({ method: "GET", url: b.url, headers: new Headers(), tls }, null, "b", new AbortController().signal, 5);
    expect(await text(await ask())).toBe("ok");
    expect(await text(await ask())).toBe("ok");
    expect(b.counts()).toEqual({ connections: 2, requests: 3 });
    b.server.close();
  });
});
