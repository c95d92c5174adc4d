/**
 * CORS, answered by osp from each bucket's rules in osp.toml (S3's CORSRule). A preflight carries
 * no signature, so it is answered here and never forwarded: asking a backend would mean acting
 * with osp's backend keys for an anonymous caller (and with the fetchCredentials hook there is no
 * client to ask them for). For the same reason the backend's own Access-Control-* headers never
 * reach the client: osp's rules are the only ones a browser sees.
 */
import type { Config, CorsRule } from "../config.ts";
import { S3Error } from "../errors.ts";
import type { ParsedRequest } from "./request.ts";
import { header } from "../sigv4/sigv4.ts";
import { knownBucket } from "./route.ts";

/** "*" once in a pattern stands for any run of characters, as in S3's AllowedOrigin and AllowedHeader. */
export function wildcardMatch(pattern: string, value: string): boolean {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern === value;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return value.length >= head.length + tail.length && value.startsWith(head) && value.endsWith(tail);
}

/** The first rule that allows this origin, method and (for a preflight) these request headers. */
export function matchingRule(rules: CorsRule[], origin: string, method: string, requestHeaders: string[] = []): CorsRule | undefined {
  return rules.find((r) =>
    r.allowedOrigins.some((o) => wildcardMatch(o, origin)) &&
    r.allowedMethods.includes(method) &&
    requestHeaders.every((h) => r.allowedHeaders.some((p) => wildcardMatch(p, h))),
  );
}

const VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

function allowHeaders(rule: CorsRule, origin: string): Record<string, string> {
  const any = rule.allowedOrigins.includes("*");
  const h: Record<string, string> = {
    "access-control-allow-origin": any ? "*" : origin,
    "access-control-allow-methods": rule.allowedMethods.join(", "),
    vary: VARY,
  };
  // a credentialed request may not be answered with "*" (Fetch standard), so only named origins allow it
  if (!any) h["access-control-allow-credentials"] = "true";
  if (rule.exposeHeaders.length) h["access-control-expose-headers"] = rule.exposeHeaders.join(", ");
  return h;
}

const forbidden = (why: string) => new S3Error(403, "AccessForbidden", `CORSResponse: ${why}`);

/** The answer to an OPTIONS request: a preflight, matched against the bucket's rules. */
export function preflight(config: Config, req: ParsedRequest): Response {
  const origin = header(req.headers, "origin");
  if (!origin) throw new S3Error(400, "BadRequest", "Insufficient information. Origin request header needed.");
  const method = header(req.headers, "access-control-request-method");
  if (!method || !/^[A-Z]+$/.test(method)) throw new S3Error(400, "BadRequest", `Invalid Access-Control-Request-Method: ${method ?? "null"}`);
  // unknown and unconfigured buckets answer alike, so an anonymous caller learns nothing of which exist
  const rules = knownBucket(config, req.bucket)?.cors ?? [];
  if (rules.length === 0) throw forbidden("CORS is not enabled for this bucket.");
  const requested = (header(req.headers, "access-control-request-headers") ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  const rule = matchingRule(rules, origin, method, requested);
  if (!rule)
    throw forbidden("This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.");
  const headers = allowHeaders(rule, origin);
  if (requested.length) headers["access-control-allow-headers"] = requested.join(", ");
  if (rule.maxAge !== undefined) headers["access-control-max-age"] = String(rule.maxAge);
  return new Response(null, { status: 200, headers: { ...headers, "content-length": "0" } });
}

/**
 * Any answer (the backend's own CORS headers never get this far: forward.ts leaves them out): to a
 * request from a browser page (one with Origin), the matching rule's headers added, errors
 * included, so that a page can read why it was refused. The bucket is looked up only then.
 */
export function withCors(res: Response, config: Config, req: ParsedRequest): Response {
  if (req.method === "OPTIONS") return res; // answered by preflight() alone
  const origin = header(req.headers, "origin");
  if (!origin) return res;
  const bucket = knownBucket(config, req.bucket);
  if (!bucket?.cors.length) return res;
  const rule = matchingRule(bucket.cors, origin, req.method);
  const vary = res.headers.get("vary");
  if (rule) for (const [name, value] of Object.entries(allowHeaders(rule, origin))) res.headers.set(name, value);
  // the answer depends on the origin, whether it matched or not; the backend's reasons stay
  const names = [...(vary ?? "").split(","), ...VARY.split(",")].map((s) => s.trim()).filter(Boolean);
  res.headers.set("vary", [...new Map(names.map((n) => [n.toLowerCase(), n])).values()].join(", "));
  return res;
}
