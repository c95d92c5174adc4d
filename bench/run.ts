/**
 * The benchmark suite: osp (1 and 2 workers) against direct access, a plain nginx reverse proxy and
 * object-storage-proxy (1 and 2 threads), over two backends (a static nginx origin and MinIO).
 *
 *   bash bench/install.sh        # once: k6, nginx, object-storage-proxy, autocannon
 *   bun bench/run.ts             # full run, ~25 min; writes bench/results/<date>.{md,svg,json}
 *   bun bench/run.ts --quick     # a smoke run (short cells, one round, no 1 GiB)
 *
 * Options: --duration S (seconds per k6/autocannon run, default 3) --rounds N (interleaved
 * rounds, default 2) --gib-rounds N (default 2) --backends static,minio --workloads a,b,…
 * --no-autocannon --no-gib --out DIR --tag NAME (results file name suffix).
 *
 * Everything listens on 127.0.0.1 and is stopped at the end (also on Ctrl-C / errors).
 */
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startMinio, type MinioServer } from "../test/harness/minio.ts";
import { startOsp, type OspInstance } from "../test/harness/osp.ts";
import { freePort, runAllCleanupsSync, sleep } from "../test/harness/proc.ts";
import { autocannon, cpuSeconds, hwmOf, processTree, resetPeakRss, rssOf, spawnDetached, waitHttp } from "./lib/proc.ts";
import { reverseProxyConf, startNginx, staticOriginConf, nginxBinary } from "./lib/nginx.ts";
import { s3, s3ok, signHeaders, EMPTY_SHA256, type Creds } from "./lib/s3.ts";
import { writeReport, type RunData, type Sample } from "./lib/report.ts";

const BENCH = import.meta.dir;
const REPO = resolve(BENCH, "..");
const KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
const BUCKET = "bench";
const FRONTEND: Creds = { accessKey: "BENCHFRONTENDKEY", secretKey: "bench-frontend-secret-not-a-real-one" };

// ---------------------------------------------------------------------------------------------
// options

const { values: opt } = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: { type: "string" },
    rounds: { type: "string" },
    "gib-rounds": { type: "string" },
    backends: { type: "string", default: "static,minio" },
    workloads: { type: "string" },
    targets: { type: "string" },
    concurrency: { type: "string", default: "1,16,64" },
    "no-autocannon": { type: "boolean", default: false },
    "no-gib": { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    out: { type: "string", default: join(BENCH, "results") },
    tag: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opt.help) {
  console.log((await Bun.file(import.meta.path).text()).split("*/")[0]);
  process.exit(0);
}
const DURATION = Number(opt.duration ?? (opt.quick ? 2 : 3));
const ROUNDS = Number(opt.rounds ?? (opt.quick ? 1 : 2));
const GIB_ROUNDS = Number(opt["gib-rounds"] ?? (opt.quick ? 1 : 2));
const CONCURRENCY = opt.concurrency!.split(",").map(Number);
const DO_GIB = !opt["no-gib"] && !opt.quick;
const DO_AC = !opt["no-autocannon"];

interface Workload {
  id: string;
  label: string;
  tool: "k6" | "autocannon" | "curl";
  op: "get" | "head" | "put" | "list";
  key?: string;
  size?: number;
  /** bytes of payload each request moves (for the report's notes) */
  payload: number;
}

