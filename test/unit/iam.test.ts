import { expect, test } from "bun:test";
import { createTokenSource, parseTokenResponse, type IamToken } from "../../src/state/iam.ts";
import { S3Error } from "../../src/errors.ts";

const NOW = 1_800_000_000_000;
const answer = (over: Record<string, unknown> = {}) => ({
  access_token: "tok", refresh_token: "r", token_type: "Bearer", expires_in: 3600, expiration: NOW / 1000 + 3600, scope: "ibm openid", ...over,
});

test("a token lives for the shorter of expires_in and expiration, and is refreshed 5 minutes before", () => {
  expect(parseTokenResponse(200, answer(), NOW)).toEqual({ accessToken: "tok", expiresAt: NOW + 3_600_000, refreshAt: NOW + 3_300_000 });
  // IAM's clock ahead of ours: expires_in is believed
  expect(parseTokenResponse(200, answer({ expiration: NOW / 1000 + 7200 }), NOW).expiresAt).toBe(NOW + 3_600_000);
  expect(parseTokenResponse(200, answer({ expires_in: undefined, expiration: NOW / 1000 + 60 }), NOW).expiresAt).toBe(NOW + 60_000);
  // a short-lived token is refreshed when 4/5 of its life has passed
  expect(parseTokenResponse(200, answer({ expires_in: 10 }), NOW).refreshAt).toBe(NOW + 8000);
});

test("IAM's refusals and unusable answers are 502 S3 errors that give IAM's error code", () => {
  const err = (status: number, body: unknown) => {
    try {
      parseTokenResponse(status, body, NOW);
    } catch (e) {
      return e as S3Error;
    }
    throw new Error("accepted");
  };
  const bad = err(400, { errorCode: "BXNIM0415E", errorMessage: "Provided API key could not be found.", context: { requestId: "x" } });
  expect([bad.status, bad.code, bad.message]).toEqual([502, "BadGateway", "The backend's IAM token could not be obtained: IAM answered 400 (BXNIM0415E: Provided API key could not be found.)"]);
  expect(err(500, undefined).message).toEndWith("IAM answered 500");
  for (const body of [answer({ access_token: "" }), answer({ access_token: "t\r\nx-amz-acl: public-read" }), answer({ token_type: "mac" }), answer({ expires_in: 0, expiration: NOW / 1000 - 1 }), "oops", undefined])
    expect(err(200, body).message).toEndWith("IAM's answer holds no usable bearer token");
});

function fakeExchange(lifeMs: number, now: () => number) {
  const calls: string[] = [];
  let fail = false;
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;
  const exchange = async (apiKey: string): Promise<IamToken> => {
    const n = calls.push(apiKey);
    await gate;
    if (fail) throw new S3Error(502, "BadGateway", "IAM down");
    const t = now();
    return { accessToken: `${apiKey}#${n}`, expiresAt: t + lifeMs, refreshAt: t + lifeMs * 0.8 };
  };
  return {
    calls, exchange,
    setFail: (f: boolean) => (fail = f),
    hold: () => (gate = new Promise((r) => (release = () => ((gate = undefined), r())))),
    release: () => release(),
  };
}

test("concurrent requests share one exchange per API key", async () => {
  const now = NOW;
  const f = fakeExchange(10_000, () => now);
  const tokens = createTokenSource(f.exchange, 100, () => now);
  const got = await Promise.all([...Array.from({ length: 100 }, () => tokens("k1")), tokens("k2")]);
  expect(f.calls).toEqual(["k1", "k2"]);
  expect(new Set(got)).toEqual(new Set(["k1#1", "k2#2"]));
});

test("a token due for refresh serves while the next is fetched; an expired one is waited for", async () => {
  let now = NOW;
  const f = fakeExchange(10_000, () => now);
  const tokens = createTokenSource(f.exchange, 100, () => now);
  expect(await tokens("k")).toBe("k#1");
  now += 7999;
  expect(await tokens("k")).toBe("k#1");
  expect(f.calls.length).toBe(1);
  now += 1;
  f.hold();
  expect(await Promise.all([tokens("k"), tokens("k")])).toEqual(["k#1", "k#1"]); // refresh under way, not awaited
  expect(f.calls.length).toBe(2);
  f.release();
  await Bun.sleep(0);
  expect(await tokens("k")).toBe("k#2");
  now += 20_000; // expired: the request waits for a new token
  expect(await tokens("k")).toBe("k#3");
});

test("a failed refresh keeps the valid token; with none left the failure is the answer, and the next request tries again", async () => {
  let now = NOW;
  const f = fakeExchange(10_000, () => now);
  const tokens = createTokenSource(f.exchange, 100, () => now);
  await tokens("k");
  f.setFail(true);
  now += 9000;
  expect(await tokens("k")).toBe("k#1");
  await Bun.sleep(0);
  now += 2000;
  await expect(tokens("k")).rejects.toThrow("IAM down");
  f.setFail(false);
  expect(await tokens("k")).toBe("k#4");
});

test("the number of cached keys is bounded", async () => {
  const f = fakeExchange(10_000, () => NOW);
  const tokens = createTokenSource(f.exchange, 3, () => NOW);
  for (const k of ["a", "b", "c", "d"]) await tokens(k);
  await tokens("d");
  await tokens("a");
  expect(f.calls).toEqual(["a", "b", "c", "d", "a"]);
});
