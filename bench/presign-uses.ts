/**
 * Where should one osp instance count presigned URL uses so that every worker sees the same
 * count? The two candidates side by side, and Redis for comparison:
 *
 * - ipc: the primary process keeps the counts; workers ask it over the cluster IPC channel
 *   (src/state/presign-uses.ts, what osp does);
 * - sqlite: every worker opens one bun:sqlite file in WAL mode and counts with an atomic
 *   INSERT ... ON CONFLICT DO UPDATE ... RETURNING (synchronous, so it blocks its worker while
 *   it waits for SQLite's write lock);
 * - redis: src/state/presign-uses.ts's Redis counter against a local redis-server.
 *
 *   bun bench/presign-uses.ts [--uses 20000] [--rounds 3] [--out FILE.md]
 *
 * For 1 and 2 workers, each making uses one at a time (c1) and 16 at once (c16), it reports the
 * latency per use (p50, p99, max), how many uses waited more than 50 ms, and the CPU per use of
 * the workers and, for ipc, the primary. Rounds are interleaved (ipc, sqlite, redis, then again).
 */
import cluster from "node:cluster";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/config.ts";
import { countForWorkers, useCounterFor, redisCounter, urlKey } from "../src/state/presign-uses.ts";
import { startRedis } from "../test/harness/redis.ts";

type Mode = "ipc" | "sqlite" | "redis";
interface Cell { mode: Mode; workers: number; concurrency: number }
interface WorkerResult { latencies: number[]; cpuUs: number; wallMs: number }

const LIMITED = `[buckets.bench]\nendpoint = "http://127.0.0.1:1"\npresign_max_uses = 1000000\n`;

function openSqlite(file: string): (key: string, until: number) => number {
  const db = new Database(file, { create: true });
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
  db.exec("CREATE TABLE IF NOT EXISTS uses (key TEXT PRIMARY KEY, n INTEGER NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID");
  const upsert = db.query("INSERT INTO uses (key, n, until) VALUES (?1, 1, ?2) ON CONFLICT (key) DO UPDATE SET n = n + 1 RETURNING n");
  return (key, until) => (upsert.get(key, until) as { n: number }).n;
}

async function worker(): Promise<void> {
  const { mode, uses, concurrency, file, redisUrl } = JSON.parse(process.env.BENCH_CELL!) as Cell & { uses: number; file: string; redisUrl: string };
  const count: (key: string, until: number) => number | Promise<number> =
    mode === "sqlite" ? openSqlite(file)
    : mode === "redis" ? redisCounter(redisUrl).count
    : useCounterFor(parseConfig(LIMITED, {}, "/"))!.count;
  const me = cluster.worker!.id;
  const key = (i: number) => urlKey(`${me}-${i}-${Math.random()}`);
  for (let i = 0; i < 200; i++) await count(key(i), Date.now() + 60_000);
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < uses) {
      const k = key(next++);
      const s = performance.now();
      await count(k, Date.now() + 60_000);
      latencies.push(performance.now() - s);
    }
  }));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // the primary ends this worker once it has the figures: exiting here could cut the message short
  process.send!({ bench: { latencies, cpuUs: cpu.user + cpu.system, wallMs } satisfies WorkerResult });
}

async function runCell(cell: Cell, uses: number, redisUrl: string): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), "osp-bench-uses-"));
  const file = join(dir, "uses.db");
  if (cell.mode === "sqlite") openSqlite(file);
  const cpu0 = process.cpuUsage();
  const results: WorkerResult[] = [];
  await new Promise<void>((resolve) => {
    for (let i = 0; i < cell.workers; i++) {
      const w = cluster.fork({ BENCH_CELL: JSON.stringify({ ...cell, uses, file, redisUrl }) });
      w.on("message", (m: { bench?: WorkerResult }) => {
        if (!m.bench) return;
        results.push(m.bench);
        w.kill();
        if (results.length === cell.workers) resolve();
      });
    }
  });
  const primary = process.cpuUsage(cpu0);
  rmSync(dir, { recursive: true, force: true });
  const all = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const total = all.length;
  const at = (q: number) => all[Math.min(total - 1, Math.floor(total * q))]! * 1000;
  const cpuUs = results.reduce((s, r) => s + r.cpuUs, 0) + (cell.mode === "ipc" ? primary.user + primary.system : 0);
  return {
    store: cell.mode, workers: cell.workers, concurrency: cell.concurrency,
    "uses/s": Math.round(total / (Math.max(...results.map((r) => r.wallMs)) / 1000)),
    "p50 µs": at(0.5).toFixed(1), "p99 µs": at(0.99).toFixed(0), "max ms": (all.at(-1)! ).toFixed(1),
    "> 50 ms": all.filter((x) => x > 50).length, "CPU µs/use": (cpuUs / total).toFixed(1),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { uses: { type: "string", default: "20000" }, rounds: { type: "string", default: "3" }, out: { type: "string" } } });
  // workers that exit are not replaced: this primary is only the bench's
  countForWorkers();
  const redis = await startRedis();
  const rows: Record<string, number | string>[] = [];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const workers of [1, 2]) for (const concurrency of [1, 16]) {
        for (const mode of ["ipc", "sqlite", "redis"] as Mode[]) {
          const row = await runCell({ mode, workers, concurrency }, Number(values.uses), redis.url);
          console.log(JSON.stringify({ round, ...row }));
          rows.push(row);
        }
      }
    }
  } finally {
    await redis.remove();
  }
  const header = Object.keys(rows[0]!);
  const md = [
    `# Presigned URL use counting: latency per use (${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${values.uses} uses per worker, ${values.rounds} rounds)`,
    "",
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.sort((a, b) => Number(a.workers) - Number(b.workers) || Number(a.concurrency) - Number(b.concurrency) || String(a.store).localeCompare(String(b.store)))
      .map((r) => `| ${header.map((h) => r[h]).join(" | ")} |`),
    "",
  ].join("\n");
  console.log(md);
  if (values.out) writeFileSync(values.out, md);
}

if (cluster.isWorker) await worker();
else await main();
