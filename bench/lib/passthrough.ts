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
 * and two steps of a ladder up to osp, made of osp's own modules (bench/README.md, "Sixth round"):
 *       osp-client     node:http and osp's HTTP/1.1 client (forward(), sendBody()): osp's serving
 *                      and forwarding, without any of its steps
 *       osp-sigv4      the same with the steps every SigV4 proxy takes: parse the request, verify
 *                      its signature, re-sign it; CONFIG (an osp.toml) gives the keys and the bucket
 *
 *   bun bench/lib/passthrough.ts osp-sigv4 PORT ORIGIN_URL CONFIG
 */
import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable } from "node:stream";

const [mode, portText, origin, configPath] = process.argv.slice(2) as [string, string, string, string?];
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

const TLS = { rejectUnauthorized: true };

/** osp-client and osp-sigv4: a plain upload is piped, a small answer written whole, a larger one piped, as osp does. */
async function ospLadder(signed: boolean): Promise<(incoming: IncomingMessage, res: ServerResponse) => Promise<void>> {
  const { forward } = await import("../../src/pipeline/forward.ts");
  const { sendBody } = await import("../../src/pipeline/resume.ts");
  const { parseRequest } = await import("../../src/pipeline/request.ts");
  const { authenticate } = await import("../../src/pipeline/authenticate.ts");
  const { forwardedHeaders, resign } = await import("../../src/pipeline/resign.ts");
  const { bucketFor, upstreamUrl } = await import("../../src/pipeline/route.ts");
  const { loadConfig } = await import("../../src/config.ts");
  const { createSecretLookup } = await import("../../src/state/secrets.ts");
  const { SMALL_BODY } = await import("../../src/pipeline/respond.ts");
  const config = signed ? await loadConfig(configPath!) : undefined;
  const lookupSecret = config && createSecretLookup(config, {});
  return async (incoming, res) => {
    let url = origin + incoming.url;
    let headers: Map<string, string>;
    if (config && lookupSecret) {
      const req = parseRequest({ method: incoming.method!, url: incoming.url!, rawHeaders: incoming.rawHeaders, clientAddress: "", scheme: "http" });
      const identity = await authenticate(req, lookupSecret, Date.now(), config.server);
      const bucket = bucketFor(config, req.bucket);
      url = upstreamUrl(bucket, req.key, req.query);
      const auth = { kind: "hmac" as const, accessKey: bucket.accessKey!, secretKey: bucket.secretKey! };
      headers = await resign(req.method, url, forwardedHeaders(req.headers, identity.signedHeaders, {}), auth, bucket);
    } else headers = new Map(upstreamHeaders(incoming));
    const body = hasBody(incoming.method!) ? {
      body: { node: incoming, proceed() {}, continued: true, unfinished: false, received: 0, stream: () => Readable.toWeb(incoming) as ReadableStream<Uint8Array> },
      pace: { seconds: 30, minRate: 0 },
    } : null;
    const answer = await forward({ method: incoming.method!, url, headers, tls: TLS }, body, "bench", new AbortController(), 30);
    const out: Record<string, string> = {};
    answer.headers.forEach((v, k) => {
      out[k] = v;
    });
    res.writeHead(answer.status, out);
    if (!answer.body) return void res.end();
    const length = answer.headers.get("content-length");
    if (length !== null && Number(length) <= SMALL_BODY) return void res.end(await answer.body.bytes());
    await sendBody({ source: answer.body.stream(), release() {} }, res);
  };
}

switch (mode) {
  case "osp-client":
  case "osp-sigv4": {
    const handle = await ospLadder(mode === "osp-sigv4");
    // a refusal (an unsigned request, a wrong signature) is its status alone
    createServer((req, res) => void handle(req, res).catch((e) => (res.headersSent ? res.destroy() : res.writeHead(e?.status ?? 500).end()))).listen(port, "127.0.0.1");
    break;
  }
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

