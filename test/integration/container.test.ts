/**
 * The Containerfile: built with buildah, run with podman against the harness' MinIO, an object
 * round-tripped through it with @aws-sdk/client-s3. No registry is needed: the base is a Debian
 * root made with mmdebstrap (glibc only, what the binary needs), and the build stage's Bun image
 * is that base with this Bun in it (test/install.sh installs podman, buildah, runc and mmdebstrap).
 */
import { afterAll, expect, test } from "bun:test";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bucketToml, keyToml } from "../harness/env.ts";
import { freePort, REPO_ROOT } from "../harness/osp.ts";
import { backendClient, env, randomBytes, sdkClient, sha256, uniquePrefix } from "./util.ts";

const dir = mkdtempSync(join(tmpdir(), "osp-container-"));
const id = `${process.pid}-${Date.now().toString(36)}`;
const images = { base: `localhost/osp-test-base:${id}`, bun: `localhost/osp-test-bun:${id}`, osp: `localhost/osp-test:${id}` };
const container = `osp-test-${id}`;
// runc, and no default ulimits podman could not set here (crun fails on hybrid cgroups)
const containersConf = join(dir, "containers.conf");
writeFileSync(containersConf, "[containers]\ndefault_ulimits = []\n");
const podman = (...args: string[]) => ["podman", "--runtime", "runc", ...args];
const run = async (cmd: string[]) => {
  const p = Bun.spawn(cmd, { env: { ...process.env, CONTAINERS_CONF: containersConf }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
};
const must = async (cmd: string[]) => {
  const r = await run(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited with ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout.trim();
};

/** Why the test cannot run here, or null. */
async function cannotRun(): Promise<string | null> {
  const missing = ["podman", "buildah", "mmdebstrap"].filter((t) => !Bun.which(t));
  if (missing.length) return `${missing.join(", ")} not installed (test/install.sh installs them with apt-get)`;
  const info = await run(podman("info"));
  return info.code === 0 ? null : `podman cannot run here: ${info.stderr.trim().split("\n").at(-1)}`;
}
const reason = await cannotRun();
if (reason) console.warn(`container test skipped: ${reason}`);

afterAll(async () => {
  await run(podman("rm", "-f", "-t", "0", container));
  for (const image of Object.values(images)) await run(podman("rmi", "-f", image));
  rmSync(dir, { recursive: true, force: true });
});

test.skipIf(reason !== null)("the Containerfile builds a non-root image with a health check that serves S3 against MinIO", async () => {
  // the base: glibc, as in distroless/base; no shell
  await must(["mmdebstrap", "--quiet", "--variant=extract", "--include=libc6", "bookworm", join(dir, "base.tar")]);
  await must(podman("import", "--quiet", join(dir, "base.tar"), images.base));
  // the build stage's Bun: this Bun, and this machine's CA certificates for `bun install`
  const ctr = await must(["buildah", "from", images.base]);
  await must(["buildah", "copy", ctr, process.execPath, "/usr/local/bin/bun"]);
  const ca = "/etc/ssl/certs/ca-certificates.crt";
  if (existsSync(ca)) await must(["buildah", "copy", ctr, ca, ca]);
  await must(["buildah", "config", "--env", `NODE_EXTRA_CA_CERTS=${ca}`, ctr]);
  await must(["buildah", "commit", "--quiet", "--rm", ctr, images.bun]);
  // docker format: the OCI format has no HEALTHCHECK
  await must(["buildah", "build", "--quiet", "--isolation", "chroot", "--format", "docker",
    "--build-arg", `BASE=${images.base}`, "--build-arg", `BUN_IMAGE=${images.bun}`, "-t", images.osp, REPO_ROOT]);

  const inspect = JSON.parse(await must(podman("image", "inspect", images.osp)))[0];
  expect(inspect.Config.User).toBe("65532:65532");
  expect(inspect.Healthcheck.Test).toEqual(["CMD", "/usr/local/bin/osp", "--healthcheck"]);
  const layers = JSON.parse(await must(podman("history", "--format", "json", images.osp))) as { size: number }[];
  const added = layers[0]!.size;
  const total = layers.reduce((n, l) => n + l.size, 0);
  console.log(`image: osp adds ${(added / 1e6).toFixed(1)} MB to a ${((total - added) / 1e6).toFixed(1)} MB base, ${(total / 1e6).toFixed(1)} MB in all`);
  expect(added).toBeLessThanOrEqual(130e6);

  const [port, admin] = [await freePort(), await freePort()];
  const secret = Bun.randomUUIDv7();
  const config = join(dir, "osp.toml");
  writeFileSync(config, `[server]\nhttp_port = ${port}\nadmin_port = ${admin}\nbind = "127.0.0.1"\nworkers = 2\n` +
    keyToml("CONTAINERKEY", "${CLIENT_SECRET}") + bucketToml(env.bucketA, { ...env.minioA, secretKey: "${BACKEND_SECRET}" }));
  await must(podman("run", "-d", "--name", container, "--network", "host", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
    "-e", `CLIENT_SECRET=${secret}`, "-e", `BACKEND_SECRET=${env.minioA.secretKey}`, "-v", `${config}:/etc/osp/osp.toml:ro`, images.osp));
  let ready = 0;
  for (let i = 0; i < 100 && ready !== 200; i++, await Bun.sleep(100)) ready = await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.status, () => 0);
  expect(ready).toBe(200);
  expect(await run(podman("healthcheck", "run", container))).toMatchObject({ code: 0 });
  const pid = await must(podman("inspect", "--format", "{{.State.Pid}}", container));
  expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/^Uid:\s+65532\s/m);

  const key = `${uniquePrefix("container")}object.bin`;
  const body = randomBytes(2 * 1024 * 1024 + 3);
  const client = sdkClient(`http://127.0.0.1:${port}`, "CONTAINERKEY", secret);
  await client.send(new PutObjectCommand({ Bucket: env.bucketA, Key: key, Body: body }));
  const got = await client.send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
  expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(body));
  const stored = await backendClient(env.minioA).send(new GetObjectCommand({ Bucket: env.bucketA, Key: key }));
  expect(sha256(await stored.Body!.transformToByteArray())).toBe(sha256(body));
}, 300_000);
