import { parse as parseToml } from "smol-toml";
import { dirname, resolve } from "node:path";
import { readFileSync } from "node:fs";
import { DEFAULT_IAM_ENDPOINT } from "./state/iam.ts";
import { isFieldValue } from "./http1/response.ts";

/** The validated configuration: what osp.toml says, with defaults filled in and ${VAR}s read. */
export interface Config {
  server: ServerConfig;
  keys: KeyConfig[];
  hooks: HooksConfig;
  buckets: Map<string, BucketConfig>;
  /** Buckets not named one by one: the first route whose pattern matches a name serves it. */
  routes: RouteConfig[];
  state: StateConfig;
}

export interface ServerConfig {
  bind: string;
  /** Plain HTTP listener; absent when only HTTPS is configured. */
  httpPort?: number;
  /** HTTPS listener (HTTP/1.1), with the certificate and key files below. */
  httpsPort?: number;
  tlsCert?: string;
  tlsKey?: string;
  /** Port of the Prometheus /metrics listener; none when absent. */
  metricsPort?: number;
  /** Port of the /healthz and /readyz listener (may be metricsPort); none when absent. */
  adminPort?: number;
  /** Worker processes; 0 in the file means one per CPU. */
  workers: number;
  /** Seconds to wait for a backend's response headers before answering 504. */
  upstreamTimeout: number;
  /** Largest accepted difference between the client's clock and ours, in seconds. */
  maxClockSkew: number;
  /** Whether clients may sign with Signature Version 2 (verified, then re-signed with SigV4). */
  sigv2: boolean;
  accessLog: boolean;
  /** IBM Cloud IAM token endpoint, where API keys are exchanged for bearer tokens. */
  iamEndpoint: string;
  /** Seconds to wait for the IAM token endpoint, then 504. */
  iamTimeout: number;
  /**
   * A request body must deliver at least bodyTimeout × minBodyRate bytes in every bodyTimeout
   * seconds that osp waits for it, or it is answered RequestTimeout.
   */
  bodyTimeout: number;
  minBodyRate: number;
  /** Requests one worker sends to one backend endpoint at once; more wait in a queue. */
  maxBackendRequests: number;
  /** Seconds a request waits in that queue before it is answered SlowDown. */
  backendQueueTimeout: number;
  /** Seconds that requests in flight may take to finish after SIGTERM, before osp exits anyway. */
  drainTimeout: number;
  /** Virtual-hosted frontend: a Host of BUCKET.DOMAIN names the bucket (lower case, no port). */
  domains: string[];
  /** How often one presigned URL may be used; 0 = no limit. Buckets may say otherwise. */
  presignMaxUses: number;
}

/** Where state shared beyond one process is kept. */
export interface StateConfig {
  /** Redis (or Valkey) shared by several osp instances for presigned URL use counts; without it each instance counts alone. */
  redisUrl?: string;
}

/** A frontend keypair and what it may do. */
export interface KeyConfig {
  accessKey: string;
  secretKey: string;
  /** Frontend bucket names (or glob patterns) this key may use; "*" for all. */
  buckets: string[] | "*";
  readOnly: boolean;
}

export interface HooksConfig {
  /** Absolute path of the hooks module, if any. */
  module?: string;
  /** A hook call that takes longer denies the request. */
  timeoutMs: number;
}

export interface BucketConfig {
  /** The name clients use. */
  name: string;
  /** scheme://host[:port] of the backend. */
  endpoint: URL;
  region: string;
  addressingStyle: "virtual" | "path";
  /** The bucket's name on its backend. */
  backendBucket: string;
  /** Static backend credentials; without them the fetchCredentials hook is asked. */
  accessKey?: string;
  secretKey?: string;
  /** IBM COS IAM API key, exchanged for a bearer token. */
  apiKey?: string;
  /** IBM COS service instance, sent as ibm-service-instance-id with bearer tokens (bucket creation needs it). */
  serviceInstanceId?: string;
  /** TLS to an https backend: a private CA (PEM text) and, for development only, no verification. */
  tls: { ca?: string; rejectUnauthorized: boolean };
  /** Seconds that credentials and authorization decisions for this bucket are cached. */
  ttl: number;
  /** Read operations anyone may do without signing (a public bucket); empty for none. */
  anonymous: string[];
  /** How often one presigned URL for this bucket may be used; 0 = no limit. */
  presignMaxUses: number;
  /** CORS rules, as S3's CORSRule: the first that matches answers. None: browsers get no CORS access. */
  cors: CorsRule[];
}

