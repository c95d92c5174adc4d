/**
 * Signing cost, side by side in one run: aws4fetch's AwsV4Signer as shipped (WebCrypto: async
 * importKey, sign and digest) against osp's Signer (the same class, hashing with Bun.CryptoHasher).
 * Each request is signed twice by osp (verify the client, re-sign for the backend); this signs
 * the re-signing half, a GET with five headers, and repeats the pair A B A B.
 *   bun bench/signing.ts [--n 20000]
 */
import { AwsV4Signer } from "aws4fetch";
import { parseArgs } from "node:util";
import { Signer } from "../src/sigv4/sigv4.ts";

const { values } = parseArgs({ options: { n: { type: "string", default: "20000" } } });
const n = Number(values.n);
const cache = new Map<string, ArrayBuffer>();
const options = () => ({
  method: "GET",
  url: "http://127.0.0.1:9000/bucket/some/key.parquet?partNumber=1",
  headers: { range: "bytes=0-1023", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "if-match": '"abc"', "x-amz-meta-a": "1" },
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  service: "s3",
  region: "us-east-1",
  cache,
});
const variants = {
  "aws4fetch (WebCrypto)": () => new AwsV4Signer(options()).sign(),
  "osp Signer (CryptoHasher)": () => new Signer(options()).sign(),
};

async function measure(sign: () => Promise<unknown>, concurrency: number): Promise<{ wall: number; cpu: number }> {
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i++ < n) await sign();
  }));
  const cpu = process.cpuUsage(cpu0);
  return { wall: ((performance.now() - t) * 1000) / n, cpu: (cpu.user + cpu.system) / n };
}

console.log(`| signer | concurrency | wall µs/signature | CPU µs/signature |\n| --- | ---: | ---: | ---: |`);
for (const concurrency of [1, 64]) {
  const results: Record<string, { wall: number; cpu: number }[]> = {};
  for (let round = 0; round < 2; round++) {
    for (const [name, sign] of Object.entries(variants)) (results[name] ??= []).push(await measure(sign, concurrency));
  }
  for (const [name, r] of Object.entries(results)) {
    const avg = (k: "wall" | "cpu") => (r.reduce((s, x) => s + x[k], 0) / r.length).toFixed(1);
    console.log(`| ${name} | ${concurrency} | ${avg("wall")} | ${avg("cpu")} |`);
  }
}
