import { describe, expect, test } from "bun:test";
import { asksLargeRange, LARGE_RANGE } from "../../src/pipeline/forward.ts";

describe("which client asks the backend", () => {
  test("node:http's client for a GET of an open-ended range or one of LARGE_RANGE bytes or more", () => {
    expect(asksLargeRange("GET", "bytes=0-")).toBe(true);
    expect(asksLargeRange("GET", "bytes=123456-")).toBe(true);
    expect(asksLargeRange("GET", ` bytes=0-${LARGE_RANGE - 1} `)).toBe(true);
    expect(asksLargeRange("GET", `bytes=10-${LARGE_RANGE + 9}`)).toBe(true);
  });
  test("fetch() for anything else: no range, a smaller one, a suffix, several, or another method", () => {
    expect(asksLargeRange("GET", undefined)).toBe(false);
    expect(asksLargeRange("GET", `bytes=0-${LARGE_RANGE - 2}`)).toBe(false);
    expect(asksLargeRange("GET", "bytes=-5000000")).toBe(false);
    expect(asksLargeRange("GET", "bytes=0-10,20-")).toBe(false);
    expect(asksLargeRange("GET", "items=0-")).toBe(false);
    expect(asksLargeRange("HEAD", "bytes=0-")).toBe(false);
    expect(asksLargeRange("GET", "bytes=5-2")).toBe(false);
  });
});
