/**
 * How often each presigned URL has been used, for `presign_max_uses`. A URL is named by a hash
 * of its signature, which stays the same however a client encodes the URL, and a use is counted
 * only once the request is authenticated and authorized.
 *
 * The count must be exact across all workers of an instance and, with `[state] redis_url`, across
 * instances. Within one instance the primary process keeps the counts and workers ask it over the
 * cluster's IPC channel: measured against a bun:sqlite file shared in WAL mode, it costs a few µs
 * more per use but never blocks a worker's event loop (SQLite's lock waits did, for up to 0.74 s;
 * bench/presign-uses.ts). Across instances, Redis counts with one atomic script per use.
 */
import cluster from "node:cluster";
import { RedisClient } from "bun";
import type { BucketConfig, Config } from "../config.ts";
import { S3Error } from "../errors.ts";

/** Counts one use of a URL and answers how many it has had, this one included. */
export interface UseCounter {
  /** `key` names the URL; its count may be forgotten after `keepUntil` (ms since the epoch). */
  count(key: string, keepUntil: number): Promise<number>;
}

/**
 * Bounds the counts one instance keeps in memory (about 150 bytes of heap each). A URL's count is
 * forgotten only when the URL has expired, so when this many unexpired URLs are being counted,
 * new ones are refused rather than old ones forgotten.
 */
export const MAX_COUNTED_URLS = 1_000_000;

const SWEEP_MS = 60_000;

/** The counts themselves, in one process: each entry is dropped once its URL has expired. */
export class UseCounts {
  private readonly entries = new Map<string, { n: number; until: number }>();
  private lastSweep = 0;

  constructor(private readonly maxEntries = MAX_COUNTED_URLS) {}

  get size(): number {
    return this.entries.size;
  }

  /** The URL's count after this use, or undefined when too many URLs are being counted. */
  count(key: string, keepUntil: number, now: number): number | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.until > now) return ++entry.n;
    // when full, sweeping is what frees room: then once a second rather than once a minute
    if (now >= this.lastSweep + (this.entries.size >= this.maxEntries ? 1000 : SWEEP_MS)) this.sweep(now);
    if (!this.entries.has(key) && this.entries.size >= this.maxEntries) return undefined;
    this.entries.set(key, { n: 1, until: keepUntil });
    return 1;
  }

  private sweep(now: number): void {
    for (const [key, entry] of this.entries) if (entry.until <= now) this.entries.delete(key);
    this.lastSweep = now;
  }
}

const tooManyUrls = () =>
  new S3Error(503, "SlowDown", `More than ${MAX_COUNTED_URLS} presigned URLs with a use limit are valid at once; try again when some have expired`);
const unavailable = () =>
  new S3Error(503, "ServiceUnavailable", "Uses of presigned URLs cannot be counted right now (the shared state store is unreachable); please retry");

/** The counter of a process that is alone: it keeps the counts itself. */
function localCounter(counts = new UseCounts()): UseCounter {
  return {
    count: async (key, keepUntil) => {
      const n = counts.count(key, keepUntil, Date.now());
      if (n === undefined) throw tooManyUrls();
      return n;
    },
  };
}

interface UseMessage {
  ospPresignUse: number;
  key?: string;
  keepUntil?: number;
  n?: number | null;
}
const isUseMessage = (m: unknown): m is UseMessage => typeof (m as UseMessage | null)?.ospPresignUse === "number";

/** In the primary of a worker pool: keeps the counts of every worker and answers their questions. */
export function countForWorkers(counts = new UseCounts()): void {
  cluster.on("message", (worker, m: unknown) => {
    if (!isUseMessage(m)) return;
    const n = counts.count(m.key!, m.keepUntil!, Date.now());
    worker.send({ ospPresignUse: m.ospPresignUse, n: n ?? null } satisfies UseMessage);
  });
}

/** A worker's counter: the primary answers, so every worker sees the same count. */
function primaryCounter(): UseCounter {
  let next = 0;
  const waiting = new Map<number, { resolve: (n: number) => void; reject: (e: unknown) => void }>();
  process.on("message", (m: unknown) => {
    if (!isUseMessage(m)) return;
    const w = waiting.get(m.ospPresignUse);
    waiting.delete(m.ospPresignUse);
    if (typeof m.n === "number") w?.resolve(m.n);
    else w?.reject(tooManyUrls());
  });
  return {
    count: (key, keepUntil) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        process.send!({ ospPresignUse: id, key, keepUntil } satisfies UseMessage);
      }),
  };
}

