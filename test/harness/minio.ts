/**
 * Test harness: start and stop throwaway MinIO servers on loopback.
 *
 *   const m = await startMinio("a");
 *   // m.endpoint = "http://127.0.0.1:PORT", m.accessKey / m.secretKey = root creds
 *   await m.stop();   // kills the server and removes its data dir
 *
 * The binary is looked up in $MINIO_BIN, PATH, $(go env GOPATH)/bin and ~/go/bin
 * (test/install.sh builds it with `go install`).
 */
import { freePort } from "./proc.ts";
import { findGoBinary, startServerProcess, type ServerProcess } from "./server-process.ts";

export { freePort };

export const MINIO_ROOT_USER = "ospminioadmin";
export const MINIO_ROOT_PASSWORD = "ospminiosecret-test-only";

export type MinioServer = ServerProcess;

export const findMinioBinary = () => findGoBinary("minio", "MINIO_BIN");

export interface StartMinioOptions {
  accessKey?: string;
  secretKey?: string;
  /** ms to wait for /minio/health/live (default 30000) */
  timeoutMs?: number;
  /** serve HTTPS with public.crt/private.key from this directory (MinIO's --certs-dir) */
  certsDir?: string;
  /** the PEM text of the CA that signed that certificate, for the health check */
  ca?: string;
  /** extra environment for the server, e.g. MINIO_IDLE_TIMEOUT (its per-write and per-read deadline, default 30s) */
  env?: Record<string, string>;
}

/** Start a MinIO server on free loopback ports with a fresh data dir (retries on port races). */
export function startMinio(name: string, opts: StartMinioOptions = {}): Promise<MinioServer> {
  const accessKey = opts.accessKey ?? MINIO_ROOT_USER;
  const secretKey = opts.secretKey ?? MINIO_ROOT_PASSWORD;
  return startServerProcess({
    kind: "minio", envVar: "MINIO_BIN", name, accessKey, secretKey, https: !!opts.certsDir, timeoutMs: opts.timeoutMs,
    async args(dataDir, port) {
      let consolePort = await freePort();
      while (consolePort === port) consolePort = await freePort();
      return ["server", dataDir, "--address", `127.0.0.1:${port}`, "--console-address", `127.0.0.1:${consolePort}`, ...(opts.certsDir ? ["--certs-dir", opts.certsDir] : [])];
    },
    env: {
      MINIO_ROOT_USER: accessKey,
      MINIO_ROOT_PASSWORD: secretKey,
      MINIO_BROWSER: "off",
      MINIO_UPDATE: "off",
      MINIO_CALLHOME_ENABLE: "off",
      ...opts.env,
    },
    async ready(endpoint) {
      const res = await fetch(`${endpoint}/minio/health/live`, { signal: AbortSignal.timeout(1000), tls: { ca: opts.ca } });
      await res.arrayBuffer();
      return res.status === 200;
    },
  });
}
