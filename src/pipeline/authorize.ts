/** authorize: may this identity do this operation here? Declarative key rules, then the authorize hook. */
import { globPattern, isGlob, type BucketConfig, type Config, type KeyConfig } from "../config.ts";
import { accessDenied } from "../errors.ts";
import { callHook, type AuthorizeRequest, type Hooks } from "../hooks.ts";
import { TtlCache } from "../state/cache.ts";
import { isReadOnly } from "./operation.ts";
import type { ParsedRequest } from "./request.ts";

const globs = new Map<string, RegExp>();
const matches = (entry: string, bucket: string) =>
  entry === bucket || (isGlob(entry) && (globs.get(entry) ?? globs.set(entry, globPattern(entry)).get(entry)!).test(bucket));

/** What a keystore entry allows, by itself. */
export function ruleAllows(rule: KeyConfig, bucket: string, operation: string): boolean {
  if (rule.buckets !== "*" && !rule.buckets.some((entry) => matches(entry, bucket))) return false;
  return !rule.readOnly || isReadOnly(operation);
}

export function hookRequest(req: ParsedRequest, bucket: string, key: string, operation: string): AuthorizeRequest {
  const headers: Record<string, string> = {};
  for (const [name, values] of req.headers) if (name !== "authorization") headers[name] = values.join(",");
  const query = Object.fromEntries(req.query.filter(([k]) => k !== "X-Amz-Signature" && k !== "X-Amz-Credential"));
  return { method: req.method, bucket, key, operation, query, headers, clientAddress: req.clientAddress };
}

export type Authorizer = (token: string, req: ParsedRequest, bucket: BucketConfig, operation: string, key: string) => Promise<boolean>;

export function createAuthorizer(config: Config, hooks: Hooks): Authorizer {
  const rules = new Map(config.keys.map((k) => [k.accessKey, k]));
  const decisions = new TtlCache<boolean>(100_000);
  const hook = hooks.authorize;
  return async (token, req, bucket, operation, key) => {
    const rule = rules.get(token);
    if (rule && !ruleAllows(rule, bucket.name, operation)) return false;
    if (!hook) return true;
    const cacheKey = JSON.stringify([token, bucket.name, operation, key]);
    const allowed = await decisions.get(cacheKey, bucket.ttl * 1000, () =>
      callHook("authorize", config.hooks.timeoutMs, () => hook(token, bucket.name, hookRequest(req, bucket.name, key, operation)), accessDenied),
    );
    return allowed === true;
  };
}

/** Throws AccessDenied unless allowed. */
export async function requireAllowed(authorize: Authorizer, ...args: Parameters<Authorizer>): Promise<void> {
  if (!(await authorize(...args))) throw accessDenied();
}
