/**
 * ListBuckets (GET /): answered by osp itself, listing only the buckets the caller may use:
 * the configured names that exist on their backend, and the routed backends' own buckets that
 * their route serves, under their frontend names; paginated as S3 does. What each backend says
 * is cached briefly; a backend that does not answer leaves its buckets out, and is named in the
 * x-osp-unavailable header and the error log, while the others are listed.
 */
import type { BucketConfig, Config, RouteConfig } from "../config.ts";
import { S3Error, invalidArgument, xmlEscape } from "../errors.ts";
import { TtlCache } from "../state/cache.ts";
import { bucketFor, frontendName, upstreamUrl } from "./route.ts";
import type { BackendAnswer } from "./forward.ts";

export interface BucketEntry {
  name: string;
  /** ISO date, when the backend gave one. */
  created?: string;
}

export interface ListBucketsQuery {
  maxBuckets: number;
  /** The last name of the previous page ("" for the first). */
  after: string;
  prefix: string;
}

/** S3's largest page, also its default. */
export const MAX_BUCKETS = 10_000;

const encodeToken = (name: string) => Buffer.from(name).toString("base64url");

export function listBucketsQuery(q: Map<string, string>): ListBucketsQuery {
  const max = q.get("max-buckets");
  if (max !== undefined && (!/^\d{1,5}$/.test(max) || Number(max) < 1 || Number(max) > MAX_BUCKETS))
    throw invalidArgument(`max-buckets must be an integer between 1 and ${MAX_BUCKETS}`);
  const token = q.get("continuation-token");
  const after = token === undefined ? "" : Buffer.from(token, "base64url").toString();
  if (token !== undefined && (token === "" || encodeToken(after) !== token)) throw invalidArgument("The continuation token provided is incorrect");
  return { maxBuckets: max === undefined ? MAX_BUCKETS : Number(max), after, prefix: q.get("prefix") ?? "" };
}

/** One page of the sorted names, and the token of the next page when there is one. */
export function bucketPage(entries: BucketEntry[], q: ListBucketsQuery): { buckets: BucketEntry[]; next?: string } {
  const rest = entries.filter((e) => e.name.startsWith(q.prefix) && e.name > q.after).sort((a, b) => (a.name < b.name ? -1 : 1));
  const buckets = rest.slice(0, q.maxBuckets);
  return { buckets, next: rest.length > q.maxBuckets ? encodeToken(buckets.at(-1)!.name) : undefined };
}

export function listBucketsXml(page: { buckets: BucketEntry[]; next?: string }, prefix: string, owner: string, created: Date): string {
  const date = created.toISOString();
  const buckets = page.buckets.map((b) => `<Bucket><Name>${xmlEscape(b.name)}</Name><CreationDate>${xmlEscape(b.created ?? date)}</CreationDate></Bucket>`).join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Owner><ID>${xmlEscape(owner)}</ID><DisplayName>${xmlEscape(owner)}</DisplayName></Owner>` +
    `<Buckets>${buckets}</Buckets>` +
    (page.next ? `<ContinuationToken>${page.next}</ContinuationToken>` : "") +
    (prefix ? `<Prefix>${xmlEscape(prefix)}</Prefix>` : "") +
    `</ListAllMyBucketsResult>`
  );
}

/** The buckets of a backend's ListAllMyBucketsResult, at most `limit` of them. */
export function bucketsOfListing(xml: string, limit = MAX_BUCKETS): BucketEntry[] {
  const out: BucketEntry[] = [];
  for (const m of xml.matchAll(/<Bucket>([\s\S]*?)<\/Bucket>/g)) {
    if (out.length >= limit) break;
    const name = /<Name>([^<]*)<\/Name>/.exec(m[1]!)?.[1];
    if (name) out.push({ name, created: /<CreationDate>([^<]*)<\/CreationDate>/.exec(m[1]!)?.[1] });
  }
  return out;
}

/** A signed request without body to a backend, as the pipeline sends one. */
export type BackendCall = (token: string, bucket: BucketConfig, method: "GET" | "HEAD", url: string) => Promise<BackendAnswer>;
export type MayList = (bucket: BucketConfig) => Promise<boolean>;

type Outcome = { ok: true; entries: BucketEntry[] } | { ok: false; why: string };

/** How long what a backend said about its buckets is kept. */
const CACHE_MS = 2000;
/** Backend requests of one listing in flight at once. */
const CONCURRENCY = 8;

export interface BucketLister {
  list(token: string, mayList: MayList): Promise<{ entries: BucketEntry[]; unavailable: string[] }>;
  /** A bucket was created or deleted through osp: the next listing asks again. */
  forget(): void;
}

export function createBucketLister(config: Config, call: BackendCall): BucketLister {
  let cache = new TtlCache<Outcome>(10_000);
  // credentials from the fetchCredentials hook differ per client; static ones are shared
  const cacheKey = (kind: string, name: string, b: Omit<BucketConfig, "name" | "backendBucket">, token: string) =>
    JSON.stringify([kind, name, b.accessKey || b.apiKey ? "" : token]);
  const settle = (p: Promise<BucketEntry[]>): Promise<Outcome> =>
    p.then((entries) => ({ ok: true as const, entries }), (e) => ({ ok: false as const, why: e instanceof Error ? e.message : String(e) }));

  const exists = (token: string, bucket: BucketConfig) =>
    cache.get(cacheKey("bucket", bucket.name, bucket, token), CACHE_MS, () =>
      settle(call(token, bucket, "HEAD", upstreamUrl(bucket, "", [])).then((r) => {
        if (r.status === 404) return [];
        if (r.status >= 500) throw new Error(`HTTP ${r.status}`);
        return [{ name: bucket.name }];
      })),
    );
  const routed = (token: string, route: RouteConfig) => {
    // the backend's service endpoint, signed as a request of the route
    const probe: BucketConfig = { ...route.bucket, name: route.match, backendBucket: "" };
    return cache.get(cacheKey("route", route.match, route.bucket, token), CACHE_MS, () =>
      settle(call(token, probe, "GET", `${route.bucket.endpoint.origin}/`).then(async (r) => {
        if (r.status !== 200 || !r.body) {
          r.body?.discard();
          throw new Error(`HTTP ${r.status}`);
        }
        return bucketsOfListing(new TextDecoder().decode(await r.body.bytes())).flatMap((b) => {
          const name = frontendName(config, route, b.name);
          return name === undefined ? [] : [{ name, created: b.created }];
        });
      })),
    );
  };

  return {
    async list(token, mayList) {
      const entries: BucketEntry[] = [];
      const unavailable: string[] = [];
      // configured buckets are asked about before their backend is; routed names once it has named them
      const add = async (what: string, outcome: Promise<Outcome>, allowed?: true) => {
        const o = await outcome;
        if (!o.ok) return void unavailable.push(what);
        for (const e of o.entries) if (allowed || (await mayList(bucketFor(config, e.name)))) entries.push(e);
      };
      const tasks: (() => Promise<void>)[] = [
        ...[...config.buckets.values()].map((b) => async () => {
          if (await mayList(b)) await add(b.name, exists(token, b), true);
        }),
        ...config.routes.map((r) => () => add(r.match, routed(token, r))),
      ];
      await inPool(tasks, CONCURRENCY);
      return { entries, unavailable };
    },
    forget() {
      cache = new TtlCache<Outcome>(10_000);
    },
  };
}

async function inPool(tasks: (() => Promise<void>)[], size: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(size, tasks.length) }, worker));
}

export const methodNotAllowed = () => new S3Error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