const WORKLOADS: Workload[] = [
  { id: "get1k", label: "GET 1 KiB", tool: "k6", op: "get", key: "obj-1k", payload: KiB },
  { id: "get1m", label: "GET 1 MiB", tool: "k6", op: "get", key: "obj-1m", payload: MiB },
  { id: "put1m", label: "PUT 1 MiB", tool: "k6", op: "put", key: "put-1m", size: MiB, payload: MiB },
  { id: "head", label: "HEAD", tool: "k6", op: "head", key: "obj-1k", payload: 0 },
  { id: "list", label: "ListObjectsV2, 1,000 keys", tool: "k6", op: "list", payload: 0 },
  { id: "ac-get1k", label: "GET 1 KiB, fixed signature (autocannon)", tool: "autocannon", op: "get", key: "obj-1k", payload: KiB },
  { id: "ac-head", label: "HEAD, fixed signature (autocannon)", tool: "autocannon", op: "head", key: "obj-1k", payload: 0 },
  { id: "get1g", label: "GET 1 GiB", tool: "curl", op: "get", key: "obj-1g", payload: GiB },
  { id: "put1g", label: "PUT 1 GiB", tool: "curl", op: "put", key: "put-1g", size: GiB, payload: GiB },
];
const selectedWorkloads = WORKLOADS.filter(
  (w) =>
    (!opt.workloads || opt.workloads.split(",").includes(w.id)) &&
    (w.tool !== "autocannon" || DO_AC) &&
    (w.tool !== "curl" || DO_GIB),
);

// ---------------------------------------------------------------------------------------------
// targets

interface Target {
  id: string;
  label: string;
  base: string;
  creds: Creds;
  /** process trees to account to the target (none for direct) */
  pids: number[];
  /** worker count (for the per-worker RSS figure) */
  workers: number;
  stop(): Promise<void>;
}

interface Backend {
  id: "static" | "minio";
  label: string;
  host: string;
  port: number;
  creds: Creds;
  pid: number;
  stop(): Promise<void>;
}

const work = mkdtempSync(join(tmpdir(), "osp-bench-"));
const logDir = join(work, "logs");
mkdirSync(logDir, { recursive: true });
const stoppers: (() => Promise<void>)[] = [];
let interrupted = false;
process.on("SIGINT", () => {
  interrupted = true;
  console.error("\ninterrupted: stopping everything");
  void stopAll().finally(() => process.exit(130));
});
async function stopAll(): Promise<void> {
  while (stoppers.length) await stoppers.pop()!().catch(() => {});
}

const log = (...a: unknown[]) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

function k6Binary(): string {
  for (const c of [process.env.K6_BIN, Bun.which("k6"), join(process.env.HOME ?? "/root", "go", "bin", "k6")]) if (c && existsSync(c)) return c;
  throw new Error("k6 not found; run: bash bench/install.sh");
}

