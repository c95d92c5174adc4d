/**
 * What osp costs, side by side with the reference proxy, nginx and bare pass-throughs, in a few
 * minutes. CPU is measured, not throughput: user+system seconds of each server's process tree
 * (from /proc) divided by what it served, which holds up on a shared machine.
 *
 *   bash bench/install.sh && bun bench/cost.ts [--duration 4] [--rounds 2] [--out FILE.md]
 *   bun bench/cost.ts --quick --only osp-1,base-1 --baseline ../other-checkout   (a quick A/B of a change)
 *   bun bench/cost.ts --quick --only osp-1,base-1 --baseline . --server "metrics_port = 0"   (A/B of a setting)
 *   bun bench/cost.ts --only osp-1,base-1 --baseline DIR --workloads get1k   (one workload: get1k, head, get1m, put1m, lat1k;
 *     rng256k and rng1m, ranged GETs, run only when named)
 * --server and --baseline-server add lines to the [server] table of this checkout's / the baseline's osp.
 *
 * One static nginx origin; in front of it, each on 127.0.0.1:
 *   osp-1 / osp-2      osp with 1 / 2 workers (verifies SigV4, re-signs)
 *   ref-1 / ref-2      object-storage-proxy 0.6.12 with 1 / 2 threads (verifies, re-signs)
 *   nginx              nginx as a plain reverse proxy, 1 worker
 *   bun-serve, hono-node, node-fetch, node-pipe   bare pass-throughs (bench/lib/passthrough.ts)
 *   osp-client, osp-sigv4   steps up to osp, made of its modules: its client alone, then with SigV4 (the same)
 * Workloads: wrk (HEAD: autocannon) with one fixed SigV4 signature (16 connections; 1 for latency;
 * 64 for req/s), curl for 1 GiB.
 * Memory: peak RSS of the busiest process under 64 concurrent 1 MiB GETs (wrk, fast readers;
 * curl at 1 MB/s, slow readers), and RSS 5 s after the load. Canary: whether the installed Bun's
 * Bun.serve keeps Content-Length on a streamed response (oven-sh/bun#10507).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { freePort, sleep } from "../test/harness/proc.ts";
import { autocannon, cpuSeconds, peakRssPerProcess, processTree, resetPeakRss, rssOf, spawnDetached, waitHttp, type Started } from "./lib/proc.ts";
import { reverseProxyConf, startNginx, staticOriginConf } from "./lib/nginx.ts";
import { signHeaders } from "./lib/s3.ts";

const { values: opt } = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: { type: "string", default: "4" }, rounds: { type: "string", default: "2" }, out: { type: "string" },
    only: { type: "string" }, quick: { type: "boolean", default: false }, baseline: { type: "string" },
    server: { type: "string", default: "" }, "baseline-server": { type: "string", default: "" }, workloads: { type: "string" },
  },
});
const DURATION = Number(opt.duration);
const ROUNDS = Number(opt.rounds);
const REPO = resolve(import.meta.dir, "..");
const BUCKET = "bench";
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const CREDS = { accessKey: "COSTKEY", secretKey: "cost-secret", region: "us-east-1" };
const work = mkdtempSync(join(tmpdir(), "osp-cost-"));
const log = (...a: unknown[]) => console.error("[cost]", ...a);

interface Target {
  id: string;
  base: string;
  server: Started;
  /** Whether it checks signatures (bare pass-throughs and nginx do not). */
  verifies: boolean;
}

// ---------------------------------------------------------------------------------------------
// servers

async function startOrigin(): Promise<{ port: number; server: Started }> {
  const root = join(work, "root");
  mkdirSync(join(root, BUCKET), { recursive: true });
  writeFileSync(join(root, BUCKET, "obj-1k"), Buffer.alloc(KiB, 0x61));
  writeFileSync(join(root, BUCKET, "obj-1m"), Buffer.alloc(MiB, 0x62));
  await Bun.$`head -c ${GiB} /dev/zero > ${join(root, BUCKET, "obj-1g")}`;
  const port = await freePort();
  const dir = join(work, "origin");
  const server = await startNginx("origin", dir, staticOriginConf(dir, port, root, BUCKET, 1), port);
  return { port, server };
}