export interface CorsRule {
  /** Origins, each with at most one "*" wildcard ("https://*.example.com", "*"). */
  allowedOrigins: string[];
  allowedMethods: string[];
  /** Request headers a preflight may ask for, lower-case, each with at most one "*". */
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAge?: number;
}

/** A pattern of frontend names served by one backend, each under a name made from a template. */
export interface RouteConfig {
  /** The glob as written ("logs-*"): `*` is any run of characters, `?` one. */
  match: string;
  pattern: RegExp;
  /** The backend name is prefix + frontend name + suffix ("{bucket}" in backend_bucket). */
  prefix: string;
  suffix: string;
  /** Everything a bucket of this route shares; name and backendBucket are per request. */
  bucket: Omit<BucketConfig, "name" | "backendBucket">;
}

export class ConfigError extends Error {
  /** `where` names the field; without it the problem is with the file as a whole. */
  constructor(where: string | undefined, problem: string) {
    super(where ? `${where}: ${problem}` : problem);
    this.name = "ConfigError";
  }
}

type Table = Record<string, unknown>;
type Kind = "string" | "integer" | "boolean" | "string[]" | "table[]";

const isTable = (v: unknown): v is Table => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "number" || typeof v === "bigint") return Number.isInteger(Number(v)) ? "integer" : "float";
  if (v instanceof Date) return "date";
  return typeof v === "object" ? "table" : typeof v;
}

/** Reads the fields of one table: rejects unknown ones and wrong types, expands ${VAR} in strings. */
function fields(table: unknown, where: string, spec: Record<string, Kind>, env: Record<string, string | undefined>) {
  if (!isTable(table)) throw new ConfigError(where, `expected a table, found ${kindOf(table)}`);
  for (const k of Object.keys(table)) {
    if (!(k in spec)) throw new ConfigError(`${where}.${k}`, `unknown field (known: ${Object.keys(spec).join(", ")})`);
  }
  const get = <T>(name: string): T | undefined => {
    const v = table[name];
    if (v === undefined) return undefined;
    const at = `${where}.${name}`;
    const kind = spec[name]!;
    if (kind === "string[]") {
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
        throw new ConfigError(at, `expected an array of strings, found ${kindOf(v)}`);
      return v.map((x) => expand(x, at, env)) as T;
    }
    if (kind === "table[]") {
      if (!Array.isArray(v)) throw new ConfigError(at, `expected an array of tables, found ${kindOf(v)}`);
      return v as T;
    }
    if (kindOf(v) !== kind) throw new ConfigError(at, `expected ${kind}, found ${kindOf(v)}`);
    if (kind === "string") return expand(v as string, at, env) as T;
    return (kind === "integer" ? Number(v) : v) as T;
  };
  return get;
}

function expand(s: string, where: string, env: Record<string, string | undefined>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined) throw new ConfigError(where, `environment variable ${name} is not set`);
    return v;
  });
}

function inRange(v: number, lo: number, hi: number, where: string): number {
  if (v < lo || v > hi) throw new ConfigError(where, `must be between ${lo} and ${hi}, found ${v}`);
  return v;
}

