/**
 * Test harness: a Versity S3 Gateway (versitygw, posix backend) on loopback, the suites' second
 * S3 implementation beside MinIO. It closes every connection after its answer unless started with
 * --keep-alive, which osp's backend client must take in its stride.
 *
 *   const v = await startVersitygw("v");   // v.endpoint, v.accessKey / v.secretKey (its root account)
 *   await v.stop();
 *
 * The binary: $VERSITYGW_BIN, PATH, $(go env GOPATH)/bin, ~/go/bin (test/install.sh builds it).
 */
import { startServerProcess, type ServerProcess } from "./server-process.ts";

export function startVersitygw(name: string): Promise<ServerProcess> {
  const accessKey = "ospversityadmin";
  const secretKey = "ospversitysecret-test-only";
  return startServerProcess({
    kind: "versitygw", envVar: "VERSITYGW_BIN", name, accessKey, secretKey,
    args: (dataDir, port) => ["--access", accessKey, "--secret", secretKey, "--port", `127.0.0.1:${port}`, "--quiet", "posix", dataDir],
    // an anonymous request is refused: the gateway answers
    async ready(endpoint) {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.status === 403;
    },
  });
}