/** An osp.toml: the client's key, and the bucket on the origin. */
function ospConfig(id: string, port: number, origin: number, workers = 1, serverToml = ""): string {
  const config = join(work, `${id}.toml`);
  writeFileSync(config, `[server]\nhttp_port = ${port}\nbind = "127.0.0.1"\nworkers = ${workers}\n${serverToml}\n` +
    `[[keys]]\naccess_key = "${CREDS.accessKey}"\nsecret_key = "${CREDS.secretKey}"\n` +
    `[buckets.${BUCKET}]\nendpoint = "http://127.0.0.1:${origin}"\naddressing_style = "path"\naccess_key = "origin"\nsecret_key = "origin-secret"\n`);
  return config;
}

async function startOspTarget(workers: number, origin: number, checkout = REPO, id = `osp-${workers}`, serverToml = opt.server!): Promise<Target> {
  const port = await freePort();
  const config = ospConfig(id, port, origin, workers, serverToml);
  const server = spawnDetached(id, [process.execPath, "run", join(checkout, "osp.ts"), "--config", config], { logDir: work });
  await waitHttp(`http://127.0.0.1:${port}/`, 30_000, server.proc);
  await sleep(500 * workers); // every worker listening
  return { id, base: `http://127.0.0.1:${port}`, server, verifies: true };
}

async function startRefTarget(threads: number, origin: number): Promise<Target | undefined> {
  const python = process.env.PYTHON ?? "python3";
  if (Bun.spawnSync([python, "-c", "import object_storage_proxy"]).exitCode !== 0) {
    log("object-storage-proxy is not installed (bash bench/install.sh): ref targets left out");
    return undefined;
  }
  const port = await freePort();
  const cfg = join(work, `ref-${threads}.json`);
  writeFileSync(cfg, JSON.stringify({
    http_port: port, threads,
    buckets: { [BUCKET]: { host: "127.0.0.1", port: origin, region: "us-east-1", access_key: "origin", secret_key: "origin-secret", ttl: 300 } },
    keys: [{ access_key: CREDS.accessKey, secret_key: CREDS.secretKey }],
  }));
  const server = spawnDetached(`ref-${threads}`, [python, join(import.meta.dir, "refproxy.py"), cfg], { logDir: work });
  await waitHttp(`http://127.0.0.1:${port}/`, 30_000, server.proc);
  return { id: `ref-${threads}`, base: `http://127.0.0.1:${port}`, server, verifies: true };
}

async function startBare(mode: string, origin: number): Promise<Target> {
  const port = await freePort();
  // osp-sigv4 verifies the client's signature with osp's keys
  const verifies = mode === "osp-sigv4";
  const server = spawnDetached(mode, [process.execPath, join(import.meta.dir, "lib", "passthrough.ts"), mode, String(port), `http://127.0.0.1:${origin}`, ospConfig(mode, port, origin)], { logDir: work });
  await waitHttp(`http://127.0.0.1:${port}/`, 15_000, server.proc);
  return { id: mode, base: `http://127.0.0.1:${port}`, server, verifies };
}

async function startNginxTarget(origin: number): Promise<Target> {
  const port = await freePort();
  const dir = join(work, "proxy");
  const server = await startNginx("proxy", dir, reverseProxyConf(dir, port, origin, 1), port);
  return { id: "nginx", base: `http://127.0.0.1:${port}`, server, verifies: false };
}

// ---------------------------------------------------------------------------------------------
// load

interface Run {
  requests: number;
  seconds: number;
  p50ms: number;
  errors: number;
}

/**
 * One run with fixed headers: wrk (a 1 MiB PUT body through a Lua script), or for HEAD autocannon,
 * since wrk waits for the body a HEAD answer announces.
 */
async function wrk(url: string, headers: Record<string, string>, connections: number, method = "GET"): Promise<Run> {
  if (method === "HEAD") {
    const r = await autocannon({ url, connections, duration: DURATION, method, headers });
    return { requests: r.requests.total, seconds: r.duration, p50ms: r.latency.p50, errors: r.errors + r.non2xx + r.timeouts };
  }
  const script = join(work, `wrk-${method}.lua`);
  const body = method === "PUT" ? `wrk.body = string.rep("c", ${MiB})\n` : "";
  writeFileSync(script, `wrk.method = "${method}"\n${body}`);
  const h = Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const out = await Bun.$`wrk -t1 -c${connections} -d${DURATION}s --latency -s ${script} ${h} ${url}`.nothrow().text();
  const requests = Number(/(\d+) requests in ([\d.]+)s/.exec(out)?.[1] ?? 0);
  const seconds = Number(/requests in ([\d.]+)s/.exec(out)?.[1] ?? DURATION);
  const p50 = /50%\s+([\d.]+)(us|ms|s)/.exec(out);
  const p50ms = p50 ? Number(p50[1]) * ({ us: 0.001, ms: 1, s: 1000 }[p50[2] as "us"]) : NaN;
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?timeout (\d+)/.exec(out)?.[1] ?? 0);
  return { requests, seconds, p50ms, errors };
}

