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

/**
 * A private certificate authority and a server certificate it signed for 127.0.0.1 and
 * localhost: `ca` is the CA's certificate, `cert`/`key` the server's.
 */
export async function makePrivateCa(): Promise<{ dir: string; ca: string; cert: string; key: string }> {
  const dir = mkdtempSync(join(tmpdir(), "osp-ca-"));
  const [ca, caKey, csr, cert, key] = ["ca.pem", "ca.key", "server.csr", "server.pem", "server.key"].map((f) => join(dir, f)) as [string, string, string, string, string];
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await Bun.$`openssl req -x509 ${ec} -days 2 -subj /CN=osp-test-ca -keyout ${caKey} -out ${ca}`.quiet();
  await Bun.$`openssl req ${ec} -subj /CN=localhost -keyout ${key} -out ${csr}`.quiet();
  const ext = join(dir, "ext.cnf");
  await Bun.write(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  await Bun.$`openssl x509 -req -in ${csr} -CA ${ca} -CAkey ${caKey} -CAcreateserial -days 2 -extfile ${ext} -out ${cert}`.quiet();
  return { dir, ca, cert, key };
}