/** Files for the static origin: BUCKET/obj-1k, obj-1m, obj-1g and a captured-style ListObjectsV2 answer. */
function makeStaticRoot(root: string, withGib: boolean): void {
  const dir = join(root, BUCKET);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "obj-1k"), Buffer.alloc(KiB, 0x61));
  writeFileSync(join(dir, "obj-1m"), Buffer.alloc(MiB, 0x62));
  if (withGib) {
    const fd = openSync(join(dir, "obj-1g"), "w");
    const chunk = Buffer.alloc(8 * MiB, 0x63);
    for (let i = 0; i < GiB / chunk.length; i++) writeSync(fd, chunk);
    closeSync(fd);
  }
  const now = new Date().toISOString();
  const items = Array.from({ length: 1000 }, (_, i) => {
    const key = `list/${String(i).padStart(5, "0")}`;
    return `<Contents><Key>${key}</Key><LastModified>${now}</LastModified><ETag>&#34;0f343b0931126a20f133d67c2b018a3b&#34;</ETag><Size>1024</Size><StorageClass>STANDARD</StorageClass></Contents>`;
  });
  writeFileSync(
    join(root, `${BUCKET}.list.xml`),
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${BUCKET}</Name><Prefix>list/</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${items.join("")}</ListBucketResult>`,
  );
}

async function startStatic(root: string): Promise<Backend> {
  const port = await freePort();
  // PUT bodies over 2 MiB spill to a temp file: keep it on tmpfs so that the origin stays cheap
  const bodyTemp = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/osp-bench-body-") : join(work, "client_body");
  stoppers.push(async () => rmSync(bodyTemp, { recursive: true, force: true }));
  const s = await startNginx("static-origin", join(work, "nginx-static"), staticOriginConf(join(work, "nginx-static"), port, root, BUCKET, 1, bodyTemp), port, logDir);
  stoppers.push(s.stop);
  // the static origin ignores signatures; any keys do
  return { id: "static", label: "static origin (nginx, files)", host: "127.0.0.1", port, creds: { accessKey: "STATICKEY", secretKey: "static-secret" }, pid: s.pid, stop: s.stop };
}

async function startMinioBackend(root: string): Promise<Backend> {
  const m: MinioServer = await startMinio("bench");
  stoppers.push(m.stop);
  const creds = { accessKey: m.accessKey, secretKey: m.secretKey };
  const base = m.endpoint;
  await s3ok("PUT", `${base}/${BUCKET}`, creds);
  await s3ok("PUT", `${base}/${BUCKET}/obj-1k`, creds, Bun.file(join(root, BUCKET, "obj-1k")));
  await s3ok("PUT", `${base}/${BUCKET}/obj-1m`, creds, Bun.file(join(root, BUCKET, "obj-1m")));
  if (existsSync(join(root, BUCKET, "obj-1g"))) await s3ok("PUT", `${base}/${BUCKET}/obj-1g`, creds, Bun.file(join(root, BUCKET, "obj-1g")));
  const small = new Uint8Array(KiB).fill(0x6c);
  const keys = Array.from({ length: 1000 }, (_, i) => `list/${String(i).padStart(5, "0")}`);
  for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => s3ok("PUT", `${base}/${BUCKET}/${k}`, creds, small)));
  return { id: "minio", label: "MinIO (single drive, /tmp)", host: "127.0.0.1", port: m.port, creds, pid: m.proc.pid, stop: m.stop };
}

/** Start one target in front of `be` (undefined when it cannot start; the reason is logged). */
async function startTarget(be: Backend, id: string): Promise<Target | undefined> {
  const backendUrl = `http://${be.host}:${be.port}`;
  if (id === "direct") return { id: "direct", label: "direct", base: backendUrl, creds: be.creds, pids: [], workers: 0, stop: async () => {} };

  if (id === "nginx") {
    const port = await freePort();
    const dir = join(work, `nginx-proxy-${be.id}-${port}`);
    const s = await startNginx(`nginx-proxy-${be.id}`, dir, reverseProxyConf(dir, port, be.port, 1), port, logDir);
    stoppers.push(s.stop);
    aliveChecks.set(s.pid, () => (s.proc.exitCode === null && s.proc.signalCode === null ? undefined : `nginx exited (${s.proc.exitCode ?? s.proc.signalCode})`));
    // no signing: the client signs for the backend's keys and nginx passes Host through
    return { id: "nginx", label: "nginx proxy (1 worker)", base: `http://127.0.0.1:${port}`, creds: be.creds, pids: [s.pid], workers: 1, stop: s.stop };
  }

  const osp = /^osp-(\d)$/.exec(id);
  if (osp) {
    const w = Number(osp[1]);
    const port = await freePort();
    const toml = `[server]
http_port = ${port}
bind = "127.0.0.1"
workers = ${w}
access_log = false

[[keys]]
access_key = "${FRONTEND.accessKey}"
secret_key = "${FRONTEND.secretKey}"

[buckets.${BUCKET}]
endpoint = "${backendUrl}"
region = "us-east-1"
addressing_style = "path"
access_key = "${be.creds.accessKey}"
secret_key = "${be.creds.secretKey}"
ttl = 300
`;
    let o: OspInstance;
    try {
      o = await startOsp({ configToml: toml, name: `osp-${w}-${be.id}` });
    } catch (e) {
      log(`osp (${w} workers) did not start: ${(e as Error).message.slice(0, 2000)}`);
      return undefined;
    }
    const stop = async () => {
      await o.stop();
      writeFileSync(join(logDir, `osp-${w}-${be.id}-${port}.log`), o.output());
    };
    aliveChecks.set(o.proc.pid, () => (o.proc.exitCode === null && o.proc.signalCode === null ? undefined : `osp exited (${o.proc.exitCode ?? o.proc.signalCode}): ${o.output().slice(-1500)}`));
    stoppers.push(stop);
    return { id, label: `osp, ${w} worker${w > 1 ? "s" : ""}`, base: o.endpoint, creds: FRONTEND, pids: [o.proc.pid], workers: w, stop };
  }

  const ref = /^ref-(\d)$/.exec(id);
  if (ref) {
    const t = Number(ref[1]);
    const port = await freePort();
    const cfgPath = join(work, `ref-${t}-${be.id}-${port}.json`);
    writeFileSync(
      cfgPath,
      JSON.stringify({
        http_port: port,
        threads: t,
        buckets: { [BUCKET]: { host: be.host, port: be.port, region: "us-east-1", access_key: be.creds.accessKey, secret_key: be.creds.secretKey, ttl: 300 } },
        keys: [{ access_key: FRONTEND.accessKey, secret_key: FRONTEND.secretKey }],
      }),
    );
    const s = spawnDetached(`ref-${t}-${be.id}`, [process.env.PYTHON ?? "python3", join(BENCH, "refproxy.py"), cfgPath], { logDir });
    stoppers.push(s.stop);
    aliveChecks.set(s.pid, () => (s.proc.exitCode === null && s.proc.signalCode === null ? undefined : `object-storage-proxy exited (${s.proc.exitCode ?? s.proc.signalCode})`));
    try {
      await waitHttp(`http://127.0.0.1:${port}/`, 20_000, s.proc);
    } catch (e) {
      const out = s.logPath && existsSync(s.logPath) ? require("node:fs").readFileSync(s.logPath, "utf8").slice(-1500) : "";
      log(`object-storage-proxy (${t} threads) did not start: ${(e as Error).message}\n${out}`);
      await s.stop();
      return undefined;
    }
    return { id, label: `object-storage-proxy, ${t} thread${t > 1 ? "s" : ""}`, base: `http://127.0.0.1:${port}`, creds: FRONTEND, pids: [s.pid], workers: t, stop: s.stop };
  }
  throw new Error(`unknown target ${id}`);
}

