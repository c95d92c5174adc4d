#!/usr/bin/env bun
/**
 * osp test orchestrator: `bun test/harness/run.ts [options] [paths...]` (normally via `bash test/run.sh`).
 *
 * Starts two MinIO servers (A, B) and a Versity S3 Gateway (V), creates the backend buckets
 * (A: `alpha`, B: `beta-real`, V: `gamma-real`), starts one shared osp (workers = 2) in front of
 * them, then runs, one after the other,
 *   bun test ./test/unit ./test/integration        (dirs that do not exist are skipped)
 *   python3 -m pytest -q test/python               (skipped if the dir does not exist)
 * streaming their output, stops every server it started, and prints one closing line
 *   N passed, N failed[, N skipped]
 * Exit status is non-zero if any test failed or a runner crashed without a test summary
 * (a crash counts as one failure).
 *
 * Options:
 *   --only-bun | --only-py   run just one of the runners
 *   -t NAME | --filter NAME  only tests whose name matches (bun `-t NAME`, pytest `-k NAME`)
 *   --no-osp                 do not start the shared osp (OSP_ENDPOINT is left unset)
 *   --verbose                echo MinIO / osp output live (same as OSP_TEST_VERBOSE=1)
 *   paths...                 `.py` files or paths under test/python go to pytest, anything else
 *                            to bun test (as path filters); a runner given no paths is skipped
 *
 * Environment read by the harness: OSP_TEST_VERBOSE=1 (echo server output), MINIO_BIN (minio binary),
 * OSP_HARNESS_ENTRY (script to run instead of <repo>/osp.ts), OSP_TEST_RUNNER_TIMEOUT_MS (default 40 min).
 *
 * Environment contract for the suites (exported to both bun test and pytest):
 *   OSP_ENDPOINT            http://127.0.0.1:PORT of the shared osp; virtual-hosted as
 *                           http://BUCKET.s3.localhost:PORT too ([server] domains)
 *   OSP_HTTPS_ENDPOINT      https://127.0.0.1:PORT of the same osp
 *   OSP_CA_BUNDLE           its self-signed certificate (also NODE_EXTRA_CA_CERTS and AWS_CA_BUNDLE)
 *   OSP_TLS_KEY             that certificate's key, for tests that start their own HTTPS osp
 *   OSP_REGION              us-east-1
 *   OSP_ACCESS_KEY          admin key (OSPADMIN, all buckets)
 *   OSP_SECRET_KEY            (random per run)
 *   OSP_LIMITED_ACCESS_KEY  key limited to bucket alpha (OSPLIMITED)
 *   OSP_LIMITED_SECRET_KEY    (random per run)
 *   OSP_BUCKET_A            alpha      (frontend = backend name, on MinIO A, ttl = 60)
 *   OSP_BUCKET_B            beta       (frontend name, on MinIO B)
 *   OSP_BUCKET_B_BACKEND    beta-real  (its bucket name on MinIO B)
 *   OSP_BUCKET_V            gamma      (frontend name, on versitygw: a second S3 implementation)
 *   OSP_BUCKET_V_BACKEND    gamma-real (its bucket name on versitygw)
 *   OSP_BUCKET_DOWN         down       (backend on a loopback port nobody listens on: 502 tests)
 *   MINIO_A_ENDPOINT        http://127.0.0.1:PORT_A
 *   MINIO_B_ENDPOINT        http://127.0.0.1:PORT_B
 *   MINIO_ROOT_USER         MinIO root credentials (same for A and B)
 *   MINIO_ROOT_PASSWORD
 *   VERSITYGW_ENDPOINT      http://127.0.0.1:PORT_V, with VERSITYGW_ACCESS_KEY / VERSITYGW_SECRET_KEY
 *   OSP_TEST_BACKENDS_JSON  {"a":{"endpoint","accessKey","secretKey","region"},"b":{...},"v":{...},"downPort":N}
 *                           for tests that start their own osp via test/harness/osp.ts
 *                           (test/harness/env.ts has typed accessors and TOML helpers)
 *   OSP_CONFIG_FILE         path of the shared osp's config (removed after the run)
 *   TMPDIR                  a directory of this run's own, removed after it: whatever the servers and
 *                           suites put in the temporary directory goes, and two runs never collide
 *   AWS_EC2_METADATA_DISABLED=true
 */
