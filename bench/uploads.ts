/**
 * Upload costs through one osp worker, side by side in one run (issue 4's figures):
 * - throughput of signed-chunk uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, every chunk verified)
 *   against plain uploads (UNSIGNED-PAYLOAD) of the same size, interleaved A B A B;
 * - the worker's peak RSS over idle while each upload streams, and during one 5 GiB upload.
 * The same client (this script) sends both kinds; it computes the chunk signatures as it goes.
 *   bun bench/uploads.ts [--size-mib 1024] [--rounds 3] [--big-gib 5] [--out FILE.md]
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startMinio } from "../test/harness/minio.ts";
import { freePort, startOsp } from "../test/harness/osp.ts";
import { chunkSignature, type ChunkChain } from "../src/sigv4/chunked.ts";
import { signingKey } from "../src/sigv4/sigv4.ts";
import { signRawRequest } from "../test/harness/sign.ts";

const { values } = parseArgs({
  options: { "size-mib": { type: "string", default: "1024" }, rounds: { type: "string", default: "3" }, "big-gib": { type: "string", default: "5" }, out: { type: "string" } },
});
const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const AK = "BENCHKEY";
const SK = "bench-secret-key";
const REGION = "us-east-1";

const minio = await startMinio("bench-uploads");
const backend = new S3Client({ endpoint: minio.endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey } });
await backend.send(new CreateBucketCommand({ Bucket: "bench" }));
const port = await freePort();
const osp = await startOsp({
  configToml: `[server]\nhttp_port = ${port}\nbind = "127.0.0.1"\nworkers = 1\n[[keys]]\naccess_key = "${AK}"\nsecret_key = "${SK}"\n` +
    `[buckets.bench]\nendpoint = "${minio.endpoint}"\naddressing_style = "path"\naccess_key = "${minio.accessKey}"\nsecret_key = "${minio.secretKey}"\n`,
});

const status = () => readFileSync(`/proc/${osp.proc.pid}/status`, "utf8");
const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status())![1]);
/** Resets the peak RSS the kernel keeps for the worker (VmHWM). */
const resetPeak = () => writeFileSync(`/proc/${osp.proc.pid}/clear_refs`, "5");

async function signedHeaders(key: string, extra: Record<string, string>) {
  const target = `/bench/${key}`;
  const headers = await signRawRequest("PUT", target, extra, { base: `http://127.0.0.1:${port}`, region: REGION, accessKey: AK, secret: SK });
  return { target, headers, datetime: headers["x-amz-date"]!, seed: /Signature=([0-9a-f]{64})/.exec(headers.authorization!)![1]! };
}

const block = crypto.getRandomValues(new Uint8Array(CHUNK));

function plainBody(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent >= size) return c.close();
      const n = Math.min(CHUNK, size - sent);
      c.enqueue(block.slice(0, n));
      sent += n;
    },
  }, { highWaterMark: 0 });
}

/** The chunk signatures are worked out before the clock starts, so that only osp's work is timed. */
function signedBody(size: number, chain: ChunkChain): ReadableStream<Uint8Array> {
  const signatures: string[] = [];
  for (let at = 0, previous = chain.seedSignature; at <= size; at += CHUNK) {
    previous = chunkSignature(chain, previous, block.subarray(0, Math.min(CHUNK, size - at)));
    signatures.push(previous);
  }
  let sent = 0;
  let i = 0;
  let done = false;
  const enc = new TextEncoder();
  return new ReadableStream({
    pull(c) {
      if (done) return c.close();
      const n = Math.min(CHUNK, size - sent);
      const data = block.subarray(0, n);
      const head = enc.encode(`${n.toString(16)};chunk-signature=${signatures[i++]}\r\n`);
      const out = new Uint8Array(head.length + n + 2);
      out.set(head);
      out.set(data, head.length);
      out.set([13, 10], head.length + n);
      c.enqueue(out);
      sent += n;
      done = n === 0;
    },
  }, { highWaterMark: 0 });
}

const signedLength = (size: number) => {
  const frame = (n: number) => n.toString(16).length + ";chunk-signature=".length + 64 + 2 + n + 2;
  return Math.floor(size / CHUNK) * frame(CHUNK) + (size % CHUNK ? frame(size % CHUNK) : 0) + frame(0);
};

async function upload(kind: "plain" | "signed", size: number): Promise<{ mbps: number; peakOverIdleMiB: number }> {
  const key = `${kind}-${size}`;
  const extra: Record<string, string> = kind === "plain"
    ? { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": String(size) }
    : { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-encoding": "aws-chunked", "x-amz-decoded-content-length": String(size), "content-length": String(signedLength(size)) };
  const { target, headers, datetime, seed } = await signedHeaders(key, extra);
  const chain: ChunkChain = { signingKey: signingKey(SK, datetime.slice(0, 8), REGION, "s3"), datetime, scope: `${datetime.slice(0, 8)}/${REGION}/s3/aws4_request`, seedSignature: seed };
  const body = kind === "plain" ? plainBody(size) : signedBody(size, chain);
  Bun.gc(true);
  const idle = kib("VmRSS");
  resetPeak();
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${target}`, { method: "PUT", headers, body, duplex: "half" });
  if (res.status !== 200) throw new Error(`${kind} upload: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  const seconds = (performance.now() - t) / 1000;
  return { mbps: size / MiB / seconds, peakOverIdleMiB: (kib("VmHWM") - idle) / 1024 };
}

const size = Number(values["size-mib"]) * MiB;
const rounds = Number(values.rounds);
const rows: string[] = [];
const results: Record<"plain" | "signed", { mbps: number; peakOverIdleMiB: number }[]> = { plain: [], signed: [] };
try {
  for (let r = 0; r < rounds; r++) {
    const order: ("plain" | "signed")[] = r % 2 ? ["signed", "plain"] : ["plain", "signed"];
    for (const kind of order) results[kind].push(await upload(kind, size));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  rows.push(`| upload (${size / MiB} MiB, ${rounds} rounds interleaved) | MB/s (mean) | runs | peak RSS over idle, MiB (max) |`, "| --- | ---: | --- | ---: |");
  for (const kind of ["plain", "signed"] as const) {
    const r = results[kind];
    rows.push(`| ${kind === "plain" ? "UNSIGNED-PAYLOAD" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"} | ${mean(r.map((x) => x.mbps)).toFixed(0)} | ${r.map((x) => x.mbps.toFixed(0)).join(", ")} | ${Math.max(...r.map((x) => x.peakOverIdleMiB)).toFixed(0)} |`);
  }
  rows.push("", `signed / plain throughput: **${(mean(results.signed.map((x) => x.mbps)) / mean(results.plain.map((x) => x.mbps))).toFixed(2)}x** (target ≥ 0.8x)`);
  const bigGiB = Number(values["big-gib"]);
  if (bigGiB > 0) {
    const big = await upload("signed", bigGiB * 1024 * MiB);
    rows.push("", `${bigGiB} GiB signed-chunk upload: ${big.mbps.toFixed(0)} MB/s, worker peak RSS **${big.peakOverIdleMiB.toFixed(0)} MiB over idle** (target ≤ 64 MiB)`);
  }
} finally {
  await osp.stop();
  await minio.stop();
}
const report = [`# Uploads through one osp worker, ${new Date().toISOString().slice(0, 10)}`, "", `Bun ${Bun.version}, ${navigator.hardwareConcurrency} CPUs, MinIO on loopback.`, "", ...rows, ""].join("\n");
console.log(report);
if (values.out) writeFileSync(values.out, report);