async function signed(t: Target, method: string, key: string, payloadHash = "UNSIGNED-PAYLOAD"): Promise<Record<string, string>> {
  return t.verifies ? signHeaders(method, `${t.base}/${BUCKET}/${key}`, CREDS, payloadHash) : {};
}

/** CPU µs per request of one target for one wrk workload. */
async function cpuPerRequest(t: Target, method: string, key: string, connections: number, range?: string): Promise<{ us: number; rps: number; p50ms: number; errors: number }> {
  const headers = { ...(await signed(t, method, key)), ...(range ? { range } : {}) };
  const before = cpuSeconds(t.server.pid);
  const r = await wrk(`${t.base}/${BUCKET}/${key}`, headers, connections, method);
  const cpu = cpuSeconds(t.server.pid) - before;
  return { us: r.requests ? (cpu / r.requests) * 1e6 : NaN, rps: r.requests / r.seconds, p50ms: r.p50ms, errors: r.errors };
}

/** CPU seconds per GB of one 1 GiB GET or PUT through curl. */
/** CPU seconds per GB of one 1 GiB transfer, and how far the busiest process's RSS rose above its level before. */
async function cpuPerGb(t: Target, method: "GET" | "PUT", origin: string): Promise<{ sPerGb: number; overIdleMiB: number }> {
  const key = method === "GET" ? "obj-1g" : "put-1g";
  const headers = Object.entries(await signed(t, method, key)).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const upload = method === "PUT" ? ["-T", join(origin, BUCKET, "obj-1g"), "-H", "Expect:"] : [];
  const idle = Math.max(...processTree(t.server.pid).map(rssOf));
  resetPeakRss(t.server.pid);
  const before = cpuSeconds(t.server.pid);
  const code = await Bun.$`curl -s -o /dev/null -w %{http_code} --max-time 120 -X ${method} ${headers} ${upload} ${t.base}/${BUCKET}/${key}`.nothrow().text();
  const cpu = cpuSeconds(t.server.pid) - before;
  if (code !== "200") log(`${t.id} ${method} 1 GiB answered ${code}`);
  return { sPerGb: cpu / (GiB / 1e9), overIdleMiB: ((peakRssPerProcess(t.server.pid)[0] ?? 0) - idle) / MiB };
}

/** Peak RSS of the busiest process under 64 concurrent 1 MiB GETs, and its RSS 5 s later. */
async function memory(t: Target, slow: boolean, range?: string): Promise<{ peakMiB: number; idleMiB: number; afterMiB: number }> {
  const busiest = () => processTree(t.server.pid).sort((a, b) => rssOf(b) - rssOf(a))[0]!;
  const idle = rssOf(busiest());
  resetPeakRss(t.server.pid);
  const headers = { ...(await signed(t, "GET", "obj-1m")), ...(range ? { range } : {}) };
  if (slow) {
    const h = Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
    const curls = Array.from({ length: 64 }, () => Bun.$`curl -s -o /dev/null --limit-rate 1M --max-time 30 ${h} ${t.base}/${BUCKET}/obj-1m`.nothrow().quiet());
    await Promise.all(curls);
  } else {
    await wrk(`${t.base}/${BUCKET}/obj-1m`, headers, 64);
  }
  const peak = peakRssPerProcess(t.server.pid)[0] ?? 0;
  await sleep(5000);
  return { peakMiB: peak / MiB, idleMiB: idle / MiB, afterMiB: rssOf(busiest()) / MiB };
}

/** Whether this Bun's Bun.serve keeps Content-Length on a streamed (proxied) response. */
async function canary(origin: number): Promise<string> {
  const t = await startBare("bun-serve", origin);
  const head = await Bun.$`curl -s -D - -o /dev/null ${t.base}/${BUCKET}/obj-1m`.text();
  await t.server.stop();
  const length = /^content-length:\s*(\d+)/im.exec(head)?.[1];
  return length === String(MiB) ? `kept (content-length: ${length})` : `dropped (${/^transfer-encoding:.*$/im.exec(head)?.[0] ?? "no length"})`;
}

// ---------------------------------------------------------------------------------------------

/** The middle value; of an even number, the mean of the two middle ones (of 2 rounds, their mean). */
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const f = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