import { S3Client, CreateBucketCommand } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { bucketToml } from "./env.ts";
import { startMinio } from "./minio.ts";
import { startVersitygw } from "./versitygw.ts";
import type { ServerProcess } from "./server-process.ts";
import { ospEntry, startOsp, REPO_ROOT, type OspInstance } from "./osp.ts";
import { freePort, registerCleanup, runAllCleanupsSync, sleep, stopProcess } from "./proc.ts";
import { makeCertificate } from "./tls.ts";

// ---------------------------------------------------------------------------------------------
// counting

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, "").replace(/\r/g, "");

function lastInt(text: string, re: RegExp): number | undefined {
  let v: number | undefined;
  for (const m of text.matchAll(re)) v = Number(m[1]);
  return v;
}

/** Counts from `bun test` output (` 12 pass`, ` 1 fail`, ` 2 skip`, ` 1 todo`, ` 1 error`), or null if absent. */
export function parseBunCounts(raw: string): Counts | null {
  const text = stripAnsi(raw);
  const pass = lastInt(text, /^\s*(\d+) pass\s*$/gm);
  const fail = lastInt(text, /^\s*(\d+) fail\s*$/gm);
  if (pass === undefined && fail === undefined) return null;
  const skip = lastInt(text, /^\s*(\d+) skip\s*$/gm) ?? 0;
  const todo = lastInt(text, /^\s*(\d+) todo\s*$/gm) ?? 0;
  const errors = lastInt(text, /^\s*(\d+) errors?\s*$/gm) ?? 0;
  // a file that fails to load shows up both as a failure and as ` 1 error`: don't count it twice
  return { passed: pass ?? 0, failed: Math.max(fail ?? 0, errors), skipped: skip + todo };
}

/** Counts from pytest's closing line (`3 failed, 40 passed, 1 skipped in 2.3s`), or null if absent. */
export function parsePytestCounts(raw: string): Counts | null {
  const lines = stripAnsi(raw).split("\n").reverse();
  for (const line0 of lines) {
    const line = line0.replace(/^=+\s*/, "").replace(/\s*=+\s*$/, "").trim();
    if (!/\bin [\d.]+s\b/.test(line)) continue;
    if (/^no tests ran\b/.test(line)) return { passed: 0, failed: 0, skipped: 0 };
    const c: Counts = { passed: 0, failed: 0, skipped: 0 };
    let any = false;
    for (const m of line.matchAll(/(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?|rerun)\b/g)) {
      any = true;
      const n = Number(m[1]);
      switch (m[2]) {
        case "passed":
        case "xpassed":
          c.passed += n;
          break;
        case "failed":
        case "error":
        case "errors":
          c.failed += n;
          break;
        case "skipped":
        case "xfailed":
          c.skipped += n;
          break;
      }
    }
    if (any) return c;
  }
  return null;
}

