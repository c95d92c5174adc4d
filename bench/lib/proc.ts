/**
 * Process helpers for the benchmarks: start a detached process group, wait for it to answer,
 * read its CPU time and RSS from /proc (summed over the whole process tree, so node:cluster
 * workers and nginx workers count), and run autocannon.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { registerCleanup, sleep } from "../../test/harness/proc.ts";

export interface Started {
  name: string;
  pid: number;
  proc: Bun.Subprocess;
  logPath?: string;
  stop(): Promise<void>;
}

/** Spawn `cmd` in its own process group; output goes to logDir/name.log (or nowhere). */
export function spawnDetached(
  name: string,
  cmd: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; logDir?: string } = {},
): Started {
  let fd: number | undefined;
  let logPath: string | undefined;
  if (opts.logDir) {
    mkdirSync(opts.logDir, { recursive: true });
    logPath = join(opts.logDir, `${name}.log`);
    fd = openSync(logPath, "a");
  }
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd,
    env: { ...process.env, ...(opts.env ?? {}) } as Record<string, string>,
    stdin: "ignore",
    stdout: fd ?? "ignore",
    stderr: fd ?? "ignore",
    detached: true,
  });
  if (fd !== undefined) closeSync(fd);
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid, sig);
    } catch {
      try {
        proc.kill(sig);
      } catch {}
    }
  };
  const unregister = registerCleanup(() => killGroup("SIGKILL"));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      killGroup("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), sleep(5000).then(() => false)]);
      if (!done) killGroup("SIGKILL");
      // children of the group may outlive the leader for a moment
      await sleep(100);
      killGroup("SIGKILL");
      unregister();
    })());
  return { name, pid: proc.pid, proc, logPath, stop };
}

/** Poll `url` until any HTTP answer (or the process dies / the deadline passes). */
export async function waitHttp(url: string, timeoutMs = 30_000, proc?: Bun.Subprocess, init?: RequestInit): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error(`${url}: process exited (${proc.exitCode ?? proc.signalCode})`);
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// /proc accounting

const CLK_TCK = 100;

/** pid and all its descendants (via /proc/PID/task/TID/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    if (!existsSync(`/proc/${p}`)) continue;
    out.push(p);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {}
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (c) stack.push(Number(c));
      } catch {}
    }
  }
  return out;
}

function statTimes(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // fields 14..17 of stat (utime, stime, cutime, cstime) are f[11..14] after the comm field
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) used so far by pid and its live descendants. */
export function cpuSeconds(pid: number): number {
  return processTree(pid).reduce((a, p) => a + statTimes(p), 0);
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** RSS and peak RSS (VmHWM) of one process, in bytes. */
export const rssOf = (pid: number) => statusKb(pid, "VmRSS") * 1024;
export const hwmOf = (pid: number) => statusKb(pid, "VmHWM") * 1024;

/** Current RSS in bytes of pid's tree, summed. */
export function rssBytes(pid: number): number {
  return processTree(pid).reduce((a, p) => a + statusKb(p, "VmRSS") * 1024, 0);
}

/** Peak RSS (VmHWM) in bytes since the last resetPeakRss, summed over the tree. */
export function peakRssBytes(pid: number): number {
  return processTree(pid).reduce((a, p) => a + statusKb(p, "VmHWM") * 1024, 0);
}

/** Per-process peak RSS (VmHWM) in bytes, largest first. */
export function peakRssPerProcess(pid: number): number[] {
  return processTree(pid).map((p) => statusKb(p, "VmHWM") * 1024).sort((a, b) => b - a);
}

/** Reset VmHWM to the current RSS for pid's tree (writes 5 to /proc/PID/clear_refs; Linux ≥ 4.0). */
export function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, "5");
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------
// autocannon

export interface AutocannonResult {
  requests: { average: number; total: number };
  throughput: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
}

let acDir: string | undefined = process.env.AUTOCANNON_DIR;

/** The autocannon package directory in npx's cache (npx installs it on first use). */
export function autocannonDir(): string {
  if (acDir) return acDir;
  const r = Bun.spawnSync(["npx", "-y", "-p", "autocannon", "-c", 'readlink -f "$(command -v autocannon)"'], { stdout: "pipe", stderr: "pipe" });
  const bin = r.stdout.toString().trim();
  if (r.exitCode !== 0 || !bin) throw new Error(`cannot find autocannon via npx: ${r.stderr.toString().slice(-500)}`);
  return (acDir = dirname(bin));
}

export interface AutocannonRun extends AutocannonResult {
  /** CPU seconds the load generator used */
  clientCpu: number;
}

/** One autocannon run (through bench/lib/autocannon-run.cjs, which also handles HEAD). */
export async function autocannon(o: {
  url: string;
  connections: number;
  duration?: number;
  amount?: number;
  method?: string;
  headers?: Record<string, string>;
}): Promise<AutocannonRun> {
  const opts: Record<string, unknown> = { url: o.url, connections: o.connections, method: o.method ?? "GET", headers: o.headers ?? {} };
  if (o.amount) opts.amount = o.amount;
  else opts.duration = o.duration ?? 10;
  const p = Bun.spawn(["node", join(import.meta.dir, "autocannon-run.cjs"), JSON.stringify(opts)], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    env: { ...process.env, AUTOCANNON_DIR: autocannonDir() },
  });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  const u = p.resourceUsage();
  try {
    return { ...(JSON.parse(out) as AutocannonResult), clientCpu: u ? Number(u.cpuTime.user + u.cpuTime.system) / 1e6 : 0 };
  } catch {
    throw new Error(`autocannon failed (exit ${p.exitCode}): ${err.slice(-2000)}${out.slice(-2000)}`);
  }
}