/** INCR, and the first use sets the expiry: atomic, so instances never miss each other's uses. */
const COUNT_SCRIPT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";
const REDIS_TIMEOUT_MS = 2000;
/** While Redis is unreachable, one request a second tries again; the others are answered at once. */
const REDIS_RETRY_MS = 1000;

/**
 * Counts in Redis. Unreachable (refused, closed, or slower than REDIS_TIMEOUT_MS), every use is
 * refused until it answers again: a limit that cannot be checked is not applied as no limit.
 * The outage and the recovery are logged once each.
 */
export function redisCounter(url: string, log: (line: string) => void = console.error): UseCounter {
  const where = (() => {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`; // never the password
  })();
  let client: RedisClient | undefined;
  let connecting: Promise<RedisClient> | undefined;
  let retryAt = 0;
  let down = false;

  const connection = () =>
    (connecting ??= (async () => {
      // no queueing and no reconnecting behind our back: a use waits for Redis or fails, never both
      const c = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: REDIS_TIMEOUT_MS });
      try {
        await c.connect();
      } catch (e) {
        c.close();
        connecting = undefined;
        throw e;
      }
      c.onclose = () => {
        if (client === c) client = undefined;
        connecting = undefined;
      };
      return (client = c);
    })());

  return {
    async count(key, keepUntil) {
      if (down && Date.now() < retryAt) throw unavailable();
      let timer: Timer | undefined;
      try {
        const c = client ?? (await connection());
        const reply = c.send("EVAL", [COUNT_SCRIPT, "1", `osp:presign:${key}`, String(Math.max(1, keepUntil - Date.now()))]);
        const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_TIMEOUT_MS} ms`)), REDIS_TIMEOUT_MS)));
        const n = Number(await Promise.race([reply, timeout]));
        if (down) log(`osp: redis at ${where} answers again; presigned URL uses are counted again`);
        down = false;
        return n;
      } catch (e) {
        if (!down) log(`osp: redis at ${where} is unreachable (${e instanceof Error ? e.message : e}); presigned URLs with a use limit are refused with 503 until it answers`);
        down = true;
        retryAt = Date.now() + REDIS_RETRY_MS;
        client?.close();
        client = undefined;
        connecting = undefined;
        throw unavailable();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * One counter per process and store, shared by the pipelines of every configuration generation:
 * a reload keeps the counts, one Redis connection, and unique ids on the IPC channel.
 */
const counters = new Map<string, UseCounter>();

/** The counter for this configuration, or undefined when no bucket limits its presigned URLs. */
export function useCounterFor(config: Config): UseCounter | undefined {
  if (![...config.buckets.values(), ...config.routes.map((r) => r.bucket)].some((b) => b.presignMaxUses > 0)) return undefined;
  const store = config.state.redisUrl ?? "";
  let counter = counters.get(store);
  if (!counter) counters.set(store, (counter = store ? redisCounter(store) : cluster.isWorker ? primaryCounter() : localCounter()));
  return counter;
}

/** The name a URL's count goes by: a hash, so that no signature is kept anywhere. */
export const urlKey = (signature: string) => new Bun.CryptoHasher("sha256").update(signature).digest("base64url");

/** Told of every presigned request that got this far, and whether it may go on. */
export type PresignedUseSeen = (bucket: string, allowed: boolean) => void;

/**
 * Counts this use of a presigned URL and refuses it beyond the bucket's limit. The count is kept
 * for `maxClockSkew` seconds past the URL's expiry, so instances whose clocks differ by that much
 * still agree it has expired before they forget it.
 */
export async function countPresignedUse(
  counter: UseCounter | undefined, presigned: { signature: string; expiresAt: number } | undefined, bucket: BucketConfig, maxClockSkew: number,
  seen?: PresignedUseSeen,
): Promise<void> {
  if (!presigned) return;
  const max = bucket.presignMaxUses;
  const allowed = !counter || max === 0 || (await counter.count(urlKey(presigned.signature), presigned.expiresAt + maxClockSkew * 1000)) <= max;
  seen?.(bucket.name, allowed);
  if (!allowed) throw new S3Error(403, "AccessDenied", `This presigned URL has been used the ${max} times it may be used`, { MaxUses: String(max) });
}