export function summaryLine(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed` + (c.skipped ? `, ${c.skipped} skipped` : "");
}

// ---------------------------------------------------------------------------------------------
// arguments

interface Args {
  onlyBun: boolean;
  onlyPy: boolean;
  noOsp: boolean;
  verbose: boolean;
  filter?: string;
  bunPaths: string[];
  pyPaths: string[];
}

function usage(): never {
  console.log(
    "usage: bun test/harness/run.ts [--only-bun|--only-py] [-t NAME] [--no-osp] [--verbose] [paths...]",
  );
  process.exit(0);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { onlyBun: false, onlyPy: false, noOsp: false, verbose: false, bunPaths: [], pyPaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === "--only-bun") a.onlyBun = true;
    else if (x === "--only-py") a.onlyPy = true;
    else if (x === "--no-osp") a.noOsp = true;
    else if (x === "--verbose" || x === "-v") a.verbose = true;
    else if (x === "-t" || x === "-k" || x === "--filter") a.filter = argv[++i];
    else if (x.startsWith("--filter=")) a.filter = x.slice(9);
    else if (x === "-h" || x === "--help") usage();
    else if (x.startsWith("-")) {
      console.error(`run: unknown option ${x}`);
      process.exit(2);
    } else {
      const rel = relative(REPO_ROOT, resolve(process.cwd(), x));
      const isPy = x.endsWith(".py") || x.includes(".py::") || rel === "test/python" || rel.startsWith("test/python/");
      if (isPy) {
        // pytest node ids (file.py::test) are kept, made relative to the repo root
        const [file, ...node] = x.split("::");
        const abs = resolve(process.cwd(), file!);
        a.pyPaths.push(existsSync(abs) ? [relative(REPO_ROOT, abs), ...node].join("::") : x);
      } else a.bunPaths.push(existsSync(resolve(process.cwd(), x)) ? "./" + rel : x);
    }
  }
  if (a.onlyBun && a.onlyPy) {
    console.error("run: --only-bun and --only-py exclude each other");
    process.exit(2);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// runners

const BUN_TEST_FILE = new Bun.Glob("**/*{.test,_test,.spec,_spec}.{ts,tsx,js,jsx,mjs,cjs,mts,cts}");

function hasBunTests(dir: string): boolean {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return false;
  for (const f of BUN_TEST_FILE.scanSync({ cwd: dir })) if (!f.includes("node_modules")) return true;
  return false;
}

interface RunResult {
  name: string;
  counts: Counts;
  note?: string;
}

let currentChild: Bun.Subprocess | undefined;
const RUNNER_TIMEOUT_MS = Number(process.env.OSP_TEST_RUNNER_TIMEOUT_MS ?? 40 * 60 * 1000);

async function runStreaming(cmd: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; text: string; timedOut: boolean }> {
  console.log(`\n$ ${cmd.join(" ")}`);
  const proc = Bun.spawn(cmd, { cwd: REPO_ROOT, env: env as Record<string, string>, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  currentChild = proc;
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      out.write(chunk);
      text += dec.decode(chunk, { stream: true });
      if (text.length > 8 * 1024 * 1024) text = text.slice(-4 * 1024 * 1024);
    }
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    console.error(`\nrun: ${cmd[0]} exceeded ${RUNNER_TIMEOUT_MS} ms, killing it`);
    void stopProcess(proc, { graceMs: 5000 });
  }, RUNNER_TIMEOUT_MS);
  await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr), proc.exited]);
  clearTimeout(timer);
  currentChild = undefined;
  return { code: proc.exitCode, text, timedOut };
}

function judge(name: string, r: { code: number | null; text: string; timedOut: boolean }, counts: Counts | null): RunResult {
  if (!counts) {
    return {
      name,
      counts: { passed: 0, failed: 1, skipped: 0 },
      note: `${name} exited with ${r.code ?? "a signal"}${r.timedOut ? " (timeout)" : ""} without a test summary: counted as 1 failure`,
    };
  }
  if (r.code !== 0 && counts.failed === 0) {
    return {
      name,
      counts: { ...counts, failed: 1 },
      note: `${name} exited with ${r.code ?? "a signal"}${r.timedOut ? " (timeout)" : ""} but reported no failures: counted as 1 failure`,
    };
  }
  return { name, counts };
}

async function runBun(args: Args, env: Record<string, string | undefined>, tty: boolean): Promise<RunResult | null> {
  let targets = args.bunPaths;
  if (!targets.length) {
    targets = ["test/unit", "test/integration"].filter((d) => hasBunTests(join(REPO_ROOT, d))).map((d) => "./" + d);
    if (!targets.length) {
      console.log("\nrun: no bun test files under test/unit or test/integration, skipping bun test");
      return null;
    }
  }
  // the preload's setDefaultTimeout did not reach every file when units and integration ran together
  const cmd = [process.execPath, "test", "--timeout", "120000", ...targets];
  if (args.filter) cmd.push("-t", args.filter);
  const r = await runStreaming(cmd, { ...env, FORCE_COLOR: tty ? "1" : env.FORCE_COLOR });
  return judge("bun test", r, parseBunCounts(r.text));
}

async function runPytest(args: Args, env: Record<string, string | undefined>, tty: boolean): Promise<RunResult | null> {
  let targets = args.pyPaths;
  if (!targets.length) {
    if (!existsSync(join(REPO_ROOT, "test/python"))) {
      console.log("\nrun: no test/python directory, skipping pytest");
      return null;
    }
    targets = ["test/python"];
  }
  const python = Bun.which("python3") ?? "python3";
  const cmd = [python, "-m", "pytest", "-q", ...targets];
  if (args.filter) cmd.push("-k", args.filter);
  if (tty) cmd.push("--color=yes");
  const r = await runStreaming(cmd, env);
  if (r.code === 5) return { name: "pytest", counts: { passed: 0, failed: 0, skipped: 0 }, note: "pytest collected no tests" };
  return judge("pytest", r, parsePytestCounts(r.text));
}

// ---------------------------------------------------------------------------------------------
// servers

const servers: { stop(): Promise<unknown> }[] = [];
let shuttingDown: Promise<void> | undefined;

function stopAll(): Promise<void> {
  return (shuttingDown ??= (async () => {
    const all = servers.splice(0).reverse();
    await Promise.allSettled(all.map((s) => s.stop()));
  })());
}

function s3(m: ServerProcess): S3Client {
  return new S3Client({
    endpoint: m.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: m.accessKey, secretAccessKey: m.secretKey },
  });
}

async function createBucket(m: ServerProcess, bucket: string): Promise<void> {
  const c = s3(m);
  try {
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    c.destroy();
  }
}

const q = (s: string) => JSON.stringify(s);

function sharedConfig(o: {
  port: number;
  httpsPort: number;
  tls: { cert: string; key: string };
  admin: [string, string];
  limited: [string, string];
  a: ServerProcess;
  b: ServerProcess;
  v: ServerProcess;
  downPort: number;
}): string {
  return `# generated by test/harness/run.ts
[server]
http_port = ${o.port}
https_port = ${o.httpsPort}
tls_cert = ${q(o.tls.cert)}
tls_key = ${q(o.tls.key)}
bind = "127.0.0.1"
workers = 2
domains = ["s3.localhost"]

[[keys]]
access_key = ${q(o.admin[0])}
secret_key = ${q(o.admin[1])}

[[keys]]
access_key = ${q(o.limited[0])}
secret_key = ${q(o.limited[1])}
buckets = ["alpha"]

${bucketToml("alpha", o.a, { ttl: 60 })}
${bucketToml("beta", o.b, { backend_bucket: "beta-real" })}
${bucketToml("gamma", o.v, { backend_bucket: "gamma-real" })}
[buckets.down]
endpoint = "http://127.0.0.1:${o.downPort}"
region = "us-east-1"
addressing_style = "path"
access_key = "x"
secret_key = "y"
`;
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.verbose) process.env.OSP_TEST_VERBOSE = "1";
  const tty = !!process.stdout.isTTY;
  const t0 = performance.now();
  // every temporary file of this run, the harness' and its children's, lives here and goes with it
  const runDir = mkdtempSync(join(tmpdir(), "osp-run-"));
  process.env.TMPDIR = runDir;
  const removeRunDir = () => rmSync(runDir, { recursive: true, force: true });
  registerCleanup(removeRunDir);

  // which runners?
  const explicit = args.bunPaths.length + args.pyPaths.length > 0;
  const wantBun = !args.onlyPy && (!explicit || args.bunPaths.length > 0);
  const wantPy = !args.onlyBun && (!explicit || args.pyPaths.length > 0);

  // backends
  const started = await Promise.allSettled([startMinio("a"), startMinio("b"), startVersitygw("v")]);
  for (const r of started) if (r.status === "fulfilled") servers.push(r.value);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  const [a, b, v] = started.map((r) => (r as PromiseFulfilledResult<ServerProcess>).value) as [ServerProcess, ServerProcess, ServerProcess];
  await Promise.all([createBucket(a, "alpha"), createBucket(b, "beta-real"), createBucket(v, "gamma-real")]);
  console.log(`run: minio A ${a.endpoint} (alpha), minio B ${b.endpoint} (beta-real), versitygw ${v.endpoint} (gamma-real)`);

  // shared osp
  const admin: [string, string] = ["OSPADMIN", randomBytes(20).toString("hex")];
  const limited: [string, string] = ["OSPLIMITED", randomBytes(20).toString("hex")];
  let downPort = await freePort();
  while ([a.port, b.port, v.port].includes(downPort)) downPort = await freePort();
  let osp: OspInstance | undefined;
  const tls = await makeCertificate();
  servers.push({ stop: async () => rmSync(tls.dir, { recursive: true, force: true }) });
  let httpsPort = 0;
  if (!args.noOsp) {
    if (!existsSync(ospEntry())) throw new Error(`${ospEntry()} does not exist (use --no-osp to run without it)`);
    let lastErr: unknown;
    for (let attempt = 0; attempt < 2 && !osp; attempt++) {
      let port = await freePort();
      while (port === downPort) port = await freePort();
      httpsPort = await freePort();
      try {
        osp = await startOsp({ configToml: sharedConfig({ port, httpsPort, tls, admin, limited, a, b, v, downPort }), name: "osp-shared" });
      } catch (e) {
        lastErr = e;
      }
    }
    if (!osp) throw lastErr;
    servers.push(osp);
    console.log(`run: osp ${osp.endpoint} (workers = 2), startup ${((performance.now() - t0) / 1000).toFixed(1)} s total`);
  }

  const backend = (m: ServerProcess) => ({ endpoint: m.endpoint, accessKey: m.accessKey, secretKey: m.secretKey, region: "us-east-1" });
  const env: Record<string, string | undefined> = {
    ...process.env,
    OSP_ENDPOINT: osp?.endpoint,
    OSP_HTTPS_ENDPOINT: osp ? `https://127.0.0.1:${httpsPort}` : undefined,
    // the test certificate, trusted by the SDKs under test: Bun (node:https, fetch), botocore, aws-cli
    OSP_CA_BUNDLE: tls.cert,
    OSP_TLS_KEY: tls.key,
    NODE_EXTRA_CA_CERTS: tls.cert,
    AWS_CA_BUNDLE: tls.cert,
    OSP_REGION: "us-east-1",
    OSP_ACCESS_KEY: admin[0],
    OSP_SECRET_KEY: admin[1],
    OSP_LIMITED_ACCESS_KEY: limited[0],
    OSP_LIMITED_SECRET_KEY: limited[1],
    OSP_BUCKET_A: "alpha",
    OSP_BUCKET_B: "beta",
    OSP_BUCKET_B_BACKEND: "beta-real",
    OSP_BUCKET_V: "gamma",
    OSP_BUCKET_V_BACKEND: "gamma-real",
    OSP_BUCKET_DOWN: "down",
    MINIO_A_ENDPOINT: a.endpoint,
    MINIO_B_ENDPOINT: b.endpoint,
    MINIO_ROOT_USER: a.accessKey,
    MINIO_ROOT_PASSWORD: a.secretKey,
    VERSITYGW_ENDPOINT: v.endpoint,
    VERSITYGW_ACCESS_KEY: v.accessKey,
    VERSITYGW_SECRET_KEY: v.secretKey,
    OSP_TEST_BACKENDS_JSON: JSON.stringify({ a: backend(a), b: backend(b), v: backend(v), downPort }),
    OSP_CONFIG_FILE: osp?.configPath,
    AWS_EC2_METADATA_DISABLED: "true",
  };
  // never let the suites pick up the developer's own AWS settings by accident
  for (const k of ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]) delete env[k];
  if (!osp) delete env.OSP_ENDPOINT;

  const results: RunResult[] = [];
  if (wantBun) {
    const r = await runBun(args, env, tty);
    if (r) results.push(r);
  }
  if (wantPy && !interrupted) {
    const r = await runPytest(args, env, tty);
    if (r) results.push(r);
  }

  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const r of results) {
    total.passed += r.counts.passed;
    total.failed += r.counts.failed;
    total.skipped += r.counts.skipped;
  }

  // diagnostics
  if (osp && total.failed > 0) {
    const logDir = join(REPO_ROOT, ".tmp", "test-logs", `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`);
    try {
      mkdirSync(logDir, { recursive: true });
      writeFileSync(join(logDir, "osp-shared.log"), osp.output());
      writeFileSync(join(logDir, "minio-a.log"), a.output());
      writeFileSync(join(logDir, "minio-b.log"), b.output());
      writeFileSync(join(logDir, "versitygw.log"), v.output());
    } catch {}
    console.log(`\nrun: last lines of the shared osp's output (full logs in ${relative(REPO_ROOT, logDir)}/):\n${tail(osp.output(), 40) || "(none)"}`);
  }

  await stopAll();
  removeRunDir();

  console.log("");
  for (const r of results) {
    const c = r.counts;
    console.log(`run: ${r.name} -> ${c.passed} pass / ${c.failed} fail / ${c.skipped} skip${r.note ? `  (${r.note})` : ""}`);
  }
  if (!results.length) console.log("run: no test runner ran");
  console.log(`run: took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(summaryLine(total));
  return total.failed > 0 ? 1 : 0;
}

let interrupted = false;

function installSignalHandlers(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      console.error(`\nrun: ${sig}, stopping servers`);
      const child = currentChild;
      void (async () => {
        if (child) await stopProcess(child, { graceMs: 3000 });
        await Promise.race([stopAll(), sleep(8000)]);
        runAllCleanupsSync();
        process.exit(sig === "SIGINT" ? 130 : 143);
      })();
    });
  }
}

if (import.meta.main) {
  installSignalHandlers();
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`\nrun: error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    await Promise.race([stopAll(), sleep(10000)]);
    console.log(summaryLine({ passed: 0, failed: 1, skipped: 0 }));
    code = 1;
  }
  await Promise.race([stopAll(), sleep(10000)]);
  runAllCleanupsSync();
  process.exit(code);
}
