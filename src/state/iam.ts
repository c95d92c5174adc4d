/**
 * IBM Cloud IAM: an API key is exchanged at the IAM token endpoint for a bearer token, which IBM
 * COS accepts instead of a SigV4 signature. Tokens are cached per API key and refreshed before
 * they expire. Neither the key nor the token is ever put in a log line or an error message.
 */
import { S3Error } from "../errors.ts";
import { isFieldValue } from "../http1/response.ts";

export const DEFAULT_IAM_ENDPOINT = "https://iam.cloud.ibm.com/identity/token";

export interface IamToken {
  accessToken: string;
  /** When IAM stops accepting it, ms since the epoch on our clock. */
  expiresAt: number;
  /** When to get the next one: 1/5 of its life before expiry, at most 5 minutes before. */
  refreshAt: number;
}

const iamFailure = (why: string) => new S3Error(502, "BadGateway", `The backend's IAM token could not be obtained: ${why}`);

/**
 * A token from IAM's answer to a token request. IAM says when the token expires twice, as seconds
 * to live and as an epoch time on its own clock; the earlier of the two is trusted.
 */
export function parseTokenResponse(status: number, body: unknown, now: number): IamToken {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (status !== 200) {
    // IAM's error document: {"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.",...}
    const detail = [b.errorCode, b.errorMessage].filter((v) => typeof v === "string").join(": ");
    throw iamFailure(`IAM answered ${status}${detail ? ` (${detail})` : ""}`);
  }
  const lives = [
    typeof b.expires_in === "number" && b.expires_in > 0 ? now + b.expires_in * 1000 : Infinity,
    typeof b.expiration === "number" && b.expiration * 1000 > now ? b.expiration * 1000 : Infinity,
  ];
  const expiresAt = Math.min(...lives);
  if (typeof b.access_token !== "string" || !b.access_token || !isFieldValue(b.access_token) || String(b.token_type).toLowerCase() !== "bearer" || expiresAt === Infinity)
    throw iamFailure("IAM's answer holds no usable bearer token");
  return { accessToken: b.access_token, expiresAt, refreshAt: expiresAt - Math.min(300_000, (expiresAt - now) / 5) };
}

/** One exchange of an API key for a token: POST application/x-www-form-urlencoded, JSON back. */
export async function requestToken(endpoint: string, apiKey: string, timeoutSeconds: number): Promise<IamToken> {
  let res: Response;
  const sentAt = Date.now(); // expires_in counts from IAM's answer; counting from the request is on the safe side
  try {
    res = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ grant_type: "urn:ibm:params:oauth:grant-type:apikey", apikey: apiKey }),
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
      redirect: "manual",
    });
  } catch (e) {
    if (e instanceof Error && e.name === "TimeoutError")
      throw new S3Error(504, "GatewayTimeout", `The IAM token endpoint did not answer within ${timeoutSeconds} s`);
    const reason = e instanceof Error ? ((e as { code?: string }).code ?? e.name) : "error";
    throw iamFailure(`the IAM token endpoint could not be reached (${reason})`);
  }
  const body = await res.json().catch(() => undefined);
  try {
    return parseTokenResponse(res.status, body, sentAt);
  } catch (e) {
    // IAM's own words are passed on, unless they were to repeat the key
    throw e instanceof S3Error && e.message.includes(apiKey) ? iamFailure(`IAM answered ${res.status}`) : e;
  }
}

export type TokenSource = (apiKey: string) => Promise<string>;

interface Entry {
  token?: IamToken;
  pending?: Promise<IamToken>;
}

/**
 * Bearer tokens per API key. Concurrent requests share one exchange; a token due for refresh but
 * still valid is used while the next one is fetched, so requests wait only when there is none.
 * A failed refresh is retried by the next request, and the old token serves until it expires.
 */
export function createTokenSource(exchange: (apiKey: string) => Promise<IamToken>, maxKeys = 10_000, now = Date.now): TokenSource {
  const entries = new Map<string, Entry>();
  const refresh = (apiKey: string, entry: Entry) =>
    (entry.pending ??= exchange(apiKey)
      .then((token) => (entry.token = token))
      .catch((e: Error) => {
        console.error(`osp: ${e.message}`);
        throw e;
      })
      .finally(() => (entry.pending = undefined)));
  return async (apiKey) => {
    let entry = entries.get(apiKey);
    if (!entry) {
      entries.set(apiKey, (entry = {}));
      if (entries.size > maxKeys) entries.delete(entries.keys().next().value!);
    }
    const t = now();
    const { token } = entry;
    if (token && t < token.expiresAt) {
      if (t >= token.refreshAt) refresh(apiKey, entry).catch(() => {}); // logged; the current token serves until it expires
      return token.accessToken;
    }
    return (await refresh(apiKey, entry)).accessToken;
  };
}
