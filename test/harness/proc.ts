/**
 * Small process helpers shared by the test harness (minio.ts, osp.ts, run.ts).
 */
import { createServer } from "node:net";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => {
      const addr = srv.address();
      if (!addr || typeof addr === "string") {
        srv.close();
        reject(new Error("freePort: no address"));
        return;
      }
      const port = addr.port;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

// ---------------------------------------------------------------------------
// last-resort cleanup: anything still registered is SIGKILLed when this process exits
const cleanups = new Set<() => void>();
let exitHookInstalled = false;

/** Register a synchronous cleanup to run at process exit; returns an unregister function. */
export function registerCleanup(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", runAllCleanupsSync);
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export function runAllCleanupsSync(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort
    }
  }
}

// ---------------------------------------------------------------------------
export interface Collected {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** everything the process printed so far (stdout and stderr interleaved, tail-capped) */
  output(): string;
  /** resolves when both output streams have ended */
  drained: Promise<void>;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

export function spawnCollecting(
  cmd: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; detached?: boolean; echoPrefix?: string },
): Collected {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd,
    env: opts.env as Record<string, string>,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: opts.detached,
  });
  const chunks: string[] = [];
  let size = 0;
  const push = (s: string) => {
    chunks.push(s);
    size += s.length;
    while (size > MAX_OUTPUT && chunks.length > 1) size -= chunks.shift()!.length;
    if (opts.echoPrefix !== undefined) {
      const lines = s.replace(/\n$/, "").split("\n");
      process.stderr.write(lines.map((l) => opts.echoPrefix + l).join("\n") + "\n");
    }
  };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of stream) push(dec.decode(chunk, { stream: true }));
    } catch {
      // stream errored (process killed): ignore
    }
  };
  const drained = Promise.all([pump(proc.stdout), pump(proc.stderr)]).then(() => {});
  return { proc, output: () => chunks.join(""), drained };
}

function isRunning(proc: Bun.Subprocess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

/**
 * Send `signal` (default SIGTERM) and wait up to graceMs for exit, then SIGKILL
 * (the whole process group when `group` is set, i.e. the child was spawned detached).
 */
export async function stopProcess(
  proc: Bun.Subprocess,
  opts: { graceMs?: number; signal?: NodeJS.Signals; group?: boolean } = {},
): Promise<number | null> {
  const graceMs = opts.graceMs ?? 5000;
  if (isRunning(proc)) {
    try {
      proc.kill(opts.signal ?? "SIGTERM");
    } catch {}
    const done = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      try {
        proc.kill("SIGKILL");
      } catch {}
    }
  }
  if (opts.group) {
    // reap anything the process left behind in its group (e.g. worker processes)
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {}
  }
  await proc.exited;
  return proc.exitCode;
}

export function killSync(proc: Bun.Subprocess, group = false): void {
  try {
    if (group) process.kill(-proc.pid, "SIGKILL");
  } catch {}
  try {
    proc.kill("SIGKILL");
  } catch {}
}