/** A target must serve a signed GET, PUT and ListObjectsV2 (and refuse a bad signature) before it is measured. */
async function probe(be: Backend, t: Target): Promise<void> {
  const body = await s3ok("GET", `${t.base}/${BUCKET}/obj-1k`, t.creds);
  if (body.length !== KiB) throw new Error(`GET obj-1k returned ${body.length} bytes`);
  await s3ok("PUT", `${t.base}/${BUCKET}/probe`, t.creds, new Uint8Array(10));
  const list = await s3ok("GET", `${t.base}/${BUCKET}?list-type=2&max-keys=1000&prefix=list%2F`, t.creds);
  if ((list.match(/<Key>/g) ?? []).length !== 1000) throw new Error(`ListObjectsV2 returned ${(list.match(/<Key>/g) ?? []).length} keys`);
  if ((t.id !== "direct" && t.id !== "nginx") || be.id === "minio") {
    const bad = await s3("GET", `${t.base}/${BUCKET}/obj-1k`, { ...t.creds, secretKey: "wrong" });
    await bad.arrayBuffer();
    if (bad.status < 400) throw new Error(`a wrong signature was accepted (HTTP ${bad.status})`);
  }
}

async function startTargets(be: Backend, ids: string[]): Promise<Target[]> {
  const ok: Target[] = [];
  for (const id of ids) {
    const t = await startTarget(be, id);
    if (!t) {
      failures.push(`${be.id}/${id}: did not start (see the run's log)`);
      continue;
    }
    try {
      await probe(be, t);
      ok.push(t);
    } catch (e) {
      log(`target ${t.id} on ${be.id} fails its probe, left out: ${(e as Error).message}`);
      failures.push(`${be.id}/${t.id}: ${(e as Error).message}`);
      await t.stop();
    }
  }
  return ok;
}

