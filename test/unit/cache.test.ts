import { expect, test } from "bun:test";
import { TtlCache } from "../../src/state/cache.ts";

test("concurrent misses share one call; hits last the TTL", async () => {
  let now = 0;
  let calls = 0;
  const c = new TtlCache<number>(10, () => now);
  const load = async () => ++calls;
  expect(await Promise.all([c.get("k", 1000, load), c.get("k", 1000, load), c.get("k", 1000, load)])).toEqual([1, 1, 1]);
  now = 999;
  expect(await c.get("k", 1000, load)).toBe(1);
  now = 1000;
  expect(await c.get("k", 1000, load)).toBe(2);
});

test("failures are not kept", async () => {
  const c = new TtlCache<number>(10);
  await expect(c.get("k", 1000, () => Promise.reject(new Error("down")))).rejects.toThrow("down");
  expect(await c.get("k", 1000, async () => 7)).toBe(7);
});

test("a zero TTL shares only the call in flight", async () => {
  let calls = 0;
  const c = new TtlCache<number>(10);
  const load = async () => ++calls;
  const [a, b] = await Promise.all([c.get("k", 0, load), c.get("k", 0, load)]);
  expect([a, b]).toEqual([1, 1]);
  expect(await c.get("k", 0, load)).toBe(2);
  expect(c.size).toBe(0);
});

test("memory is bounded", async () => {
  const c = new TtlCache<number>(100);
  for (let i = 0; i < 1000; i++) await c.get(String(i), 60_000, async () => i);
  expect(c.size).toBe(100);
  expect(await c.get("999", 60_000, async () => -1)).toBe(999);
  expect(await c.get("0", 60_000, async () => -1)).toBe(-1);
});