async function main(): Promise<void> {
  const started = Date.now();
  const { port: originPort, server: origin } = await startOrigin();
  const targets: Target[] = [];
  try {
    const canaryResult = await canary(originPort);
    log(`Bun ${Bun.version}: Bun.serve ${canaryResult}`);
    const only = opt.only?.split(",");
    const starts: [string, () => Promise<Target | undefined>][] = [
      ["osp-1", () => startOspTarget(1, originPort)], ["ref-1", () => startRefTarget(1, originPort)], ["nginx", () => startNginxTarget(originPort)],
      ...["bun-serve", "hono-node", "node-fetch", "node-pipe", "osp-client", "osp-sigv4"].map((m) => [m, () => startBare(m, originPort)] as [string, () => Promise<Target>]),
      ["osp-2", () => startOspTarget(2, originPort)], ["ref-2", () => startRefTarget(2, originPort)],
    ];
    // --baseline DIR: osp from another checkout, side by side with this one
    if (opt.baseline) starts.splice(1, 0, ["base-1", () => startOspTarget(1, originPort, resolve(opt.baseline!), "base-1", opt["baseline-server"])]);
    for (const [id, start] of starts) {
      if (only && !only.includes(id)) continue;
      const t = await start();
      if (t) targets.push(t);
    }
    const single = targets.filter((t) => !t.id.endsWith("-2"));
    // servers are measured warm: a JIT compiles in their first seconds, which would count against
    // whichever workload comes first
    for (const t of targets) for (const [method, key] of [["GET", "obj-1k"], ["PUT", "put-1m"]]) await cpuPerRequest(t, method!, key!, 16);

    const cells = new Map<string, number[]>();
    const add = (k: string, v: number) => cells.set(k, [...(cells.get(k) ?? []), v]);
    // rng*: ranged GETs, as readers of columnar files send them (an open-ended range, as Hadoop's s3a reads on)
    const workloads: [string, string, string, number, string?][] = [
      ["get1k", "GET", "obj-1k", 16], ["head", "HEAD", "obj-1k", 16], ["get1m", "GET", "obj-1m", 16], ["put1m", "PUT", "put-1m", 16], ["lat1k", "GET", "obj-1k", 1],
      ["rng256k", "GET", "obj-1m", 16, "bytes=0-262143"], ["rng1m", "GET", "obj-1m", 16, "bytes=0-"],
    ].filter(([id]) => (opt.workloads ? opt.workloads.split(",").includes(id as string) : !String(id).startsWith("rng") && (!opt.quick || id !== "head"))) as [string, string, string, number, string?][];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [id, method, key, c, range] of workloads) {
        const order = round % 2 ? [...single].reverse() : single;
        for (const t of order) {
          const r = await cpuPerRequest(t, method, key, c, range);
          if (r.errors) log(`${t.id} ${id}: ${r.errors} failed requests`);
          add(`${t.id}/${id}/us`, r.us);
          add(`${t.id}/${id}/rps`, r.rps);
          add(`${t.id}/${id}/p50`, r.p50ms);
        }
      }
      if (opt.quick) continue;
      for (const t of targets.filter((x) => x.id.startsWith("osp") || x.id.startsWith("ref"))) {
        for (const [id, method, key] of [["get1k", "GET", "obj-1k"], ["head", "HEAD", "obj-1k"]] as const) {
          add(`${t.id}/${id}/rps64`, (await cpuPerRequest(t, method, key, 64)).rps);
        }
      }
      for (const t of single) {
        for (const method of ["GET", "PUT"] as const) {
          const r = await cpuPerGb(t, method, join(work, "root"));
          add(`${t.id}/${method.toLowerCase()}1g`, r.sPerGb);
          add(`${t.id}/${method.toLowerCase()}1g/rss`, r.overIdleMiB);
        }
      }
    }
    const mem = new Map<string, { fast: Awaited<ReturnType<typeof memory>>; slow: Awaited<ReturnType<typeof memory>>; ranged?: Awaited<ReturnType<typeof memory>> }>();
    const ranged = workloads.some(([id]) => id === "rng1m");
    for (const t of opt.quick ? [] : single) {
      mem.set(t.id, { fast: await memory(t, false), slow: await memory(t, true), ranged: ranged ? await memory(t, false, "bytes=0-") : undefined });
    }

    const m = (k: string) => median(cells.get(k) ?? []);
    const ratio = (id: string, k: string) => m(`${id}/${k}`) / m(`ref-1/${k}`);
    const lines: string[] = [];
    lines.push(`# osp's cost, side by side (${new Date().toISOString().slice(0, 10)})`, "");
    lines.push(`Bun ${Bun.version}, ${ROUNDS} interleaved rounds of ${DURATION} s per cell, wrk -t1, static nginx origin, ` +
      `one fixed SigV4 signature; CPU = user+system of the server's process tree per request or per GB. ` +
      `Took ${Math.round((Date.now() - started) / 1000)} s. Bun.serve and Content-Length on a streamed response: **${canaryResult}**.`, "");
    lines.push("| server | 1 KiB GET µs/req | HEAD µs/req | 1 MiB GET µs/req | 1 MiB PUT µs/req | 1 GiB GET CPU s/GB | 1 GiB PUT CPU s/GB | p50 at c=1 (ms) | peak RSS 64×1 MiB fast / slow (MiB) | RSS idle → after | RSS over idle, 1 GiB GET / PUT (MiB) |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    const direct = median(await Promise.all([0, 1].map(async () => (await wrk(`http://127.0.0.1:${originPort}/${BUCKET}/obj-1k`, {}, 1)).p50ms)));
    for (const t of single) {
      const none = { peakMiB: NaN, idleMiB: NaN, afterMiB: NaN };
      const mm = mem.get(t.id) ?? { fast: none, slow: none };
      lines.push(`| ${t.id} | ${f(m(`${t.id}/get1k/us`))} | ${f(m(`${t.id}/head/us`))} | ${f(m(`${t.id}/get1m/us`))} | ${f(m(`${t.id}/put1m/us`))} | ` +
        `${f(m(`${t.id}/get1g`), 2)} | ${f(m(`${t.id}/put1g`), 2)} | ${f(m(`${t.id}/lat1k/p50`), 2)} | ${f(mm.fast.peakMiB)} / ${f(mm.slow.peakMiB)} | ${f(mm.fast.idleMiB)} → ${f(mm.fast.afterMiB)} | ${f(m(`${t.id}/get1g/rss`))} / ${f(m(`${t.id}/put1g/rss`))} |`);
    }
    lines.push("", `p50 at c=1 is the whole round trip through each server; straight to the origin it is ${f(direct, 2)} ms.`, "");
    lines.push("Against the reference proxy (osp ÷ object-storage-proxy; CPU: lower is better, req/s: higher is better):", "");
    lines.push("| measure | 1 worker ÷ 1 thread | target |", "| --- | ---: | --- |");
    for (const [label, k, target] of [
      ["1 KiB GET CPU per request", "get1k/us", "≤ 1.5"], ["HEAD CPU per request", "head/us", "≤ 1.5"],
      ["1 MiB GET CPU per byte", "get1m/us", "≤ 1.2"], ["1 MiB PUT CPU per byte", "put1m/us", "≤ 1.2"],
      ["1 GiB GET CPU per byte", "get1g", "≤ 1.2"], ["1 GiB PUT CPU per byte", "put1g", "≤ 1.2"],
    ] as const) lines.push(`| ${label} | ${f(ratio("osp-1", k), 2)} | ${target} |`);
    lines.push("", "| req/s, 64 connections | osp-1 ÷ ref-1 | osp-2 ÷ ref-2 | target (2 ÷ 2) |", "| --- | ---: | ---: | --- |");
    for (const id of ["get1k", "head"]) {
      lines.push(`| ${id === "get1k" ? "1 KiB GET" : "HEAD"} | ${f(m(`osp-1/${id}/rps64`) / m(`ref-1/${id}/rps64`), 2)} | ${f(m(`osp-2/${id}/rps64`) / m(`ref-2/${id}/rps64`), 2)} | ≥ 0.9 |`);
    }
    lines.push("", `Latency: osp adds ${f(m("osp-1/lat1k/p50") - direct, 2)} ms p50 to a 1 KiB GET at c=1 over direct access (target ≤ 0.3 ms).`);
    if (workloads.some(([id]) => id.startsWith("rng"))) {
      lines.push("", "Ranged GETs of a 1 MiB object: CPU µs per request, and peak RSS under 64 concurrent fast readers of bytes=0-:", "",
        "| server | bytes=0-262143 µs/req | bytes=0- µs/req | peak RSS, 64 × bytes=0- (MiB) |", "| --- | ---: | ---: | ---: |");
      for (const t of single) lines.push(`| ${t.id} | ${f(m(`${t.id}/rng256k/us`))} | ${f(m(`${t.id}/rng1m/us`))} | ${f(mem.get(t.id)?.ranged?.peakMiB ?? NaN)} |`);
    }
    const text = lines.join("\n") + "\n";
    console.log(text);
    if (opt.out) writeFileSync(opt.out, text);
  } finally {
    for (const t of targets) await t.server.stop();
    await origin.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
