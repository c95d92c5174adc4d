/**
 * 200 signed clients that upload 1 byte per second: how many backend connections they hold, and
 * how fast osp sheds them. `bun bench/slowclients.ts [--entry path/to/osp.ts] [--workers N] [--seconds S]`
 * Prints, each second, osp's established connections to MinIO and the answers received so far.
 */
import { connect } from "node:net";
import { parseArgs } from "node:util";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { startMinio } from "../test/harness/minio.ts";
import { freePort, startOsp } from "../test/harness/osp.ts";
import { bucketToml, keyToml, serverToml } from "../test/harness/env.ts";
import { signRawRequest } from "../test/harness/sign.ts";

const { values } = parseArgs({ options: { entry: { type: "string" }, workers: { type: "string", default: "2" }, seconds: { type: "string", default: "40" }, clients: { type: "string", default: "200" } } });
const minio = await startMinio("slowclients");
await new S3Client({ endpoint: minio.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey } })
  .send(new CreateBucketCommand({ Bucket: "slow" }));
const port = await freePort();
const osp = await startOsp({ entry: values.entry, configToml: serverToml(port, { workers: Number(values.workers) }) + keyToml("AK", "secret-key") + bucketToml("slow", minio) });

const answers = new Map<string, number>();
const started = performance.now();
const sockets: ReturnType<typeof connect>[] = [];
for (let i = 0; i < Number(values.clients); i++) {
  const target = `/slow/trickle-${i}`;
  const headers = await signRawRequest("PUT", target, { "content-length": "1000" }, { base: osp.endpoint, region: "us-east-1", accessKey: "AK", secret: "secret-key" });
  const sock = connect(port, "127.0.0.1");
  sock.on("error", () => {});
  sock.write([`PUT ${target} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n"));
  let answered = false;
  sock.on("data", (d) => {
    if (answered) return;
    answered = true;
    const what = `${/^HTTP\/1\.1 (\d+)/.exec(String(d))?.[1]} ${/<Code>([^<]*)/.exec(String(d))?.[1] ?? ""}`.trim();
    answers.set(what, (answers.get(what) ?? 0) + 1);
  });
  sock.on("close", () => {
    if (!answered) answers.set("closed", (answers.get("closed") ?? 0) + 1), (answered = true);
  });
  sockets.push(sock);
}
const trickle = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write("x"); }, 1000);
let peak = 0;
for (let t = 1; t <= Number(values.seconds); t++) {
  await Bun.sleep(1000);
  const ss = Bun.spawnSync(["ss", "-Htn", "state", "established", `( dport = :${minio.port} )`]).stdout.toString();
  const backendConns = ss.split("\n").filter(Boolean).length;
  peak = Math.max(peak, backendConns);
  console.log(`${((performance.now() - started) / 1000).toFixed(0)} s: ${backendConns} osp→MinIO connections; answers ${JSON.stringify(Object.fromEntries(answers))}`);
}
console.log(`peak ${peak} backend connections`);
clearInterval(trickle);
for (const s of sockets) s.destroy();
await osp.stop();
await minio.stop();