/** A target found dead is started again, up to MAX_RESTARTS times per phase (each restart is reported). */
const MAX_RESTARTS = 5;
async function restartTarget(be: Backend, targets: Target[], t: Target, reason: string): Promise<Target | undefined> {
  failures.push(`${be.id}/${t.id}: found not running at ${new Date().toISOString().slice(11, 19)} and restarted: ${reason.replace(/\s+/g, " ").slice(0, 300)}`);
  await t.stop().catch(() => {});
  const n = await startTarget(be, t.id);
  if (!n) return undefined;
  try {
    await probe(be, n);
  } catch (e) {
    await n.stop();
    return undefined;
  }
  targets[targets.indexOf(t)] = n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// measuring

const CLK = 100;
function systemBusySeconds(): number {
  const f = require("node:fs").readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: only the time charged to processes, since
  // interrupt and softirq time (much of it loopback networking of the benchmark itself) is not
  return (f[0] + f[1] + f[2]) / CLK;
}

const treeCpu = (pids: number[]) => pids.reduce((a, p) => a + cpuSeconds(p), 0);

interface Accounting {
  cpuT0: number;
  cpuB0: number;
  busy0: number;
  t0: number;
  rssBefore: Map<number, number>;
}

const accountedRoots = (t: Target, be: Backend) => (t.pids.length ? t.pids : [be.pid]);

function beginAccounting(t: Target, be: Backend): Accounting {
  const roots = accountedRoots(t, be);
  for (const p of roots) resetPeakRss(p);
  const rssBefore = new Map<number, number>();
  for (const p of roots) for (const q of processTree(p)) rssBefore.set(q, rssOf(q));
  return { cpuT0: treeCpu(t.pids), cpuB0: cpuSeconds(be.pid), busy0: systemBusySeconds(), t0: performance.now(), rssBefore };
}

function endAccounting(a: Accounting, t: Target, be: Backend, loadGenCpu: number) {
  const roots = accountedRoots(t, be);
  const wall = (performance.now() - a.t0) / 1000;
  const cpuProxy = treeCpu(t.pids) - a.cpuT0;
  const cpuBackend = cpuSeconds(be.pid) - a.cpuB0;
  const busy = systemBusySeconds() - a.busy0;
  let peakRss = 0, peakRssMaxProcess = 0, rssGrowthMaxProcess = 0;
  for (const p of roots) {
    for (const q of processTree(p)) {
      const hwm = hwmOf(q);
      peakRss += hwm;
      peakRssMaxProcess = Math.max(peakRssMaxProcess, hwm);
      rssGrowthMaxProcess = Math.max(rssGrowthMaxProcess, hwm - (a.rssBefore.get(q) ?? hwm));
    }
  }
  return {
    cpuProxy,
    cpuBackend,
    // CPU used on this machine by anything but the target, the backend and the load generator
    foreignCores: Math.max(0, busy - cpuProxy - cpuBackend - loadGenCpu) / wall,
    peakRss,
    peakRssMaxProcess,
    rssGrowthMaxProcess,
    wall,
  };
}

const cpuOf = (p: Bun.Subprocess) => {
  const u = p.resourceUsage();
  return u ? Number(u.cpuTime.user + u.cpuTime.system) / 1e6 : 0;
};

async function runK6(t: Target, be: Backend, w: Workload, c: number, round: number): Promise<Sample> {
  const summary = join(work, `k6-${be.id}-${t.id}-${w.id}-${c}-${round}.json`);
  const env: Record<string, string> = {
    BASE: t.base, BUCKET, OP: w.op, KEY: w.key ?? "", SIZE: String(w.size ?? 0),
    ACCESS_KEY: t.creds.accessKey, SECRET_KEY: t.creds.secretKey, REGION: "us-east-1",
    VUS: String(c), DURATION: `${DURATION}s`, SUMMARY: summary,
  };
  const args = [k6Binary(), "run", "-q", "--no-color", "--no-usage-report"];
  for (const [k, v] of Object.entries(env)) args.push("-e", `${k}=${v}`);
  args.push(join(BENCH, "k6", "s3.js"));
  const acc = beginAccounting(t, be);
  const p = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", env: { ...process.env, K6_NO_USAGE_REPORT: "true" } });
  const [, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  const a = endAccounting(acc, t, be, cpuOf(p));
  if (!existsSync(summary)) throw new Error(`k6 failed (exit ${p.exitCode}): ${err.slice(-1500)}`);
  const s = JSON.parse(await Bun.file(summary).text()) as { metrics: Record<string, { values: Record<string, number> }>; state: { testRunDurationMs: number } };
  const m = s.metrics;
  const secs = s.state.testRunDurationMs / 1000;
  const reqs = m.http_reqs?.values.count ?? 0;
  const bytes = (m.data_received?.values.count ?? 0) + (m.data_sent?.values.count ?? 0);
  const failed = Math.round((m.http_req_failed?.values.rate ?? 0) * reqs);
  if (failed > 0) log(`  ${failed} failed requests: ${err.split("\n").filter(Boolean).slice(-2).join(" | ")}`);
  return {
    backend: be.id, target: t.id, workload: w.id, concurrency: c, round, tool: "k6",
    requests: reqs, failed, seconds: secs, bytes,
    reqPerSec: reqs / secs, mbPerSec: bytes / secs / 1e6,
    p50: m.http_req_duration?.values.med ?? NaN, p99: m.http_req_duration?.values["p(99)"] ?? NaN,
    ...a, workers: t.workers,
  };
}

async function runAutocannon(t: Target, be: Backend, w: Workload, c: number, round: number): Promise<Sample> {
  const method = w.op === "head" ? "HEAD" : "GET";
  const url = `${t.base}/${BUCKET}/${w.key}`;
  const headers = await signHeaders(method, url, t.creds, EMPTY_SHA256);
  const acc = beginAccounting(t, be);
  const r = await autocannon({ url, connections: c, duration: DURATION, method, headers });
  const a = endAccounting(acc, t, be, r.clientCpu);
  const reqs = r.requests.total;
  const bytes = r.throughput.total;
  return {
    backend: be.id, target: t.id, workload: w.id, concurrency: c, round, tool: "autocannon",
    requests: reqs, failed: r.errors + r.timeouts + r.non2xx, seconds: r.duration, bytes,
    reqPerSec: reqs / r.duration, mbPerSec: bytes / r.duration / 1e6,
    p50: r.latency.p50, p99: r.latency.p99,
    ...a, workers: t.workers,
  };
}

async function runCurl(t: Target, be: Backend, w: Workload, round: number, root: string): Promise<Sample> {
  const method = w.op === "put" ? "PUT" : "GET";
  const url = `${t.base}/${BUCKET}/${w.key}`;
  const headers = await signHeaders(method, url, t.creds, method === "PUT" ? "UNSIGNED-PAYLOAD" : EMPTY_SHA256);
  const args = ["curl", "-sS", "-o", "/dev/null", "--max-time", "300", "-H", "Expect:", "-w", "%{http_code} %{time_total} %{size_download} %{size_upload}"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  if (method === "PUT") args.push("-H", "content-type: application/octet-stream", "-T", join(root, BUCKET, "obj-1g"));
  args.push(url);
  const acc = beginAccounting(t, be);
  const p = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  const a = endAccounting(acc, t, be, cpuOf(p));
  const [code, total, down, up] = out.trim().split(" ");
  const secs = Number(total);
  const bytes = Number(down) + Number(up);
  const ok = code === "200" && bytes >= GiB;
  if (!ok) log(`  curl ${method} ${t.id}: HTTP ${code}, ${bytes} bytes ${err.trim()}`);
  return {
    backend: be.id, target: t.id, workload: w.id, concurrency: 1, round, tool: "curl",
    requests: 1, failed: ok ? 0 : 1, seconds: secs, bytes,
    reqPerSec: 1 / secs, mbPerSec: bytes / secs / 1e6, p50: secs * 1000, p99: secs * 1000,
    ...a, workers: t.workers,
  };
}

// ---------------------------------------------------------------------------------------------
// main

const failures: string[] = [];
/** pid → a function that says why the process is gone (undefined while it runs) */
const aliveChecks = new Map<number, () => string | undefined>();
function deadReason(t: Target): string | undefined {
  for (const p of t.pids) {
    const r = aliveChecks.get(p)?.();
    if (r) return r;
  }
  return undefined;
}
const samples: Sample[] = [];
const phaseNotes: RunData["phases"] = [];

function versions(): Record<string, string> {
  const sh = (cmd: string[]) => {
    try {
      const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
      return (r.stdout.toString() + r.stderr.toString()).trim().split("\n")[0] ?? "";
    } catch {
      return "(not found)";
    }
  };
  const gitRev = sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]);
  const dirty = sh(["git", "-C", REPO, "status", "--porcelain", "--", "src", "osp.ts"]) ? " + uncommitted changes in src/" : "";
  return {
    osp: `${gitRev}${dirty}`,
    bun: Bun.version,
    "object-storage-proxy": sh([process.env.PYTHON ?? "python3", "-c", "import importlib.metadata as m; print(m.version('object-storage-proxy'))"]),
    python: sh([process.env.PYTHON ?? "python3", "--version"]),
    k6: sh([k6Binary(), "version"]),
    autocannon: sh(["npx", "-y", "autocannon", "--version"]),
    nginx: sh([nginxBinary(), "-v"]),
    minio: `${sh([require("../test/harness/minio.ts").findMinioBinary(), "--version"])} (github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)`,
    curl: sh(["curl", "--version"]),
    kernel: sh(["uname", "-sr"]),
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    memory: `${Math.round(totalmem() / GiB)} GiB`,
  };
}

async function main(): Promise<void> {
  const started = new Date();
  const vers = versions();
  log("versions", vers);
  const root = join(work, "static-root");
  makeStaticRoot(root, DO_GIB);
  const allTargets = ["direct", "nginx", "osp-1", "osp-2", "ref-1", "ref-2"].filter((t) => !opt.targets || opt.targets.split(",").includes(t));

  for (const backendId of opt.backends!.split(",") as Backend["id"][]) {
    if (interrupted) break;
    log(`=== backend ${backendId}`);
    const be = backendId === "minio" ? await startMinioBackend(root) : await startStatic(root);
    const targets = await startTargets(be, allTargets);
    const restarted = new Map<string, number>();
    log(`targets: ${targets.map((t) => t.id).join(", ")}`);
    const load0 = loadavg()[0]!;
    const phaseStart = performance.now();

    // warm-up (discarded): JIT, connection pools, auth caches
    for (const t of targets) await runK6(t, be, WORKLOADS[0]!, 16, 0).catch((e) => log(`warm-up ${t.id}: ${e.message}`));

    for (const w of selectedWorkloads) {
      const concs = w.tool === "curl" ? [1] : w.tool === "autocannon" ? CONCURRENCY.filter((c) => c > 1) : CONCURRENCY;
      for (const c of concs) {
        // at concurrency 1 a second worker or thread cannot help: leave the 2-worker targets out there
        const ts = targets.filter((t) => c > 1 || t.workers <= 1);
        const rounds = w.tool === "curl" ? GIB_ROUNDS : ROUNDS;
        for (let round = 1; round <= rounds && !interrupted; round++) {
          const order = round % 2 === 1 ? ts : [...ts].reverse(); // A B …, then … B A
          for (let t of order) {
            const dead = deadReason(t);
            if (dead) {
              log(`  ${t.id} is gone: ${dead}`);
              const n = (restarted.get(t.id) ?? 0) >= MAX_RESTARTS ? undefined : await restartTarget(be, targets, t, dead);
              restarted.set(t.id, (restarted.get(t.id) ?? 0) + 1);
              if (!n) {
                failures.push(`${be.id}/${t.id}/${w.id}/c${c}: target not running`);
                continue;
              }
              for (const arr of [order, ts]) if (arr.includes(t)) arr[arr.indexOf(t)] = n;
              t = n;
            }
            const measure = () => (w.tool === "k6" ? runK6(t, be, w, c, round) : w.tool === "autocannon" ? runAutocannon(t, be, w, c, round) : runCurl(t, be, w, round, root));
            let s: Sample | undefined;
            for (let attempt = 1; attempt <= 2 && !s; attempt++) {
              let r: Sample | undefined;
              try {
                r = await measure();
              } catch (e) {
                log(`  ${w.id} c=${c} ${t.id}: ${(e as Error).message}`);
                failures.push(`${be.id}/${t.id}/${w.id}/c${c}/r${round}: ${(e as Error).message.slice(0, 300)}`);
              }
              if (r) {
                log(`  ${be.id} ${w.id.padEnd(8)} c=${String(c).padStart(2)} r${round} ${t.id.padEnd(6)} ${r.reqPerSec.toFixed(0).padStart(6)} req/s ${r.mbPerSec.toFixed(1).padStart(7)} MB/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms cpu ${r.cpuProxy.toFixed(2)}+${r.cpuBackend.toFixed(2)} s rss ${(r.peakRss / MiB).toFixed(0)} MiB foreign ${r.foreignCores.toFixed(2)}${r.failed ? ` FAILED ${r.failed}` : ""}`);
                // errors at the very end of an autocannon run (requests cut off by the deadline) are not failures
                const bad = r.failed > Math.max(r.tool === "autocannon" ? c : 0, r.requests * 0.01);
                if (!bad) s = r;
                else failures.push(`${be.id}/${t.id}/${w.id}/c${c}/r${round}: ${r.failed} of ${r.requests} requests failed; run ${attempt === 1 ? "repeated" : "dropped"}`);
              }
              const dead = deadReason(t);
              if (!s && dead && (restarted.get(t.id) ?? 0) < MAX_RESTARTS) {
                restarted.set(t.id, (restarted.get(t.id) ?? 0) + 1);
                const n = await restartTarget(be, targets, t, dead);
                if (!n) break;
                for (const arr of [order, ts]) if (arr.includes(t)) arr[arr.indexOf(t)] = n;
                t = n;
              }
            }
            if (s) samples.push(s);
          }
        }
      }
    }
    phaseNotes.push({ backend: be.id, label: be.label, seconds: (performance.now() - phaseStart) / 1000, loadStart: load0, loadEnd: loadavg()[0]!, targets: targets.map((t) => ({ id: t.id, label: t.label })) });
    for (const t of targets) await t.stop();
    await be.stop();
  }

  const data: RunData = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    options: { duration: DURATION, rounds: ROUNDS, gibRounds: GIB_ROUNDS, concurrency: CONCURRENCY, quick: !!opt.quick, workloads: selectedWorkloads.map((w) => w.id) },
    versions: vers,
    workloads: Object.fromEntries(WORKLOADS.map((w) => [w.id, w.label])),
    phases: phaseNotes,
    samples,
    failures,
  };
  mkdirSync(opt.out!, { recursive: true });
  const name = started.toISOString().slice(0, 10) + (opt.tag ? `-${opt.tag}` : opt.quick ? "-quick" : "");
  const files = writeReport(data, opt.out!, name);
  log(`wrote ${files.join(", ")}`);
}

try {
  await main();
} finally {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
  runAllCleanupsSync();
}
