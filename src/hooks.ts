/**
 * The hooks a user writes, as an ordinary TypeScript module. Each is optional and may be sync
 * or async. `token` is the client's access key id.
 */
import { S3Error } from "./errors.ts";

export interface BackendCredentials {
  accessKey: string;
  secretKey: string;
  sessionToken?: string;
}

/** What authorize() is told about a request. Header names are lower case; no Authorization header. */
export interface AuthorizeRequest {
  method: string;
  bucket: string;
  key: string;
  /** The S3 operation, e.g. GetObject, PutObject, ListObjectsV2, ListBuckets. */
  operation: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  clientAddress: string;
}

type MaybePromise<T> = T | Promise<T>;

export interface Hooks {
  /** The secret of a frontend access key that is not in the keystore, or null. */
  lookupSecret?(accessKey: string): MaybePromise<string | null | undefined>;
  /** Backend credentials for a bucket that has none in osp.toml: HMAC keys, or an IBM COS API key string. */
  fetchCredentials?(token: string, bucket: string): MaybePromise<string | BackendCredentials>;
  /** Whether this client may make this request. */
  authorize?(token: string, bucket: string, request: AuthorizeRequest): MaybePromise<boolean>;
}

/** Imports the module afresh each time, so that a reload picks up its changes (not those of modules it imports). */
export async function loadHooks(path: string): Promise<Hooks> {
  delete require.cache[path];
  const mod = await import(path);
  const hooks: Hooks = {};
  for (const name of ["lookupSecret", "fetchCredentials", "authorize"] as const) {
    const fn = mod[name] ?? mod.default?.[name];
    if (fn === undefined) continue;
    if (typeof fn !== "function") throw new Error(`hooks module ${path}: ${name} is not a function`);
    hooks[name] = fn;
  }
  return hooks;
}

/** Calls a hook with a deadline; a throw or a timeout becomes an S3 error, never a crash. */
export async function callHook<T>(name: string, timeoutMs: number, call: () => MaybePromise<T>, onError: (why: string) => S3Error): Promise<T> {
  let timer: Timer | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(call), deadline]);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    console.error(`osp: hook ${name} failed: ${why}`);
    throw onError(`${name} hook failed`);
  } finally {
    clearTimeout(timer);
  }
}
