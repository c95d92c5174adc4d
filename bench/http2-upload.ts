/**
 * Does Bun's node:http2 server hold back an upload when the backend reads slowly? The memory of one
 * server process during a 1 GiB upload, for each way osp could serve HTTPS.
 *
 *   bun bench/http2-upload.ts [--size-mib 1024] [--sink-mib-per-s 200] [--out FILE.md]
 *
 * Starts a sink (Bun.serve, reading request bodies at a limited rate) and, one after the other,
 * servers that pass the upload on to it through the Hono node adapter and fetch(), as osp does:
 * node:https; node:http2 with allowHTTP1; and one node:tls listener handing each connection by ALPN
 * to a node:http2 or a node:http server (each spoken to in HTTP/2 and in HTTP/1.1). curl sends the
 * body; the figure is the server's peak RSS (VmHWM) minus its RSS just before.
 *
 * Internal sub-commands:
 *   bun bench/http2-upload.ts sink PORT MIB_PER_S
 *   bun bench/http2-upload.ts server https|http2|alpn PORT SINK_URL CERT KEY
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createH2Server, createSecureServer } from "node:http2";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTlsServer } from "node:tls";
import { getRequestListener } from "@hono/node-server";
import { freePort, sleep } from "../test/harness/proc.ts";
import { makeCertificate } from "../test/harness/tls.ts";
import { hwmOf, resetPeakRss, rssOf, spawnDetached, waitHttp } from "./lib/proc.ts";

const MIB = 1024 * 1024;

function sink(port: number, mibPerSecond: number): void {
  Bun.serve({
    hostname: "127.0.0.1",
    port,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: 0,
    async fetch(req) {
      let n = 0;
      const started = performance.now();
      for await (const chunk of req.body ?? []) {
        n += chunk.length;
        const due = (n / MIB / mibPerSecond) * 1000 - (performance.now() - started);
        if (due > 0) await sleep(due);
      }
      return new Response(String(n));
    },
  });
}

function server(kind: string, port: number, sinkUrl: string, cert: string, key: string): void {
  const listener = getRequestListener(
    (req: Request) =>
      fetch(sinkUrl, { method: req.method, body: req.body, headers: { "content-length": req.headers.get("content-length") ?? "" }, duplex: "half" } as RequestInit),
    { overrideGlobalObjects: false },
  );
  const tls = { cert: readFileSync(cert), key: readFileSync(key) };
  if (kind === "alpn") {
    // one TLS listener; ALPN decides which server gets the connection
    const h1 = createHttpServer(listener);
    const h2 = createH2Server(listener);
    createTlsServer({ ...tls, ALPNProtocols: ["h2", "http/1.1"] }, (socket) =>
      (socket.alpnProtocol === "h2" ? h2 : h1).emit("connection", socket),
    ).listen(port, "127.0.0.1");
    return;
  }
  const s = kind === "https" ? createHttpsServer(tls, listener) : createSecureServer({ ...tls, allowHTTP1: true }, listener);
  s.listen(port, "127.0.0.1");
}

const SERVERS: Record<string, string> = {
  https: "node:https",
  http2: "node:http2, allowHTTP1",
  alpn: "node:tls, by ALPN to node:http2 or node:http",
};


async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { "size-mib": { type: "string", default: "1024" }, "sink-mib-per-s": { type: "string", default: "200" }, out: { type: "string" } },
  });
  const sizeMiB = Number(values["size-mib"]);
  const self = import.meta.path;
  const tls = await makeCertificate();
  const file = `${tls.dir}/upload.bin`;
  await Bun.$`head -c ${sizeMiB * MIB} /dev/urandom > ${file}`;
  const sinkPort = await freePort();
  const sinkProc = spawnDetached("sink", [process.execPath, "run", self, "sink", String(sinkPort), values["sink-mib-per-s"]!]);
  const rows: string[] = [];
  try {
    await waitHttp(`http://127.0.0.1:${sinkPort}/`);
    for (const [kind, protocol] of [["https", "--http1.1"], ["http2", "--http2"], ["http2", "--http1.1"], ["alpn", "--http2"], ["alpn", "--http1.1"]] as const) {
      const port = await freePort();
      const s = spawnDetached(kind, [process.execPath, "run", self, "server", kind, String(port), `http://127.0.0.1:${sinkPort}/`, tls.cert, tls.key]);
      try {
        await waitHttp(`https://127.0.0.1:${port}/`, 30_000, s.proc, { tls: { rejectUnauthorized: false } } as RequestInit);
        await sleep(500);
        resetPeakRss(s.pid);
        const before = rssOf(s.pid) / MIB;
        const started = performance.now();
        const out = await Bun.$`curl -sk ${protocol} -o - -w " %{http_code} %{http_version}" -T ${file} https://127.0.0.1:${port}/`.nothrow().text();
        const seconds = (performance.now() - started) / 1000;
        const peak = hwmOf(s.pid) / MIB;
        const row = `| ${SERVERS[kind]} | ${out.trim().split(" ").pop() === "2" ? "HTTP/2" : "HTTP/1.1"} | ${before.toFixed(0)} | ${peak.toFixed(0)} | ${(peak - before).toFixed(0)} | ${seconds.toFixed(1)} | ${out.trim()} |`;
        console.log(row);
        rows.push(row);
      } finally {
        await s.stop();
      }
    }
  } finally {
    await sinkProc.stop();
    rmSync(tls.dir, { recursive: true, force: true });
  }
  const report = [
    `Bun ${Bun.version}, ${sizeMiB} MiB upload by curl, sink reading at ${values["sink-mib-per-s"]} MiB/s.`,
    "",
    "| server | protocol | RSS before MiB | peak MiB | growth MiB | seconds | sink bytes, status, version |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ...rows,
  ].join("\n");
  console.log("\n" + report);
  if (values.out) writeFileSync(values.out, report + "\n");
}

const [role, ...args] = process.argv.slice(2);
if (role === "sink") sink(Number(args[0]), Number(args[1]));
else if (role === "server") server(args[0]!, Number(args[1]), args[2]!, args[3]!, args[4]!);
else await main();
