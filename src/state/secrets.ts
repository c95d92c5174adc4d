/** Frontend secrets: the keystore of osp.toml first, then the lookupSecret hook (cached briefly, misses too). */
import type { Config } from "../config.ts";
import { S3Error } from "../errors.ts";
import { callHook, type Hooks } from "../hooks.ts";
import { TtlCache } from "./cache.ts";
import type { SecretLookup } from "../pipeline/authenticate.ts";

const HOOK_SECRET_TTL_MS = 60_000;

export function createSecretLookup(config: Config, hooks: Hooks): SecretLookup {
  const keystore = new Map(config.keys.map((k) => [k.accessKey, k.secretKey]));
  const hook = hooks.lookupSecret;
  const cache = new TtlCache<string | null>(100_000);
  const unavailable = (why: string) => new S3Error(503, "ServiceUnavailable", `Cannot check the access key now (${why})`);
  return async (accessKey) => {
    const known = keystore.get(accessKey);
    if (known !== undefined) return known;
    if (!hook) return null;
    return cache.get(accessKey, HOOK_SECRET_TTL_MS, () =>
      callHook("lookupSecret", config.hooks.timeoutMs, async () => (await hook(accessKey)) || null, unavailable),
    );
  };
}
