/** A self-signed certificate for 127.0.0.1 and localhost, made for one test run (never committed). */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function makeCertificate(): Promise<{ dir: string; cert: string; key: string }> {
  const dir = mkdtempSync(join(tmpdir(), "osp-tls-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  await Bun.$`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ${key} -out ${cert}`.quiet();
  return { dir, cert, key };
}
