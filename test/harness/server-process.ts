/**
 * Test harness: an S3 server built from its Go module (test/install.sh), run on a free loopback
 * port with a data directory of its own, until stop() kills it and removes that directory.
 * minio.ts and versitygw.ts say how to start each.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, registerCleanup, sleep, spawnCollecting, stopProcess, type Collected } from "./proc.ts";

export interface ServerProcess {
  name: string;
  endpoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  dataDir: string;
  proc: Bun.Subprocess;
  output(): string;
  stop(): Promise<void>;
}

const found = new Map<string, string>();

/** A Go-installed command: $ENV_VAR, PATH, $(go env GOBIN), $(go env GOPATH)/bin, ~/go/bin. */
export function findGoBinary(name: string, envVar: string): string {
  const cached = found.get(name);
  if (cached) return cached;
  const candidates: string[] = [];
  if (process.env[envVar]) candidates.push(process.env[envVar]!);
  const onPath = Bun.which(name);
  if (onPath) candidates.push(onPath);
  try {
    const r = Bun.spawnSync(["go", "env", "GOBIN", "GOPATH"], { stdout: "pipe", stderr: "ignore" });
    const [gobin, gopath] = r.stdout.toString().split("\n").map((s) => s.trim());
    if (r.exitCode === 0) {
      if (gobin) candidates.push(join(gobin, name));
      if (gopath) for (const p of gopath.split(":")) candidates.push(join(p, "bin", name));
    }
  } catch {
    // go not installed
  }
  candidates.push(join(homedir(), "go", "bin", name));
  const bin = candidates.find((c) => c && existsSync(c));
  if (!bin) throw new Error(`${name} binary not found (looked in: ${candidates.join(", ")}); run: bash test/install.sh`);
  found.set(name, bin);
  return bin;
}

export interface ServerSpec {
  /** "minio", "versitygw": names the binary, the data directory and the output */
  kind: string;
  envVar: string;
  name: string;
  accessKey: string;
  secretKey: string;
  https?: boolean;
  /** The command line after the binary, given a data directory and a free port. */
  args(dataDir: string, port: number): Promise<string[]> | string[];
  env?: Record<string, string | undefined>;
  /** Whether the server at `endpoint` is ready; false or a throw while it starts. */
  ready(endpoint: string): Promise<boolean>;
  timeoutMs?: number;
}

async function startOnce(spec: ServerSpec): Promise<ServerProcess> {
  const { kind, name } = spec;
  const bin = findGoBinary(kind, spec.envVar);
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `osp-${kind}-${name}-`));
  const endpoint = `${spec.https ? "https" : "http"}://127.0.0.1:${port}`;

  let child: Collected;
  try {
    child = spawnCollecting([bin, ...(await spec.args(dataDir, port))], {
      env: { ...process.env, ...spec.env },
      echoPrefix: process.env.OSP_TEST_VERBOSE ? `[${kind}-${name}] ` : undefined,
    });
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      unregister();
      await stopProcess(child.proc, { graceMs: 5000 });
      rmSync(dataDir, { recursive: true, force: true });
    })());
  const unregister = registerCleanup(() => {
    try {
      child.proc.kill("SIGKILL");
    } catch {}
    rmSync(dataDir, { recursive: true, force: true });
  });

  const timeoutMs = spec.timeoutMs ?? 30000;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
        throw new Error(`${kind} ${name} exited early (code ${child.proc.exitCode ?? child.proc.signalCode})`);
      }
      if (await spec.ready(endpoint).catch(() => false)) break;
      if (Date.now() > deadline) throw new Error(`${kind} ${name} not ready after ${timeoutMs} ms`);
      await sleep(100);
    }
  } catch (e) {
    await stop();
    const out = child.output().trim();
    throw new Error(`${(e as Error).message}\n--- ${kind} ${name} output ---\n${out.slice(-4000)}`);
  }

  return { name, endpoint, port, accessKey: spec.accessKey, secretKey: spec.secretKey, dataDir, proc: child.proc, output: child.output, stop };
}

/** Starts the server (retrying on port races). */
export async function startServerProcess(spec: ServerSpec): Promise<ServerProcess> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(spec);
    } catch (e) {
      lastErr = e;
      if (/binary not found/.test(String(e))) break;
    }
  }
  throw lastErr;
}
