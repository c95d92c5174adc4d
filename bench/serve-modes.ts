/**
 * Bun.serve or node:http? A side-by-side measurement of the two ways to serve a pass-through
 * proxy in Bun, in front of the same loopback origin.
 *
 *   bun bench/serve-modes.ts [--duration 10] [--rounds 2] [--out FILE.md]
 *
 * Starts three processes on 127.0.0.1 (an origin answering /1k and /1m, a Bun.serve proxy and a
 * node:http proxy via @hono/node-server), drives each proxy with autocannon (npx) at 16 and 64
 * connections, interleaved A B A B, checks Content-Length on the streamed 1 MiB response and
 * whether the raw request target `/b/x/../y` reaches the handler, then stops everything and
 * prints (and optionally writes) a markdown summary.
 *
 * Internal sub-commands (run by the main command in child processes):
 *   bun bench/serve-modes.ts origin PORT
 *   bun bench/serve-modes.ts bun-proxy PORT ORIGIN_URL
 *   bun bench/serve-modes.ts node-proxy PORT ORIGIN_URL
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { freePort, sleep } from "../test/harness/proc.ts";
import { autocannon, cpuSeconds, spawnDetached, waitHttp, type Started } from "./lib/proc.ts";

const KIB = 1024;
const MIB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// child roles

function origin(port: number): void {
  const small = new Uint8Array(KIB).fill(0x61);
  const large = new Uint8Array(MIB).fill(0x62);
  Bun.serve({
    hostname: "127.0.0.1",
    port,
    fetch(req) {
      const path = new URL(req.url).pathname;
      const body = path === "/1m" ? large : small;
      return new Response(body, { headers: { "content-type": "application/octet-stream" } });
    },
  });
}

/** What the handler sees as the path: Request.url (normalised or not) and the raw target if any. */
const seen = (url: string) => {
  const u = new URL(url);
  return u.pathname + u.search;
};

function bunProxy(port: number, originUrl: string): void {
  Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(req) {
      const target = seen(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(originUrl + target, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? null : req.body,
        decompress: false,
      } as RequestInit);
      res.headers.set("x-handler-request-url", target);
      return res;
    },
  });
}

async function nodeProxy(port: number, originUrl: string): Promise<void> {
  const { createAdaptorServer } = await import("@hono/node-server");
  const server = createAdaptorServer({
    overrideGlobalObjects: false,
    async fetch(req: Request, env: { incoming: { url?: string } }) {
      const raw = env.incoming.url ?? "/";
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(originUrl + seen(req.url), {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? null : req.body,
        decompress: false,
        duplex: "half",
      } as RequestInit);
      res.headers.set("x-handler-request-url", seen(req.url));
      res.headers.set("x-handler-raw-target", raw);
      return res;
    },
  });
  server.listen(port, "127.0.0.1");
}

// ---------------------------------------------------------------------------------------------
// driver

interface Cell {
  mode: string;
  size: string;
  connections: number;
  round: number;
  reqPerSec: number;
  mbPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  cpuMsPerKReq: number;
}

function curlHeaders(url: string, extra: string[] = []): string {
  const r = Bun.spawnSync(["curl", "-s", "-D", "-", "-o", "/dev/null", ...extra, url], { stdout: "pipe", stderr: "pipe" });
  return r.stdout.toString();
}

