/**
 * Test harness: start an osp instance with a given TOML config.
 *
 *   import { startOsp, freePort } from "../harness/osp.ts";
 *   const port = await freePort();
 *   const osp = await startOsp({ configToml: `[server]\nhttp_port = ${port}\nbind = "127.0.0.1"\n...` });
 *   // osp.endpoint = "http://127.0.0.1:PORT"
 *   await osp.stop();   // SIGTERM, SIGKILL after 5 s; resolves with the exit code
 *
 * The config is written to a temp file and osp is run as `bun run <repo>/osp.ts --config <file>`.
 * startOsp resolves once GET / on the configured port gets any HTTP response.
 * If osp exits or does not answer in time, it rejects with an error containing osp's output.
 * Set OSP_TEST_VERBOSE=1 to echo osp's output live.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { freePort, killSync, registerCleanup, sleep, spawnCollecting, stopProcess } from "./proc.ts";

export { freePort };

export const REPO_ROOT = resolve(import.meta.dir, "..", "..");

export interface StartOspOptions {
  /** full TOML config text; [server].http_port is required */
  configToml: string;
  /** working directory for osp (default: repo root) */
  cwd?: string;
  /** extra environment, merged over process.env (a value of undefined removes a variable) */
  env?: Record<string, string | undefined>;
  /** extra command-line arguments after `--config <file>` */
  args?: string[];
  /** ms to wait for the port to answer (default 20000) */
  timeoutMs?: number;
  /** name used in diagnostics / verbose output prefix */
  name?: string;
  /** script to run instead of <repo>/osp.ts (default: $OSP_HARNESS_ENTRY, else <repo>/osp.ts) */
  entry?: string;
}

export interface OspInstance {
  endpoint: string;
  port: number;
  host: string;
  configPath: string;
  proc: Bun.Subprocess;
  /** stdout+stderr printed so far */
  output(): string;
  /** SIGTERM, wait up to graceMs (default 5000) then SIGKILL; returns the exit code (null if killed by signal) */
  stop(graceMs?: number): Promise<number | null>;
}

export function ospEntry(entry?: string): string {
  return resolve(entry ?? (process.env.OSP_HARNESS_ENTRY || join(REPO_ROOT, "osp.ts")));
}

function serverAddress(configToml: string): { host: string; port: number } {
  let server: { http_port?: unknown; bind?: unknown } | undefined;
  try {
    server = (parseToml(configToml) as { server?: typeof server }).server;
  } catch {
    // deliberately broken config (a test of osp's config errors): find the port by hand
    server = {
      http_port: configToml.match(/^\s*http_port\s*=\s*(\d+)/m)?.[1],
      bind: configToml.match(/^\s*bind\s*=\s*"([^"]*)"/m)?.[1],
    };
  }
  const port = Number(server?.http_port);
  if (!Number.isInteger(port) || port <= 0) throw new Error("startOsp: config has no [server].http_port");
  let host = typeof server?.bind === "string" ? server.bind : "127.0.0.1";
  if (host === "0.0.0.0" || host === "" || host === "::" || host === "localhost") host = "127.0.0.1";
  if (host.includes(":")) host = `[${host}]`;
  return { host, port };
}

export async function startOsp(opts: StartOspOptions): Promise<OspInstance> {
  const { host, port } = serverAddress(opts.configToml);
  const name = opts.name ?? `osp-${port}`;
  const dir = mkdtempSync(join(tmpdir(), "osp-cfg-"));
  const configPath = join(dir, "osp.toml");
  writeFileSync(configPath, opts.configToml);
  const endpoint = `http://${host}:${port}`;

  const child = spawnCollecting(
    [process.execPath, "run", ospEntry(opts.entry), "--config", configPath, ...(opts.args ?? [])],
    {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...(opts.env ?? {}) },
      detached: true, // own process group, so stop() can reap worker processes too
      echoPrefix: process.env.OSP_TEST_VERBOSE ? `[${name}] ` : undefined,
    },
  );
  const unregister = registerCleanup(() => {
    killSync(child.proc, true);
    rmSync(dir, { recursive: true, force: true });
  });

  let stopping: Promise<number | null> | undefined;
  const stop = (graceMs = 5000) =>
    (stopping ??= (async () => {
      const code = await stopProcess(child.proc, { graceMs, group: true });
      unregister();
      rmSync(dir, { recursive: true, force: true });
      return code;
    })());

  const timeoutMs = opts.timeoutMs ?? 20000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      await stop();
      await Promise.race([child.drained, sleep(500)]);
      throw new Error(
        `osp (${name}) exited before answering (code ${child.proc.exitCode ?? child.proc.signalCode})\n` +
          `--- osp output ---\n${child.output().slice(-8000)}`,
      );
    }
    try {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      break; // any HTTP response means it is up
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `osp (${name}) did not answer on ${endpoint} within ${timeoutMs} ms\n--- osp output ---\n${child.output().slice(-8000)}`,
      );
    }
    await sleep(100);
  }

  return { endpoint, port, host, configPath, proc: child.proc, output: child.output, stop };
}

/**
 * Run osp to completion (e.g. `--check`, or a config that must be rejected) and collect its output.
 * When configToml is given it is written to a temp file and `--config <file>` is prepended to args.
 */
export async function runOspOnce(opts: {
  configToml?: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string | undefined>;
  entry?: string;
  timeoutMs?: number;
}): Promise<{ code: number | null; output: string; configPath?: string }> {
  const dir = mkdtempSync(join(tmpdir(), "osp-cfg-"));
  try {
    const args = [...(opts.args ?? [])];
    let configPath: string | undefined;
    if (opts.configToml !== undefined) {
      configPath = join(dir, "osp.toml");
      writeFileSync(configPath, opts.configToml);
      args.unshift("--config", configPath);
    }
    const child = spawnCollecting([process.execPath, "run", ospEntry(opts.entry), ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...(opts.env ?? {}) },
      detached: true,
    });
    const unregister = registerCleanup(() => killSync(child.proc, true));
    const timeoutMs = opts.timeoutMs ?? 20000;
    const finished = await Promise.race([child.proc.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!finished) await stopProcess(child.proc, { graceMs: 1000, group: true });
    unregister();
    await Promise.race([child.drained, sleep(1000)]);
    if (!finished) throw new Error(`osp did not exit within ${timeoutMs} ms\n--- osp output ---\n${child.output().slice(-8000)}`);
    return { code: child.proc.exitCode, output: child.output(), configPath };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
