/**
 * Where does osp's time go? Two measurements of the hot path:
 *
 *   bun bench/profile.ts [--duration 10] [--connections 16] [--workload get1k|put1m|head] [--access-log] [--out FILE.md]
 *
 * 1. A CPU profile under load: osp (1 worker) in front of the static nginx origin, run as
 *    `bun --cpu-prof osp.ts`, driven by k6 (every request signed) for --duration seconds; the
 *    profile is then folded into self time per module (osp's src/ files, hono, @hono/node-server,
 *    aws4fetch, prom-client, Bun's own node:http / fetch / crypto internals) and the inclusive
 *    time of the pipeline's steps.
 * 2. Micro-benchmarks of the steps alone, in this process: parse the request, verify its SigV4
 *    signature (authenticate), re-sign it for the backend (resign), N iterations each.
 *
 * Prints markdown (and writes it to --out).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { freePort, sleep } from "../test/harness/proc.ts";
import { spawnDetached, waitHttp, cpuSeconds } from "./lib/proc.ts";
import { startNginx, staticOriginConf } from "./lib/nginx.ts";
import { signHeaders, EMPTY_SHA256 } from "./lib/s3.ts";

const REPO = resolve(import.meta.dir, "..");
const { values: opt } = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "16" },
    workload: { type: "string", default: "get1k" },
    "access-log": { type: "boolean", default: false },
    iterations: { type: "string", default: "20000" },
    out: { type: "string" },
  },
});

const FRONT = { accessKey: "PROFILEKEY", secretKey: "profile-secret" };
const work = mkdtempSync(join(tmpdir(), "osp-profile-"));
const log = (...a: unknown[]) => console.error("[profile]", ...a);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

function moduleOf(url: string, fn: string): string {
  if (!url) return fn === "(garbage collector)" ? "GC" : fn === "(idle)" || fn === "(program)" ? fn : "native / Bun internals";
  const rel = url.startsWith(REPO) ? url.slice(REPO.length + 1) : url;
  const nm = rel.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = rel.slice(nm + 13).split("/");
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (rel.startsWith("src/") || rel === "osp.ts") return rel;
  if (/^(node|bun):/.test(rel) || rel.startsWith("builtin:") || !rel.includes("/")) return `Bun builtin ${rel.split("/")[0]}`;
  return rel;
}

function analyse(profilePath: string) {
  const p = JSON.parse(require("node:fs").readFileSync(profilePath, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // self time from samples × deltas (more exact than hitCount × interval)
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0));
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  const busyUs = totalUs - [...idleIds].reduce((a, id) => a + (self.get(id) ?? 0), 0);

  const perModule = new Map<string, number>();
  const perFunction = new Map<string, number>();
  for (const n of p.nodes) {
    const us = self.get(n.id) ?? 0;
    if (!us || idleIds.has(n.id)) continue;
    const m = moduleOf(n.callFrame.url, n.callFrame.functionName);
    perModule.set(m, (perModule.get(m) ?? 0) + us);
    const f = `${n.callFrame.functionName || "(anonymous)"} — ${m}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ""}`;
    perFunction.set(f, (perFunction.get(f) ?? 0) + us);
  }

  // inclusive time of named steps (outermost occurrence only)
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const subtree = new Map<number, number>();
  const total = (id: number): number => {
    if (subtree.has(id)) return subtree.get(id)!;
    const n = byId.get(id)!;
    const t = (self.get(id) ?? 0) + (n.children ?? []).reduce((a, c) => a + total(c), 0);
    subtree.set(id, t);
    return t;
  };
  const steps: [string, (n: ProfileNode) => boolean][] = [
    ["parseRequest (src/pipeline/request.ts)", (n) => n.callFrame.functionName === "parseRequest"],
    ["authenticate: verify the client's SigV4 (src/pipeline/authenticate.ts)", (n) => n.callFrame.functionName === "authenticate" && n.callFrame.url.endsWith("src/pipeline/authenticate.ts")],
    ["resign: sign for the backend (src/pipeline/resign.ts, aws4fetch)", (n) => n.callFrame.functionName === "resign" && n.callFrame.url.endsWith("src/pipeline/resign.ts")],
    ["forward: osp's HTTP/1.1 client to the backend (src/pipeline/forward.ts, src/http1/)", (n) => n.callFrame.functionName === "forward" && n.callFrame.url.endsWith("src/pipeline/forward.ts")],
    ["respond (src/pipeline/respond.ts)", (n) => n.callFrame.functionName === "respond" && n.callFrame.url.endsWith("src/pipeline/respond.ts")],
    ["logAccess (src/server/log.ts)", (n) => n.callFrame.functionName === "logAccess"],
    ["proxy(): whole pipeline (src/pipeline/proxy.ts)", (n) => n.callFrame.functionName === "proxy" && n.callFrame.url.endsWith("src/pipeline/proxy.ts")],
  ];
  const stepTimes = steps.map(([name, match]) => {
    let us = 0;
    for (const n of p.nodes) {
      if (!match(n)) continue;
      // skip if an ancestor also matches (count outermost only)
      let a = parent.get(n.id), nested = false;
      while (a !== undefined) {
        if (match(byId.get(a)!)) {
          nested = true;
          break;
        }
        a = parent.get(a);
      }
      if (!nested) us += total(n.id);
    }
    return [name, us] as const;
  });
  // WebCrypto's native entry points (their self time: the work and the hand-off to its thread pool)
  let webCryptoUs = 0;
  for (const n of p.nodes)
    if (!n.callFrame.url && /^(digest|sign|verify|importKey|exportKey|deriveBits)$/.test(n.callFrame.functionName)) webCryptoUs += self.get(n.id) ?? 0;
  return { totalUs, busyUs, perModule, perFunction, stepTimes, webCryptoUs };
}

async function microbench(iterations: number): Promise<string[]> {
  const L: string[] = [];
  L.push(`| step (a signed GET 1 KiB request, ${iterations} sequential calls, no I/O) | wall µs per call | CPU µs per call |`);
  L.push("| --- | ---: | ---: |");
  /** wall and CPU (this process, all threads: crypto.subtle runs on a thread pool) per call */
  const time = async (name: string, fn: () => unknown) => {
    try {
      for (let i = 0; i < 500; i++) await fn(); // warm-up
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < iterations; i++) await fn();
      const wall = ((performance.now() - t0) * 1000) / iterations;
      const c = process.cpuUsage(c0);
      L.push(`| ${name} | ${wall.toFixed(1)} | ${((c.user + c.system) / iterations).toFixed(1)} |`);
    } catch (e) {
      L.push(`| ${name} | (failed: ${(e as Error).message.slice(0, 120)}) | |`);
    }
  };
  const url = "http://127.0.0.1:6190/bench/obj-1k";
  const h = await signHeaders("GET", url, FRONT, EMPTY_SHA256);
  const rawHeaders = ["Host", "127.0.0.1:6190", "User-Agent", "k6/1.8", ...Object.entries(h).flat()];
  const raw = { method: "GET", url: "/bench/obj-1k", rawHeaders, clientAddress: "127.0.0.1" };
  const lookup = async (k: string) => (k === FRONT.accessKey ? FRONT.secretKey : null);
  const creds = { accessKey: "BACKENDKEY", secretKey: "backend-secret" };
  // each step on its own: src/ changes under this script, a step whose API moved is reported, not fatal
  const mod = async (p: string) => (await import(p).catch(() => ({}))) as Record<string, any>;
  const { parseRequest } = await mod("../src/pipeline/request.ts");
  const { authenticate } = await mod("../src/pipeline/authenticate.ts");
  const { resign, forwardedHeaders } = await mod("../src/pipeline/resign.ts");
  let req: any;
  await time("parseRequest: raw target + rawHeaders → ParsedRequest", () => (req = parseRequest(raw)));
  await time("authenticate: verify the client's SigV4 (canonical request, key derivation, HMAC, compare)", () => authenticate(req, lookup, Date.now(), { maxClockSkew: 900, sigv2: true }));
  let fwd: Headers | undefined;
  await time("forwardedHeaders: the headers the backend gets", () => (fwd = forwardedHeaders(req.headers, req.headers ? [...req.headers.keys()] : [], { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" })));
  await time("resign: aws4fetch AwsV4Signer.sign() for the backend", () => resign("GET", "http://127.0.0.1:9000/bench/obj-1k", new Map(fwd), creds, "us-east-1"));
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode("k"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  await time("for scale: crypto.subtle.sign HMAC-SHA256, imported key", () => crypto.subtle.sign("HMAC", key, enc.encode("data")));
  await time("for scale: crypto.subtle.digest SHA-256 of 300 bytes", () => crypto.subtle.digest("SHA-256", enc.encode("x".repeat(300))));
  await time("for scale: Bun.CryptoHasher HMAC-SHA256 (synchronous)", () => new Bun.CryptoHasher("sha256", "k").update("data").digest("hex"));
  await time("for scale: node:crypto createHmac (synchronous)", () => require("node:crypto").createHmac("sha256", "k").update("data").digest("hex"));
  return L;
}

async function main(): Promise<void> {
  const L: string[] = [];
  const duration = Number(opt.duration), conns = Number(opt.connections);
  const root = join(work, "root");
  mkdirSync(join(root, "bench"), { recursive: true });
  writeFileSync(join(root, "bench", "obj-1k"), Buffer.alloc(1024, 0x61));
  writeFileSync(join(root, "bench", "obj-1m"), Buffer.alloc(1024 * 1024, 0x62));
  const originPort = await freePort();
  const origin = await startNginx("origin", join(work, "nginx"), staticOriginConf(join(work, "nginx"), originPort, root, "bench", 1), originPort);
  const port = await freePort();
  const cfg = join(work, "osp.toml");
  writeFileSync(
    cfg,
    `[server]\nhttp_port = ${port}\nbind = "127.0.0.1"\nworkers = 1\naccess_log = ${opt["access-log"]}\n\n[[keys]]\naccess_key = "${FRONT.accessKey}"\nsecret_key = "${FRONT.secretKey}"\n\n[buckets.bench]\nendpoint = "http://127.0.0.1:${originPort}"\nregion = "us-east-1"\naddressing_style = "path"\naccess_key = "BACKENDKEY"\nsecret_key = "backend-secret"\nttl = 300\n`,
  );
  const profDir = join(work, "prof");
  mkdirSync(profDir);
  const k6bin = process.env.K6_BIN ?? (Bun.which("k6") || join(process.env.HOME ?? "/root", "go", "bin", "k6"));
  const op = opt.workload === "put1m" ? ["put", "put-1m"] : opt.workload === "head" ? ["head", "obj-1k"] : opt.workload === "get1m" ? ["get", "obj-1m"] : ["get", "obj-1k"];
  /** k6 (every request signed) against base for --duration; CPU of pid's process tree per request */
  const drive = (base: string, pid: number) => {
    const env = { BASE: base, OP: op[0]!, KEY: op[1]!, ACCESS_KEY: FRONT.accessKey, SECRET_KEY: FRONT.secretKey, VUS: String(conns), DURATION: `${duration}s`, SUMMARY: join(work, `k6-${pid}.json`) };
    const args = [k6bin, "run", "-q", "--no-color", "--no-usage-report"];
    for (const [k, v] of Object.entries(env)) args.push("-e", `${k}=${v}`);
    args.push(join(import.meta.dir, "k6", "s3.js"));
    const cpu0 = cpuSeconds(pid);
    const r = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
    const cpu = cpuSeconds(pid) - cpu0;
    if (!existsSync(env.SUMMARY)) throw new Error(`k6 failed: ${r.stderr.toString().slice(-1000)}`);
    const m = JSON.parse(require("node:fs").readFileSync(env.SUMMARY, "utf8")).metrics;
    const reqs = m.http_reqs.values.count as number;
    return { reqs, rate: m.http_reqs.values.rate as number, p50: m.http_req_duration.values.med as number, failed: m.http_req_failed.values.rate as number, cpu, usPerReq: (cpu / reqs) * 1e6 };
  };

  // the same load against osp without the profiler and against the floor: a bare pass-through proxy
  const floor: { name: string; r: ReturnType<typeof drive> }[] = [];
  const candidates: { name: string; cmd: string[]; port: number }[] = [];
  for (const mode of ["node-proxy", "bun-proxy"]) {
    const p = await freePort();
    candidates.push({ name: mode === "node-proxy" ? "bare pass-through on node:http (@hono/node-server), no signing" : "bare pass-through on Bun.serve, no signing", cmd: [process.execPath, "run", join(import.meta.dir, "serve-modes.ts"), mode, String(p), `http://127.0.0.1:${originPort}`], port: p });
  }
  {
    const p = await freePort();
    const cfg2 = join(work, "osp2.toml");
    writeFileSync(cfg2, require("node:fs").readFileSync(cfg, "utf8").replace(`http_port = ${port}`, `http_port = ${p}`));
    candidates.push({ name: `osp, 1 worker, no profiler (access_log = ${opt["access-log"]})`, cmd: [process.execPath, join(REPO, "osp.ts"), "--config", cfg2], port: p });
  }
  if (Bun.spawnSync([process.env.PYTHON ?? "python3", "-c", "import object_storage_proxy"]).exitCode === 0) {
    const p = await freePort();
    const refCfg = join(work, "ref.json");
    writeFileSync(refCfg, JSON.stringify({ http_port: p, threads: 1, buckets: { bench: { host: "127.0.0.1", port: originPort, region: "us-east-1", access_key: "BACKENDKEY", secret_key: "backend-secret", ttl: 300 } }, keys: [{ access_key: FRONT.accessKey, secret_key: FRONT.secretKey }] }));
    candidates.push({ name: "object-storage-proxy, 1 thread", cmd: [process.env.PYTHON ?? "python3", join(import.meta.dir, "refproxy.py"), refCfg], port: p });
  }
  for (const c of candidates) {
    const s = spawnDetached(`candidate-${c.port}`, c.cmd, { cwd: REPO, logDir: work });
    try {
      await waitHttp(`http://127.0.0.1:${c.port}/`, 20_000, s.proc);
      drive(`http://127.0.0.1:${c.port}`, s.pid); // warm-up run, discarded
      floor.push({ name: c.name, r: drive(`http://127.0.0.1:${c.port}`, s.pid) });
    } catch (e) {
      log(`${c.name}: ${(e as Error).message}`);
    } finally {
      await s.stop();
    }
  }

  const osp = spawnDetached("osp", [process.execPath, "--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-interval=500", join(REPO, "osp.ts"), "--config", cfg], { cwd: REPO, logDir: work });
  try {
    await waitHttp(`http://127.0.0.1:${port}/`, 20_000, osp.proc);
    const r = drive(`http://127.0.0.1:${port}`, osp.pid);
    L.push(`### ${opt.workload}, ${conns} connections, ${duration} s per run, static nginx origin, k6 signing every request`);
    L.push("");
    L.push("CPU per request of the server process (all its threads), same load, one server at a time:");
    L.push("");
    L.push("| server | req/s | p50 ms | CPU µs per request |");
    L.push("| --- | ---: | ---: | ---: |");
    for (const f of floor) L.push(`| ${f.name} | ${f.r.rate.toFixed(0)} | ${f.r.p50.toFixed(2)} | ${f.r.usPerReq.toFixed(0)} |`);
    L.push(`| osp under the sampling profiler (500 µs) | ${r.rate.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.usPerReq.toFixed(0)} |`);
    L.push("");
    L.push(`CPU profile of that last run (Bun ${Bun.version} \`--cpu-prof\`; failed requests: ${(r.failed * 100).toFixed(1)} %):`);
    L.push("");
  } finally {
    osp.proc.kill("SIGTERM");
    await Promise.race([osp.proc.exited, sleep(15_000)]);
    await osp.stop();
    await origin.stop();
  }
  const profs = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
  if (!profs.length) {
    L.push("(no .cpuprofile was written: osp did not exit cleanly)");
  } else {
    const a = analyse(join(profDir, profs[0]!));
    const pct = (us: number) => ((us / a.busyUs) * 100).toFixed(1);
    L.push(`Busy (non-idle) samples: ${(a.busyUs / 1e6).toFixed(2)} s of ${(a.totalUs / 1e6).toFixed(2)} s profiled.`);
    L.push("");
    L.push("Self time by module (share of busy time):");
    L.push("");
    L.push("| module | % |");
    L.push("| --- | ---: |");
    for (const [k, v] of [...a.perModule].sort((x, y) => y[1] - x[1]).slice(0, 16)) L.push(`| ${k} | ${pct(v)} |`);
    L.push("");
    L.push(`WebCrypto (crypto.subtle digest / sign / importKey, native self time): **${pct(a.webCryptoUs)} %** of busy time.`);
    L.push("");
    L.push("Inclusive time of the pipeline's steps (share of busy time; an async step only counts its synchronous parts: what it awaits, such as crypto.subtle or fetch, shows up under native / Bun internals):");
    L.push("");
    L.push("| step | % |");
    L.push("| --- | ---: |");
    for (const [k, v] of a.stepTimes) L.push(`| ${k} | ${pct(v)} |`);
    L.push("");
    L.push("Top functions by self time:");
    L.push("");
    L.push("| function — module:line | % |");
    L.push("| --- | ---: |");
    for (const [k, v] of [...a.perFunction].sort((x, y) => y[1] - x[1]).slice(0, 25)) L.push(`| ${k.replace(/\|/g, "\\|")} | ${pct(v)} |`);
    L.push("");
  }
  L.push("### Micro-benchmarks of the steps");
  L.push("");
  L.push(...(await microbench(Number(opt.iterations))));
  L.push("");
  const md = L.join("\n");
  console.log(md);
  if (opt.out) writeFileSync(opt.out, md);
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