const headerValue = (raw: string, name: string) =>
  raw.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ":"))?.slice(name.length + 1).trim();

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      duration: { type: "string", default: "10" },
      rounds: { type: "string", default: "2" },
      out: { type: "string" },
    },
  });
  const duration = Number(values.duration);
  const rounds = Number(values.rounds);
  const self = import.meta.path;

  const started: Started[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop();
  };
  process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
  try {
    const originPort = await freePort();
    started.push(spawnDetached("origin", [process.execPath, "run", self, "origin", String(originPort)]));
    const originUrl = `http://127.0.0.1:${originPort}`;
    await waitHttp(`${originUrl}/1k`);

    const modes: { name: string; port: number; proc?: Started }[] = [];
    for (const name of ["bun-proxy", "node-proxy"]) {
      const port = await freePort();
      const s = spawnDetached(name, [process.execPath, "run", self, name, String(port), originUrl]);
      started.push(s);
      await waitHttp(`http://127.0.0.1:${port}/1k`);
      modes.push({ name, port, proc: s });
    }

    // correctness checks first
    const checks: Record<string, { contentLength: string; transferEncoding: string; requestUrl: string; rawTarget: string }> = {};
    for (const m of modes) {
      const h = curlHeaders(`http://127.0.0.1:${m.port}/1m`);
      const t = curlHeaders(`http://127.0.0.1:${m.port}/b/x/../y`, ["--path-as-is"]);
      checks[m.name] = {
        contentLength: headerValue(h, "content-length") ?? "(absent)",
        transferEncoding: headerValue(h, "transfer-encoding") ?? "(absent)",
        requestUrl: headerValue(t, "x-handler-request-url") ?? "(none)",
        rawTarget: headerValue(t, "x-handler-raw-target") ?? "(not available)",
      };
    }
    console.error(JSON.stringify(checks, null, 2));

    // warm-up, discarded
    for (const m of modes) await autocannon({ url: `http://127.0.0.1:${m.port}/1k`, connections: 16, duration: 3 });

    const cells: Cell[] = [];
    for (const size of ["1k", "1m"]) {
      for (const connections of [16, 64]) {
        for (let round = 1; round <= rounds; round++) {
          // A B, then B A in the next round, so drift and ordering effects cancel out
          const order = round % 2 === 1 ? modes : [...modes].reverse();
          for (const m of order) {
            const cpu0 = cpuSeconds(m.proc!.pid);
            const r = await autocannon({ url: `http://127.0.0.1:${m.port}/${size}`, connections, duration });
            const cpu = cpuSeconds(m.proc!.pid) - cpu0;
            const cell: Cell = {
              mode: m.name, size, connections, round,
              reqPerSec: r.requests.average,
              mbPerSec: r.throughput.average / 1e6,
              p50: r.latency.p50, p99: r.latency.p99,
              errors: r.errors + r.timeouts, non2xx: r.non2xx,
              cpuMsPerKReq: r.requests.total > 0 ? (cpu * 1e6) / r.requests.total : NaN,
            };
            cells.push(cell);
            console.error(JSON.stringify(cell));
            await sleep(500);
          }
        }
      }
    }

    const md = summary(cells, checks, duration, rounds);
    console.log(md);
    if (values.out) writeFileSync(values.out, md);
  } finally {
    await stopAll();
  }
}

function summary(cells: Cell[], checks: Record<string, Record<string, string>>, duration: number, rounds: number): string {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "–");
  const lines: string[] = [];
  lines.push(`Measured ${new Date().toISOString().slice(0, 10)} on ${navigatorInfo()}; autocannon ${duration} s per cell, ${rounds} interleaved rounds (A B B A), means over rounds.`);
  lines.push("");
  lines.push("| body | conns | server | req/s | MB/s | p50 ms | p99 ms | proxy CPU ms per 1k req | errors |");
  lines.push("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const size of ["1k", "1m"]) {
    for (const c of [16, 64]) {
      for (const mode of ["bun-proxy", "node-proxy"]) {
        const xs = cells.filter((x) => x.size === size && x.connections === c && x.mode === mode);
        if (!xs.length) continue;
        lines.push(
          `| ${size === "1k" ? "1 KiB" : "1 MiB"} | ${c} | ${mode === "bun-proxy" ? "Bun.serve" : "node:http"} | ${f(mean(xs.map((x) => x.reqPerSec)))} | ${f(mean(xs.map((x) => x.mbPerSec)), 1)} | ${f(mean(xs.map((x) => x.p50)), 1)} | ${f(mean(xs.map((x) => x.p99)), 1)} | ${f(mean(xs.map((x) => x.cpuMsPerKReq)), 0)} | ${xs.reduce((a, x) => a + x.errors + x.non2xx, 0)} |`,
        );
      }
    }
  }
  lines.push("");
  lines.push("| check | Bun.serve | node:http |");
  lines.push("| --- | --- | --- |");
  const b = checks["bun-proxy"]!, n = checks["node-proxy"]!;
  lines.push(`| Content-Length on streamed 1 MiB response | ${b.contentLength} | ${n.contentLength} |`);
  lines.push(`| Transfer-Encoding on it | ${b.transferEncoding} | ${n.transferEncoding} |`);
  lines.push(`| \`/b/x/../y\`: path in Request.url | ${b.requestUrl} | ${n.requestUrl} |`);
  lines.push(`| \`/b/x/../y\`: raw target available to the handler | ${b.rawTarget} | ${n.rawTarget} (incoming.url) |`);
  return lines.join("\n") + "\n";
}

function navigatorInfo(): string {
  const os = require("node:os") as typeof import("node:os");
  return `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Bun ${Bun.version}, load ${os.loadavg().map((x) => x.toFixed(1)).join("/")}`;
}

const [role, ...rest] = process.argv.slice(2);
if (role === "origin") origin(Number(rest[0]));
else if (role === "bun-proxy") bunProxy(Number(rest[0]), rest[1]!);
else if (role === "node-proxy") await nodeProxy(Number(rest[0]), rest[1]!);
else await main();
