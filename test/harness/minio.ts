/**
 * Test harness: start and stop throwaway MinIO servers on loopback.
 *
 *   const m = await startMinio("a");
 *   // m.endpoint = "http://127.0.0.1:PORT", m.accessKey / m.secretKey = root creds
 *   await m.stop();   // kills the server and removes its data dir
 *
 * The binary is looked up in $MINIO_BIN, PATH, $(go env GOPATH)/bin and ~/go/bin
 * (test/install.sh builds it with `go install`).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, registerCleanup, sleep, spawnCollecting, stopProcess, type Collected } from "./proc.ts";

export { freePort };

export const MINIO_ROOT_USER = "ospminioadmin";
export const MINIO_ROOT_PASSWORD = "ospminiosecret-test-only";

export interface MinioServer {
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

let cachedBin: string | undefined;

export function findMinioBinary(): string {
  if (cachedBin) return cachedBin;
  const candidates: string[] = [];
  if (process.env.MINIO_BIN) candidates.push(process.env.MINIO_BIN);
  const onPath = Bun.which("minio");
  if (onPath) candidates.push(onPath);
  try {
    const r = Bun.spawnSync(["go", "env", "GOBIN", "GOPATH"], { stdout: "pipe", stderr: "ignore" });
    const [gobin, gopath] = r.stdout.toString().split("\n").map((s) => s.trim());
    if (r.exitCode === 0) {
      if (gobin) candidates.push(join(gobin, "minio"));
      if (gopath) for (const p of gopath.split(":")) candidates.push(join(p, "bin", "minio"));
    }
  } catch {
    // go not installed
  }
  candidates.push(join(homedir(), "go", "bin", "minio"));
  for (const c of candidates) {
    if (c && existsSync(c)) return (cachedBin = c);
  }
  throw new Error(
    `minio binary not found (looked in: ${candidates.join(", ")}); run: bash test/install.sh`,
  );
}

export interface StartMinioOptions {
  accessKey?: string;
  secretKey?: string;
  /** ms to wait for /minio/health/live (default 30000) */
  timeoutMs?: number;
  /** serve HTTPS with public.crt/private.key from this directory (MinIO's --certs-dir) */
  certsDir?: string;
  /** the PEM text of the CA that signed that certificate, for the health check */
  ca?: string;
  /** extra environment for the server, e.g. MINIO_IDLE_TIMEOUT (its per-write and per-read deadline, default 30s) */
  env?: Record<string, string>;
}

async function startOnce(name: string, opts: StartMinioOptions): Promise<MinioServer> {
  const bin = findMinioBinary();
  const accessKey = opts.accessKey ?? MINIO_ROOT_USER;
  const secretKey = opts.secretKey ?? MINIO_ROOT_PASSWORD;
  const port = await freePort();
  let consolePort = await freePort();
  while (consolePort === port) consolePort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `osp-minio-${name}-`));
  const endpoint = `${opts.certsDir ? "https" : "http"}://127.0.0.1:${port}`;

  let child: Collected;
  try {
    child = spawnCollecting(
      [bin, "server", dataDir, "--address", `127.0.0.1:${port}`, "--console-address", `127.0.0.1:${consolePort}`, ...(opts.certsDir ? ["--certs-dir", opts.certsDir] : [])],
      {
        env: {
          ...process.env,
          MINIO_ROOT_USER: accessKey,
          MINIO_ROOT_PASSWORD: secretKey,
          MINIO_BROWSER: "off",
          MINIO_UPDATE: "off",
          MINIO_CALLHOME_ENABLE: "off",
          ...opts.env,
        },
        echoPrefix: process.env.OSP_TEST_VERBOSE ? `[minio-${name}] ` : undefined,
      },
    );
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

  const deadline = Date.now() + (opts.timeoutMs ?? 30000);
  try {
    for (;;) {
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
        throw new Error(`minio ${name} exited early (code ${child.proc.exitCode ?? child.proc.signalCode})`);
      }
      try {
        const res = await fetch(`${endpoint}/minio/health/live`, { signal: AbortSignal.timeout(1000), tls: { ca: opts.ca } });
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`minio ${name} not healthy after ${opts.timeoutMs ?? 30000} ms`);
      await sleep(100);
    }
  } catch (e) {
    await stop();
    const out = child.output().trim();
    throw new Error(`${(e as Error).message}\n--- minio ${name} output ---\n${out.slice(-4000)}`);
  }

  return { name, endpoint, port, accessKey, secretKey, dataDir, proc: child.proc, output: child.output, stop };
}

/** Start a MinIO server on free loopback ports with a fresh data dir (retries on port races). */
export async function startMinio(name: string, opts: StartMinioOptions = {}): Promise<MinioServer> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(name, opts);
    } catch (e) {
      lastErr = e;
      if (/binary not found/.test(String(e))) break;
    }
  }
  throw lastErr;
}