function parseUrl(s: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ConfigError(where, `not a valid URL: ${JSON.stringify(s)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError(where, `scheme must be http or https, found ${url.protocol.slice(0, -1)}`);
  return url;
}

function parseEndpoint(s: string, where: string): URL {
  const url = parseUrl(s, where);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username || url.password)
    throw new ConfigError(where, "must be scheme://host[:port] with no path, query or credentials");
  return url;
}

/** Redis URLs as Bun.redis reads them; a password in one is never shown. */
function parseRedisUrl(s: string, where: string): string {
  let url: URL | undefined;
  try {
    url = new URL(s);
  } catch {}
  if (!url || !/^(redis|rediss|valkey|valkeys):$/.test(url.protocol) || !url.hostname)
    throw new ConfigError(where, "must be redis://[user:password@]host[:port][/db] (or rediss:// for TLS)");
  return s;
}

const MAX_USES = 1_000_000;

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function readCertificates(path: string, where: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(where, `cannot read ${path} (${(e as { code?: string }).code ?? e})`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(where, `${path} holds no PEM certificate`);
  return pem;
}

const CORS_METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"];

function corsRule(rule: unknown, where: string, env: Record<string, string | undefined>): CorsRule {
  const f = fields(rule, where, {
    allowed_origins: "string[]", allowed_methods: "string[]", allowed_headers: "string[]", expose_headers: "string[]", max_age: "integer",
  }, env);
  const oneWildcard = (name: string, list: string[]) => {
    const bad = list.find((v) => v === "" || v.split("*").length > 2);
    if (bad !== undefined) throw new ConfigError(`${where}.${name}`, `${JSON.stringify(bad)}: each value must be non-empty with at most one "*"`);
    return list;
  };
  const origins = f<string[]>("allowed_origins");
  if (!origins?.length) throw new ConfigError(`${where}.allowed_origins`, "is required (at least one origin, or \"*\")");
  const methods = f<string[]>("allowed_methods");
  if (!methods?.length) throw new ConfigError(`${where}.allowed_methods`, `is required (some of ${CORS_METHODS.join(", ")})`);
  const badMethod = methods.find((m) => !CORS_METHODS.includes(m));
  if (badMethod !== undefined) throw new ConfigError(`${where}.allowed_methods`, `${JSON.stringify(badMethod)} is not one of ${CORS_METHODS.join(", ")}`);
  const expose = f<string[]>("expose_headers") ?? [];
  if (expose.some((h) => h.includes("*"))) throw new ConfigError(`${where}.expose_headers`, "wildcards are not allowed here");
  const maxAge = f<number>("max_age");
  return {
    allowedOrigins: oneWildcard("allowed_origins", origins),
    allowedMethods: methods,
    allowedHeaders: oneWildcard("allowed_headers", f<string[]>("allowed_headers") ?? []).map((h) => h.toLowerCase()),
    exposeHeaders: expose,
    maxAge: maxAge === undefined ? undefined : inRange(maxAge, 0, 86400 * 365, `${where}.max_age`),
  };
}

/** Validates a parsed TOML document. `baseDir` resolves relative paths (hooks module, certificates). */
export function validateConfig(doc: unknown, env: Record<string, string | undefined>, baseDir: string): Config {
  if (!isTable(doc)) throw new ConfigError(undefined, "expected a TOML document");
  const d = doc;
  for (const k of Object.keys(d)) {
    if (!["server", "keys", "hooks", "buckets", "routes", "state"].includes(k))
      throw new ConfigError(k, "unknown section (known: server, keys, hooks, buckets, routes, state)");
  }

  const s = fields(d.server ?? {}, "server", {
    bind: "string", http_port: "integer", https_port: "integer", tls_cert: "string", tls_key: "string",
    metrics_port: "integer", admin_port: "integer", workers: "integer", upstream_timeout: "integer",
    max_clock_skew: "integer", sigv2: "boolean", access_log: "boolean", iam_endpoint: "string", iam_timeout: "integer",
    body_timeout: "integer", min_body_rate: "integer", max_backend_requests: "integer", backend_queue_timeout: "integer",
    drain_timeout: "integer",
    domains: "string[]",
    presign_max_uses: "integer",
  }, env);
  const port = (name: string) => (s<number>(name) === undefined ? undefined : inRange(s<number>(name)!, 0, 65535, `server.${name}`));
  const httpsPort = port("https_port");
  const tlsCert = s<string>("tls_cert") ?? env.TLS_CERT_PATH;
  const tlsKey = s<string>("tls_key") ?? env.TLS_KEY_PATH;
  if (httpsPort !== undefined && (!tlsCert || !tlsKey))
    throw new ConfigError("server.https_port", "needs tls_cert and tls_key (or TLS_CERT_PATH and TLS_KEY_PATH)");
  const server: ServerConfig = {
    bind: s<string>("bind") ?? "0.0.0.0",
    httpPort: port("http_port") ?? (httpsPort === undefined ? 6190 : undefined),
    httpsPort,
    tlsCert: tlsCert && resolve(baseDir, tlsCert),
    tlsKey: tlsKey && resolve(baseDir, tlsKey),
    metricsPort: port("metrics_port"),
    adminPort: port("admin_port"),
    workers: inRange(s<number>("workers") ?? 0, 0, 256, "server.workers"),
    upstreamTimeout: inRange(s<number>("upstream_timeout") ?? 120, 1, 86400, "server.upstream_timeout"),
    maxClockSkew: inRange(s<number>("max_clock_skew") ?? 900, 1, 86400, "server.max_clock_skew"),
    sigv2: s<boolean>("sigv2") ?? true,
    accessLog: s<boolean>("access_log") ?? false,
    iamEndpoint: parseUrl(s<string>("iam_endpoint") ?? DEFAULT_IAM_ENDPOINT, "server.iam_endpoint").href,
    iamTimeout: inRange(s<number>("iam_timeout") ?? 10, 1, 600, "server.iam_timeout"),
    bodyTimeout: inRange(s<number>("body_timeout") ?? 20, 1, 3600, "server.body_timeout"),
    minBodyRate: inRange(s<number>("min_body_rate") ?? 500, 0, 1 << 30, "server.min_body_rate"),
    maxBackendRequests: inRange(s<number>("max_backend_requests") ?? 128, 1, 100_000, "server.max_backend_requests"),
    backendQueueTimeout: inRange(s<number>("backend_queue_timeout") ?? 10, 0, 3600, "server.backend_queue_timeout"),
    drainTimeout: inRange(s<number>("drain_timeout") ?? 30, 0, 86400, "server.drain_timeout"),
    domains: (s<string[]>("domains") ?? []).map((name, i) => {
      if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(name))
        throw new ConfigError(`server.domains[${i}]`, `a lower-case DNS name without port, found ${JSON.stringify(name)}`);
      return name;
    }),
    presignMaxUses: inRange(s<number>("presign_max_uses") ?? 0, 0, MAX_USES, "server.presign_max_uses"),
  };

  // one port, one listener: only the admin and metrics listeners may share theirs
  const ports = [["http_port", server.httpPort], ["https_port", server.httpsPort], ["metrics_port", server.metricsPort], ["admin_port", server.adminPort]] as const;
  for (const [i, [name, p]] of ports.entries()) {
    const other = ports.slice(0, i).find(([o, q]) => p !== undefined && p !== 0 && q === p && !(o === "metrics_port" && name === "admin_port"));
    if (other) throw new ConfigError(`server.${name}`, `${p} is also ${other[0]}`);
  }

  const st = fields(d.state ?? {}, "state", { redis_url: "string" }, env);
  const state: StateConfig = { redisUrl: st<string>("redis_url") && parseRedisUrl(st<string>("redis_url")!, "state.redis_url") };

  const rawKeys = d.keys ?? [];
  if (!Array.isArray(rawKeys)) throw new ConfigError("keys", "expected an array of tables ([[keys]])");
  const keys = rawKeys.map((k, i): KeyConfig => {
    const where = `keys[${i}]`;
    const f = fields(k, where, { access_key: "string", secret_key: "string", buckets: "string[]", read_only: "boolean" }, env);
    const accessKey = f<string>("access_key");
    const secretKey = f<string>("secret_key");
    if (!accessKey) throw new ConfigError(`${where}.access_key`, "is required");
    if (!secretKey) throw new ConfigError(`${where}.secret_key`, "is required");
    const buckets = f<string[]>("buckets");
    return { accessKey, secretKey, buckets: !buckets || buckets.includes("*") ? "*" : buckets, readOnly: f<boolean>("read_only") ?? false };
  });
  const seen = new Set<string>();
  keys.forEach((k, i) => {
    if (seen.has(k.accessKey)) throw new ConfigError(`keys[${i}].access_key`, `duplicate access key ${k.accessKey}`);
    seen.add(k.accessKey);
  });

  const h = fields(d.hooks ?? {}, "hooks", { module: "string", timeout_ms: "integer" }, env);
  const module = h<string>("module");
  const hooks: HooksConfig = {
    module: module ? resolve(baseDir, module) : undefined,
    timeoutMs: inRange(h<number>("timeout_ms") ?? 5000, 1, 600_000, "hooks.timeout_ms"),
  };

  const rawBuckets = d.buckets ?? {};
  if (!isTable(rawBuckets)) throw new ConfigError("buckets", "expected a table of [buckets.NAME] tables");
  const buckets = new Map<string, BucketConfig>();
  for (const [name, b] of Object.entries(rawBuckets)) {
    const where = `buckets.${name}`;
    if (!BUCKET_NAME.test(name)) throw new ConfigError(where, "bucket names are 3-63 characters of a-z, 0-9, '.' and '-'");
    const f = fields(b, where, BACKEND_FIELDS, env);
    const backendBucket = f<string>("backend_bucket") ?? name;
    if (!BUCKET_NAME.test(backendBucket)) throw new ConfigError(`${where}.backend_bucket`, "not a valid bucket name");
    buckets.set(name, { name, backendBucket, ...backendOf(f, where, baseDir, env, server.presignMaxUses) });
  }

  const rawRoutes = d.routes ?? [];
  if (!Array.isArray(rawRoutes)) throw new ConfigError("routes", "expected an array of tables ([[routes]])");
  const routes = rawRoutes.map((r, i): RouteConfig => {
    const where = `routes[${i}]`;
    const f = fields(r, where, { ...BACKEND_FIELDS, match: "string" }, env);
    const match = f<string>("match");
    if (!match) throw new ConfigError(`${where}.match`, "is required");
    if (!/^[a-z0-9.*?-]+$/.test(match)) throw new ConfigError(`${where}.match`, "a glob of a-z, 0-9, '.', '-', '*' and '?'");
    const template = f<string>("backend_bucket") ?? "{bucket}";
    const parts = template.split("{bucket}");
    if (parts.length !== 2 || !/^[a-z0-9.-]*$/.test(parts.join("")))
      throw new ConfigError(`${where}.backend_bucket`, `a template with {bucket} once and otherwise a-z, 0-9, '.' and '-', found ${JSON.stringify(template)}`);
    return { match, pattern: globPattern(match), prefix: parts[0]!, suffix: parts[1]!, bucket: backendOf(f, where, baseDir, env, server.presignMaxUses) };
  });

  for (const [i, k] of keys.entries()) {
    if (k.buckets === "*") continue;
    const unknown = k.buckets.find((b) => !isGlob(b) && !buckets.has(b) && !routes.some((r) => r.pattern.test(b)));
    if (unknown) throw new ConfigError(`keys[${i}].buckets`, `bucket ${unknown} is not configured and matches no route`);
  }
  return { server, keys, hooks, buckets, routes, state };
}

const BACKEND_FIELDS: Record<string, Kind> = {
  endpoint: "string", region: "string", addressing_style: "string", backend_bucket: "string",
  access_key: "string", secret_key: "string", apikey: "string", service_instance_id: "string", ttl: "integer",
  ca_file: "string", tls_verify: "boolean", anonymous: "string[]", cors: "table[]", presign_max_uses: "integer",
};

/** Operations a public bucket may open to anonymous clients: reads of objects and listings. */
export const ANONYMOUS_OPERATIONS = ["GetObject", "HeadObject", "ListObjects", "ListObjectsV2", "ListObjectVersions", "HeadBucket", "GetBucketLocation"];

/** The backend of a bucket or a route, from the fields they share. */
function backendOf(
  f: ReturnType<typeof fields>, where: string, baseDir: string, env: Record<string, string | undefined>, presignMaxUses: number,
): Omit<BucketConfig, "name" | "backendBucket"> {
  const endpoint = f<string>("endpoint");
  if (!endpoint) throw new ConfigError(`${where}.endpoint`, "is required");
  const style = f<string>("addressing_style") ?? "virtual";
  if (style !== "virtual" && style !== "path")
    throw new ConfigError(`${where}.addressing_style`, `must be "virtual" or "path", found ${JSON.stringify(style)}`);
  const accessKey = f<string>("access_key");
  const secretKey = f<string>("secret_key");
  const apiKey = f<string>("apikey");
  if (!accessKey !== !secretKey) throw new ConfigError(where, "access_key and secret_key go together");
  if (apiKey && accessKey) throw new ConfigError(where, "apikey and access_key/secret_key are exclusive");
  // they go into the backend request's headers, where a line end would start another header
  for (const [name, v] of [["access_key", accessKey], ["region", f<string>("region")], ["service_instance_id", f<string>("service_instance_id")]] as const)
    if (v !== undefined && !isFieldValue(v)) throw new ConfigError(`${where}.${name}`, "holds a control character");
  const url = parseEndpoint(endpoint, `${where}.endpoint`);
  const caFile = f<string>("ca_file");
  const tlsVerify = f<boolean>("tls_verify");
  if ((caFile !== undefined || tlsVerify !== undefined) && url.protocol !== "https:")
    throw new ConfigError(where, "ca_file and tls_verify are for https endpoints");
  const anonymous = f<string[]>("anonymous") ?? [];
  const notRead = anonymous.find((op) => !ANONYMOUS_OPERATIONS.includes(op));
  if (notRead) throw new ConfigError(`${where}.anonymous`, `${notRead} cannot be anonymous (possible: ${ANONYMOUS_OPERATIONS.join(", ")})`);
  // an anonymous request has no client to ask the fetchCredentials hook for
  if (anonymous.length > 0 && !accessKey && !apiKey) throw new ConfigError(`${where}.anonymous`, "needs the backend's access_key/secret_key or apikey");
  return {
    endpoint: url,
    region: f<string>("region") ?? "us-east-1",
    addressingStyle: style,
    accessKey, secretKey, apiKey,
    serviceInstanceId: f<string>("service_instance_id"),
    tls: { ca: caFile === undefined ? undefined : readCertificates(resolve(baseDir, caFile), `${where}.ca_file`), rejectUnauthorized: tlsVerify ?? true },
    ttl: inRange(f<number>("ttl") ?? 300, 0, 86400 * 7, `${where}.ttl`),
    anonymous,
    cors: (f<unknown[]>("cors") ?? []).map((rule, i) => corsRule(rule, `${where}.cors[${i}]`, env)),
    presignMaxUses: inRange(f<number>("presign_max_uses") ?? presignMaxUses, 0, MAX_USES, `${where}.presign_max_uses`),
  };
}

export const isGlob = (s: string) => /[*?]/.test(s);

/** A glob of bucket names as a regular expression: `*` any run of characters, `?` one. */
export function globPattern(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.-]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
}

/** Parses and validates osp.toml text. */
export function parseConfig(text: string, env: Record<string, string | undefined>, baseDir: string): Config {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (e) {
    // smol-toml's message is a code excerpt after one line; its position is in line and column
    const { message, line, column } = e as Error & { line?: number; column?: number };
    const at = line ? ` at line ${line}, column ${column}` : "";
    throw new ConfigError(undefined, `not valid TOML${at}: ${message.split("\n")[0]!.replace(/^Invalid TOML document: /, "")}`);
  }
  return validateConfig(doc, env, baseDir);
}

/** The text of osp.toml. */
export async function readConfigText(path: string): Promise<string> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new ConfigError(undefined, "no such file");
  return file.text();
}

/** Relative paths in osp.toml (hooks module, certificates) are relative to the file. */
export const configDir = (path: string) => dirname(resolve(path));

export async function loadConfig(path: string, env = process.env): Promise<Config> {
  return parseConfig(await readConfigText(path), env, configDir(path));
}
