import { describe, expect, test } from "bun:test";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import type { ClientBody } from "../../src/pipeline/upload.ts";
import { forward, type BackendAnswer, type UpstreamRequest } from "../../src/pipeline/forward.ts";
import { S3Error } from "../../src/errors.ts";

// Backends that misbehave on cue: closing a kept-alive connection just as osp reuses it, sending
// what is not HTTP/1.1, or not answering at all. No S3 server can be made to do these, so a socket
// server plays that backend's part; every well-behaved exchange is tested against MinIO.
/** `onRequest` gets the connection's number, the request's number on it and over all. */
async function socketBackend(onRequest: (socket: Socket, connection: number, nth: number, overall: number) => void) {
  let connections = 0;
  let requests = 0;
  const heads: string[] = [];
  const server = createServer((socket) => {
    const n = ++connections;
    let seen = 0;
    let buffered = "";
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      for (let end = buffered.indexOf("\r\n\r\n"); end >= 0; end = buffered.indexOf("\r\n\r\n")) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        requests++;
        heads.push(head);
        onRequest(socket, n, ++seen, requests);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b/k`;
  return { url, server, heads, counts: () => ({ connections, requests }) };
}

const tls = { rejectUnauthorized: true } as UpstreamRequest["tls"];
const text = async (a: BackendAnswer) => new TextDecoder().decode(await a.body!.bytes());
const ask = (url: string, method = "GET", timeout = 5, headers: Map<string, string> = new Map()) =>
  forward({ method, url, headers, tls }, null, "b", new AbortController(), timeout);
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e) => (e instanceof S3Error ? { status: e.status, code: e.code, message: e.message } : e));

describe("a kept-alive backend connection closed as a request arrives", () => {
  // the first connection serves one request, then is gone when the next arrives
  const closing = (socket: Socket, connection: number, nth: number) => {
    if (connection === 1 && nth === 2) return void socket.destroy();
    socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  };

  test("an idempotent request is sent again, once, on a new connection", async () => {
    const b = await socketBackend(closing);
    expect(await text(await ask(b.url))).toBe("ok");
    expect(await text(await ask(b.url, "DELETE"))).toBe("ok");
    expect(b.counts()).toEqual({ connections: 2, requests: 3 });
    b.server.close();
  });

  test("a POST is not: it may have been done", async () => {
    const b = await socketBackend(closing);
    expect(await text(await ask(b.url, "POST"))).toBe("ok");
    expect(await failure(ask(b.url, "POST"))).toMatchObject({ status: 502, code: "BadGateway", message: expect.stringContaining("ECONNRESET") });
    expect(b.counts()).toEqual({ connections: 1, requests: 2 });
    b.server.close();
  });
});

describe("osp's HTTP/1.1 client on its own", () => {
  test("the request as sent: the target as built, host, the headers, and a length of 0 for a PUT without body", async () => {
    const b = await socketBackend((socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    const port = new URL(b.url).port;
    await ask(`${b.url}?uploads=&x=a%20b`, "GET", 5, new Map([["x-amz-meta-name", "caf\xe9"]]));
    await ask(b.url, "PUT");
    expect(b.heads[0]).toBe(`GET /b/k?uploads=&x=a%20b HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nx-amz-meta-name: caf\xe9`);
    expect(b.heads[1]).toBe(`PUT /b/k HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-length: 0`);
    b.server.close();
  });

  test("an answer that is not HTTP/1.1 as osp reads it is a 502, and its connection is not used again", async () => {
    const b = await socketBackend((socket, _c, _n, overall) =>
      socket.write(overall === 1 ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok" : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    );
    expect(await failure(ask(b.url))).toMatchObject({ status: 502, code: "BadGateway", message: expect.stringContaining("Content-Length") });
    expect(await text(await ask(b.url))).toBe("ok");
    expect(b.counts()).toEqual({ connections: 2, requests: 2 });
    b.server.close();
  });

  test("a backend that does not answer within the deadline is a 504; a chunked answer and one read to the close are read whole", async () => {
    const b = await socketBackend((socket, _c, _n, overall) => {
      if (overall === 1) return; // silent
      if (overall === 2) return void socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
      socket.end("HTTP/1.1 200 OK\r\n\r\nto the end");
    });
    expect(await failure(ask(b.url, "GET", 0.3))).toMatchObject({ status: 504, code: "GatewayTimeout" });
    const silent = b.counts().connections;
    expect(await text(await ask(b.url))).toBe("abc");
    expect(await text(await ask(b.url))).toBe("to the end");
    // the silent connection was closed; the chunked one served the last request, then closed
    expect(b.counts().connections).toBe(silent + 1);
    b.server.close();
  });

  test("a body cut by the backend ends without its end: read whole, it is a 502", async () => {
    const b = await socketBackend((socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    expect(await failure(text(await ask(b.url)))).toMatchObject({ status: 502, code: "BadGateway", message: expect.stringContaining("ended its answer early") });
    b.server.close();
  });

  test("an answer that comes before the whole body: the client is read no further, the connection is not used again", async () => {
    // a backend that refuses an upload at once and keeps the connection open
    const b = await socketBackend((socket) => socket.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"));
    const node = new PassThrough();
    const body: ClientBody = { node, proceed() {}, continued: true, unfinished: false, received: 0, stream: () => { throw new Error("not read as a web stream"); } };
    node.write("part of the body");
    const refused = await forward({ method: "PUT", url: b.url, headers: new Map([["content-length", "100000"]]), tls }, { body, pace: { seconds: 30, minRate: 1 } }, "b", new AbortController(), 5);
    expect({ status: refused.status, unfinished: body.unfinished, received: body.received }).toEqual({ status: 403, unfinished: true, received: 16 });
    expect((await ask(b.url)).status).toBe(403);
    expect(b.counts()).toEqual({ connections: 2, requests: 2 });
    b.server.close();
  });

  test("a connection in use while its idle pool is let go goes back into use", async () => {
    // the second answer takes longer than the sweeper's round (2 s), which finds no idle connection
    const b = await socketBackend((socket, _c, _n, overall) => {
      const answer = () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      if (overall === 2) setTimeout(answer, 2500);
      else answer();
    });
    for (let i = 0; i < 3; i++) expect(await text(await ask(b.url))).toBe("ok");
    expect(b.counts()).toEqual({ connections: 1, requests: 3 });
    b.server.close();
  }, 10_000);

  test("an unreachable backend is a 502 naming the reason", async () => {
    const b = await socketBackend(() => {});
    b.server.close();
    expect(await failure(ask(b.url))).toMatchObject({ status: 502, code: "BadGateway", message: expect.stringContaining("ECONNREFUSED") });
  });
});
