/**
 * Typed access to the environment that test/harness/run.ts exports to the suites
 * (see the contract at the top of run.ts), plus small helpers for tests that start
 * their own osp instances against the harness' MinIO backends.
 *
 *   import { testEnv, bucketToml } from "../harness/env.ts";
 *   const env = testEnv();   // throws a clear error when not run via `bash test/run.sh`
 */

export interface Backend {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface TestEnv {
  ospEndpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  limitedAccessKey: string;
  limitedSecretKey: string;
  bucketA: string;
  bucketB: string;
  bucketBBackend: string;
  /** On versitygw, the second S3 implementation; its backend name differs. */
  bucketV: string;
  bucketVBackend: string;
  bucketDown: string;
  minioA: Backend;
  minioB: Backend;
  versitygw: Backend;
  /** a loopback port nobody listens on */
  downPort: number;
}

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suites through the harness (bash test/run.sh)`);
  return v;
}

export function haveTestEnv(): boolean {
  return !!process.env.OSP_TEST_BACKENDS_JSON;
}

export function testEnv(): TestEnv {
  const backends = JSON.parse(need("OSP_TEST_BACKENDS_JSON")) as {
    a: Backend;
    b: Backend;
    v: Backend;
    downPort: number;
  };
  return {
    ospEndpoint: need("OSP_ENDPOINT"),
    region: need("OSP_REGION"),
    accessKey: need("OSP_ACCESS_KEY"),
    secretKey: need("OSP_SECRET_KEY"),
    limitedAccessKey: need("OSP_LIMITED_ACCESS_KEY"),
    limitedSecretKey: need("OSP_LIMITED_SECRET_KEY"),
    bucketA: need("OSP_BUCKET_A"),
    bucketB: need("OSP_BUCKET_B"),
    bucketBBackend: need("OSP_BUCKET_B_BACKEND"),
    bucketV: need("OSP_BUCKET_V"),
    bucketVBackend: need("OSP_BUCKET_V_BACKEND"),
    bucketDown: need("OSP_BUCKET_DOWN"),
    minioA: backends.a,
    minioB: backends.b,
    versitygw: backends.v,
    downPort: backends.downPort,
  };
}

const q = (s: string) => JSON.stringify(s); // a JSON string is a valid TOML basic string for our values

/** `[buckets.<name>]` TOML table pointing at a backend (path-style, us-east-1 unless overridden). */
export function bucketToml(
  name: string,
  backend: Pick<Backend, "endpoint" | "accessKey" | "secretKey"> & { region?: string },
  extra: Record<string, string | number | boolean | string[]> = {},
): string {
  const lines = [
    `[buckets.${name}]`,
    `endpoint = ${q(backend.endpoint)}`,
    `region = ${q(backend.region ?? "us-east-1")}`,
    `addressing_style = "path"`,
    `access_key = ${q(backend.accessKey)}`,
    `secret_key = ${q(backend.secretKey)}`,
  ];
  for (const [k, v] of Object.entries(extra)) {
    lines.push(`${k} = ${Array.isArray(v) ? `[${v.map(q).join(", ")}]` : typeof v === "string" ? q(v) : String(v)}`);
  }
  return lines.join("\n") + "\n";
}

/** `[[keys]]` TOML entry. */
export function keyToml(accessKey: string, secretKey: string, buckets?: string[]): string {
  let s = `[[keys]]\naccess_key = ${q(accessKey)}\nsecret_key = ${q(secretKey)}\n`;
  if (buckets) s += `buckets = [${buckets.map(q).join(", ")}]\n`;
  return s;
}

/** `[server]` TOML table on 127.0.0.1. */
export function serverToml(port: number, extra: Record<string, string | number | boolean> = {}): string {
  let s = `[server]\nhttp_port = ${port}\nbind = "127.0.0.1"\n`;
  for (const [k, v] of Object.entries(extra)) s += `${k} = ${typeof v === "string" ? q(v) : String(v)}\n`;
  return s;
}
