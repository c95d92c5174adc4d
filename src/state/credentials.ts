/** Backend credentials of a bucket: from osp.toml, or from the fetchCredentials hook, cached per (token, bucket). */
import type { BucketConfig, Config } from "../config.ts";
import { S3Error } from "../errors.ts";
import { callHook, type BackendCredentials, type Hooks } from "../hooks.ts";
import { TtlCache } from "./cache.ts";
import { isFieldValue } from "../http1/response.ts";
import type { TokenSource } from "./iam.ts";

/** HMAC keys, or an IBM COS IAM API key still to be exchanged for a bearer token. */
export type ResolvedCredentials = ({ kind: "hmac" } & BackendCredentials) | { kind: "apikey"; apiKey: string };

const noCredentials = (why: string) => new S3Error(403, "AccessDenied", `No backend credentials for this bucket (${why})`);

export function normalizeCredentials(v: unknown): ResolvedCredentials {
  if (typeof v === "string" && v) return { kind: "apikey", apiKey: v };
  if (typeof v === "object" && v !== null) {
    const c = v as Record<string, unknown>;
    if (typeof c.accessKey === "string" && typeof c.secretKey === "string" && c.accessKey && c.secretKey) {
      // both go into the backend request's headers, where a line end would start another header
      if (!isFieldValue(c.accessKey) || (typeof c.sessionToken === "string" && !isFieldValue(c.sessionToken)))
        throw new Error("fetchCredentials returned an access key or session token with a control character");
      return { kind: "hmac", accessKey: c.accessKey, secretKey: c.secretKey, sessionToken: typeof c.sessionToken === "string" ? c.sessionToken : undefined };
    }
  }
  throw new Error("fetchCredentials returned neither an API key string nor {accessKey, secretKey}");
}

export type CredentialSource = (token: string, bucket: BucketConfig) => Promise<ResolvedCredentials>;

export function createCredentialSource(config: Config, hooks: Hooks): CredentialSource {
  const cache = new TtlCache<ResolvedCredentials>(100_000);
  const hook = hooks.fetchCredentials;
  return async (token, bucket) => {
    if (bucket.accessKey && bucket.secretKey) return { kind: "hmac", accessKey: bucket.accessKey, secretKey: bucket.secretKey };
    if (bucket.apiKey) return { kind: "apikey", apiKey: bucket.apiKey };
    if (!hook) throw noCredentials("none configured and no fetchCredentials hook");
    return cache.get(JSON.stringify([token, bucket.name]), bucket.ttl * 1000, () =>
      callHook("fetchCredentials", config.hooks.timeoutMs, async () => normalizeCredentials(await hook(token, bucket.name)), noCredentials),
    );
  };
}

/** How a request proves itself to its backend: a SigV4 signature with HMAC keys, or an IAM bearer token. */
export type UpstreamAuth = ({ kind: "hmac" } & BackendCredentials) | { kind: "bearer"; token: string };

export async function upstreamAuth(c: ResolvedCredentials, tokens: TokenSource): Promise<UpstreamAuth> {
  return c.kind === "apikey" ? { kind: "bearer", token: await tokens(c.apiKey) } : c;
}

/** Whether two buckets' credentials are one backend account, so that a server-side copy can work. */
export function sameAccount(a: ResolvedCredentials, b: ResolvedCredentials): boolean {
  return a.kind === "hmac" && b.kind === "hmac" ? a.accessKey === b.accessKey : a.kind === "apikey" && b.kind === "apikey" && a.apiKey === b.apiKey;
}
