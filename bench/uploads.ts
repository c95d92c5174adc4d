/**
 * Upload costs through one osp worker, side by side in one run (issue 4's figures):
 * - throughput of signed-chunk uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, every chunk verified)
 *   against plain uploads (UNSIGNED-PAYLOAD) of the same size, interleaved A B A B;
 * - browser form uploads (POST Object: multipart/form-data, a signed policy) of the same size;
 * - the worker's peak RSS over idle while each upload streams, and during one 5 GiB upload;
 * - what spooling a form's file to a temporary file first would add (written, then read back).
 * The same client (this script) sends every kind; it computes the chunk signatures as it goes.
 *   bun bench/uploads.ts [--size-mib 1024] [--rounds 3] [--big-gib 5] [--kinds plain,signed,form] [--out FILE.md]
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startMinio } from "../test/harness/minio.ts";
import { freePort, startOsp } from "../test/harness/osp.ts";
import { chunkSignature, type ChunkChain } from "../src/sigv4/chunked.ts";
import { hmacHex, signingKey } from "../src/sigv4/sigv4.ts";
import { signRawRequest } from "../test/harness/sign.ts";

const { values } = parseArgs({
  options: { "size-mib": { type: "string", default: "1024" }, rounds: { type: "string", default: "3" }, "big-gib": { type: "string", default: "5" }, kinds: { type: "string", default: "plain,signed,form" }, out: { type: "string" } },
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

function plainBody(size: number, head = new Uint8Array(0), tail = new Uint8Array(0)): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    start: (c) => {
      if (head.length) c.enqueue(head);
    },
    pull(c) {
      if (sent >= size) {
        if (tail.length) c.enqueue(tail);
        return c.close();
      }
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

/** A browser form's body around the file, with a SigV4-signed policy for it. */
function form(key: string, size: number) {
  const boundary = "----WebKitFormBoundaryBench0123";
  const now = new Date();
  const datetime = now.toISOString().replace(/[-:]|\.\d+/g, "");
  const credential = `${AK}/${datetime.slice(0, 8)}/${REGION}/s3/aws4_request`;
  const policy = Buffer.from(JSON.stringify({
    expiration: new Date(now.getTime() + 3600_000).toISOString(),
    conditions: [{ bucket: "bench" }, { key }, { "x-amz-algorithm": "AWS4-HMAC-SHA256" }, { "x-amz-credential": credential }, { "x-amz-date": datetime }],
  })).toString("base64");
  const fields = { key, "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential, "x-amz-date": datetime, policy,
    "x-amz-signature": hmacHex(signingKey(SK, datetime.slice(0, 8), REGION, "s3"), policy) };
  const enc = new TextEncoder();
  const head = enc.encode(Object.entries(fields).map(([n, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`).join("") +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = enc.encode(`\r\n--${boundary}--\r\n`);
  return { head, tail, headers: { "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": String(head.length + size + tail.length) } };
}

type Kind = "plain" | "signed" | "form";
const LABEL: Record<Kind, string> = { plain: "UNSIGNED-PAYLOAD", signed: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", form: "POST Object (form upload)" };

async function upload(kind: Kind, size: number): Promise<{ mbps: number; peakOverIdleMiB: number }> {
  const key = `${kind}-${size}`;
  if (kind === "form") {
    const f = form(key, size);
    return timed(kind, "/bench", "POST", f.headers, plainBody(size, f.head, f.tail), size);
  }
  const extra: Record<string, string> = kind === "plain"
    ? { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": String(size) }
    : { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-encoding": "aws-chunked", "x-amz-decoded-content-length": String(size), "content-length": String(signedLength(size)) };
  const { target, headers, datetime, seed } = await signedHeaders(key, extra);
  const chain: ChunkChain = { signingKey: signingKey(SK, datetime.slice(0, 8), REGION, "s3"), datetime, scope: `${datetime.slice(0, 8)}/${REGION}/s3/aws4_request`, seedSignature: seed };
  return timed(kind, target, "PUT", headers, kind === "plain" ? plainBody(size) : signedBody(size, chain), size);
}

async function timed(kind: Kind, target: string, method: string, headers: Record<string, string>, body: ReadableStream<Uint8Array>, size: number) {
  Bun.gc(true);
  const idle = kib("VmRSS");
  resetPeak();
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${target}`, { method, headers, body, duplex: "half" });
  if (res.status !== (kind === "form" ? 204 : 200)) throw new Error(`${kind} upload: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  const seconds = (performance.now() - t) / 1000;
  return { mbps: size / MiB / seconds, peakOverIdleMiB: (kib("VmHWM") - idle) / 1024 };
}

const size = Number(values["size-mib"]) * MiB;
const rounds = Number(values.rounds);
const rows: string[] = [];
const kinds = values.kinds.split(",") as Kind[];
const results = Object.fromEntries(kinds.map((k) => [k, [] as { mbps: number; peakOverIdleMiB: number }[]])) as Record<Kind, { mbps: number; peakOverIdleMiB: number }[]>;
/** Writing a file of this size to a temporary file and reading it back: what spooling a form's file would add. */
async function spoolSeconds(n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "osp-spool-"));
  try {
    const t = performance.now();
    const w = Bun.file(join(dir, "f")).writer();
    for (let at = 0; at < n; at += CHUNK) w.write(block.subarray(0, Math.min(CHUNK, n - at)));
    await w.end();
    for await (const _ of Bun.file(join(dir, "f")).stream());
    return (performance.now() - t) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
try {
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...kinds].reverse() : kinds;
    for (const kind of order) results[kind].push(await upload(kind, size));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mbps = (k: Kind) => mean(results[k].map((x) => x.mbps));
  rows.push(`| upload (${size / MiB} MiB, ${rounds} rounds interleaved) | MB/s (mean) | runs | peak RSS over idle, MiB (max) |`, "| --- | ---: | --- | ---: |");
  for (const kind of kinds) {
    const r = results[kind];
    rows.push(`| ${LABEL[kind]} | ${mbps(kind).toFixed(0)} | ${r.map((x) => x.mbps.toFixed(0)).join(", ")} | ${Math.max(...r.map((x) => x.peakOverIdleMiB)).toFixed(0)} |`);
  }
  if (kinds.includes("signed") && kinds.includes("plain"))
    rows.push("", `signed / plain throughput: **${(mbps("signed") / mbps("plain")).toFixed(2)}x** (target ≥ 0.9x)`);
  if (kinds.includes("form") && kinds.includes("plain")) {
    const spool = await spoolSeconds(size);
    rows.push("", `form / plain throughput: **${(mbps("form") / mbps("plain")).toFixed(2)}x**; spooling the file to a temporary file first ` +
      `would add ${spool.toFixed(2)} s (${(size / MiB / spool).toFixed(0)} MB/s written and read back) before the upload to the backend could start`);
  }
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
