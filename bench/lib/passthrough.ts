/**
 * Bare pass-through proxies: the floor each way of serving costs in Bun, with no signing and no
 * logic. bench/cost.ts runs them beside osp to show how much of osp's cost is its own.
 *
 *   bun bench/lib/passthrough.ts MODE PORT ORIGIN_URL
 *
 * MODE: bun-serve      Bun.serve, returning fetch()'s Response (drops Content-Length when streaming)
 *       hono-node      node:http through @hono/node-server, fetch()
 *       node-fetch     a plain node:http handler: fetch(), then res.write() with backpressure
 *       node-pipe      node:http server and node:http client, piped
 */
import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable } from "node:stream";

const [mode, portText, origin] = process.argv.slice(2) as [string, string, string];
const port = Number(portText);
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host"]);
const hasBody = (method: string) => method !== "GET" && method !== "HEAD";

function upstreamHeaders(incoming: IncomingMessage): Headers {
  const h = new Headers();
  for (let i = 0; i < incoming.rawHeaders.length; i += 2) {
    const name = incoming.rawHeaders[i]!.toLowerCase();
    if (!HOP.has(name)) h.append(name, incoming.rawHeaders[i + 1]!);
  }
  return h;
}

async function nodeFetch(incoming: IncomingMessage, res: ServerResponse): Promise<void> {
  const up = await fetch(origin + incoming.url, {
    method: incoming.method,
    headers: upstreamHeaders(incoming),
    body: hasBody(incoming.method!) ? (Readable.toWeb(incoming) as ReadableStream) : null,
    decompress: false,
    duplex: "half",
  } as RequestInit);
  const headers: Record<string, string> = {};
  up.headers.forEach((v, k) => {
    if (!HOP.has(k)) headers[k] = v;
  });
  res.writeHead(up.status, headers);
  if (!up.body) return void res.end();
  for await (const chunk of up.body) {
    if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
  }
  res.end();
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function nodePipe(incoming: IncomingMessage, res: ServerResponse): void {
  const u = new URL(origin);
  const headers = { ...incoming.headers, host: u.host };
  const up = request({ host: u.hostname, port: u.port, method: incoming.method, path: incoming.url, headers, agent }, (r) => {
    res.writeHead(r.statusCode!, r.headers);
    r.pipe(res);
  });
  up.on("error", () => res.destroy());
  incoming.pipe(up);
}

switch (mode) {
  case "bun-serve":
    Bun.serve({
      hostname: "127.0.0.1",
      port,
      idleTimeout: 255,
      maxRequestBodySize: 2 ** 40,
      fetch(req) {
        const u = new URL(req.url);
        const headers = new Headers(req.headers);
        headers.delete("host");
        return fetch(origin + u.pathname + u.search, { method: req.method, headers, body: hasBody(req.method) ? req.body : null, decompress: false } as RequestInit);
      },
    });
    break;
  case "hono-node": {
    const { createAdaptorServer } = await import("@hono/node-server");
    createAdaptorServer({
      overrideGlobalObjects: false,
      fetch(req: Request) {
        const u = new URL(req.url);
        const headers = new Headers(req.headers);
        headers.delete("host");
        return fetch(origin + u.pathname + u.search, { method: req.method, headers, body: hasBody(req.method) ? req.body : null, decompress: false, duplex: "half" } as RequestInit);
      },
    }).listen(port, "127.0.0.1");
    break;
  }
  case "node-fetch":
    createServer((req, res) => void nodeFetch(req, res).catch(() => res.destroy())).listen(port, "127.0.0.1");
    break;
  case "node-pipe":
    createServer(nodePipe).listen(port, "127.0.0.1");
    break;
  default:
    console.error(`unknown mode ${mode}`);
    process.exit(2);
}

