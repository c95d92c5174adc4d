import { describe, expect, test } from "bun:test";
import { UseCounts, countPresignedUse, urlKey, type UseCounter } from "../../src/state/presign-uses.ts";
import { parseConfig } from "../../src/config.ts";
import { S3Error } from "../../src/errors.ts";

describe("UseCounts", () => {
  test("counts per URL, and forgets a URL only once it has expired", () => {
    const counts = new UseCounts();
    expect([counts.count("a", 1000, 0), counts.count("a", 1000, 10), counts.count("b", 5000, 20), counts.count("a", 1000, 999)]).toEqual([1, 2, 1, 3]);
    // past its expiry, a URL starts over (authentication refuses it by then anyway)
    expect(counts.count("a", 2000, 1000)).toBe(1);
    // the minute's sweep drops what has expired
    expect(counts.size).toBe(2);
    counts.count("c", 70_000, 60_000);
    expect(counts.size).toBe(1);
  });

  test("full of unexpired URLs, new ones are refused rather than old counts forgotten", () => {
    const counts = new UseCounts(2);
    counts.count("a", 10_000, 0);
    counts.count("b", 2_000, 0);
    expect(counts.count("c", 10_000, 500)).toBeUndefined();
    expect(counts.count("a", 10_000, 600)).toBe(2);
    // once one has expired, the next sweep (at most a second apart when full) makes room
    expect(counts.count("c", 10_000, 2_100)).toBe(1);
    expect(counts.size).toBe(2);
  });
});

describe("countPresignedUse", () => {
  const config = parseConfig(`[server]\npresign_max_uses = 2\n[buckets.limited]\nendpoint = "http://127.0.0.1:9000"\n[buckets.open]\nendpoint = "http://127.0.0.1:9000"\npresign_max_uses = 0\n`, {}, "/");
  const counted: [string, number][] = [];
  const counts = new UseCounts();
  const counter: UseCounter = { count: async (key, until) => (counted.push([key, until]), counts.count(key, until, 0)!) };
  const presigned = { signature: "f".repeat(64), expiresAt: 1_000_000 };

  test("refuses uses beyond the bucket's limit as AccessDenied, keyed by a hash of the signature", async () => {
    const seen: string[] = [];
    const use = () => countPresignedUse(counter, presigned, config.buckets.get("limited")!, 900, (b, ok) => seen.push(`${b} ${ok}`));
    await use();
    await use();
    const refused = await use().catch((e) => e);
    expect(refused).toBeInstanceOf(S3Error);
    expect(refused).toMatchObject({ status: 403, code: "AccessDenied" });
    expect(seen).toEqual(["limited true", "limited true", "limited false"]);
    expect(counted[0]).toEqual([urlKey(presigned.signature), 1_000_000 + 900_000]);
    expect(counted[0]![0]).not.toContain("ffff");
  });

  test("nothing is counted without a limit or without a presigned URL", async () => {
    const before = counted.length;
    for (let i = 0; i < 5; i++) await countPresignedUse(counter, presigned, config.buckets.get("open")!, 900);
    await countPresignedUse(counter, undefined, config.buckets.get("limited")!, 900);
    expect(counted.length).toBe(before);
  });
});
