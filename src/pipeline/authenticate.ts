/** authenticate: who signed this request, proven by a SigV4 signature. There is no other way in. */
import { S3Error, accessDenied, signatureMismatch } from "../errors.ts";
import type { ParsedRequest } from "./request.ts";
import {
  canonicalHeaders, canonicalQuery, canonicalUri, constantTimeEqual, datetimeMs, header,
  cachedSigningKey, parseAuthorization, parsePresigned, signature, type SignedRequestInfo,
} from "../sigv4/sigv4.ts";
import type { ChunkChain } from "../sigv4/chunked.ts";

/** Payload hashes the client may sign; aws-chunked (STREAMING-*) ones are recognised but not yet accepted. */
const PAYLOAD_HASH = /^([0-9a-f]{64}|UNSIGNED-PAYLOAD|STREAMING-[A-Z0-9-]+)$/;

export interface Identity {
  accessKey: string;
  info: SignedRequestInfo;
  /** The payload hash the client signed: hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-*. */
  payloadHash: string;
  /** For signed aws-chunked bodies: what continues the signature chain. */
  chain?: ChunkChain;
}

/** Resolves a frontend access key to its secret, or null when unknown. */
export type SecretLookup = (accessKey: string) => Promise<string | null>;

/** Reads which kind of SigV4 the request carries; anonymous requests are denied. */
export function signedRequestInfo(req: ParsedRequest): SignedRequestInfo {
  const authorization = header(req.headers, "authorization");
  const presigned = req.queryMap.has("X-Amz-Signature") || req.queryMap.has("X-Amz-Algorithm") || req.queryMap.has("X-Amz-Credential");
  if (authorization !== undefined && presigned)
    throw new S3Error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified");
  if (authorization !== undefined) {
    // two headers would be read as one, each contributing parts
    if (req.headers.get("authorization")!.length > 1)
      throw new S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; it is given more than once");
    return parseAuthorization(authorization, single(req, "x-amz-date"));
  }
  if (presigned) return parsePresigned(req.query);
  if (req.queryMap.has("Signature") && req.queryMap.has("AWSAccessKeyId"))
    throw new S3Error(400, "InvalidRequest", "Signature Version 2 is not supported; sign with AWS4-HMAC-SHA256");
  throw accessDenied("Anonymous access is not allowed: sign the request with AWS Signature Version 4");
}

/** A header that must not be repeated, since its repetitions would be read as one comma-joined value. */
function single(req: ParsedRequest, name: string): string | undefined {
  const values = req.headers.get(name);
  if (values && values.length > 1) throw new S3Error(400, "InvalidArgument", `The ${name} header is given more than once`);
  return values?.[0];
}

/**
 * As S3 does, every x-amz-* header must be signed: osp re-signs what it forwards, so an unsigned
 * one (a copy source, metadata, an ACL added to a presigned URL) would reach the backend as if the
 * client had vouched for it.
 */
function requireSignedAmzHeaders(req: ParsedRequest, info: SignedRequestInfo): void {
  const signed = new Set(info.signedHeaders);
  const unsigned = [...req.headers.keys()].filter((name) => name.startsWith("x-amz-") && !signed.has(name));
  if (unsigned.length > 0)
    throw new S3Error(403, "AccessDenied", "There were headers present in the request which were not signed", { HeadersNotSigned: unsigned.join(", ") });
}

function payloadHashOf(req: ParsedRequest, info: SignedRequestInfo): string {
  if (info.presigned) return "UNSIGNED-PAYLOAD";
  const v = single(req, "x-amz-content-sha256");
  if (v === undefined) throw new S3Error(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
  if (!PAYLOAD_HASH.test(v)) throw new S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a hex SHA-256");
  return v;
}

/** Rejects a correctly signed request whose time is outside the allowed window. */
export function checkTime(info: SignedRequestInfo, now: number, maxSkewSeconds: number): void {
  const t = datetimeMs(info.datetime);
  const serverTime = new Date(now).toISOString();
  if (info.presigned) {
    if (t - now > maxSkewSeconds * 1000) throw accessDenied("Request is not valid yet");
    // a URL valid for 0 seconds has expired as soon as it is used, as S3 answers it
    if (now >= t + info.expires! * 1000)
      throw new S3Error(403, "AccessDenied", "Request has expired", {
        "X-Amz-Expires": String(info.expires), Expires: new Date(t + info.expires! * 1000).toISOString(), ServerTime: serverTime,
      });
    return;
  }
  if (Math.abs(now - t) > maxSkewSeconds * 1000)
    throw new S3Error(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.", {
      RequestTime: info.datetime, ServerTime: serverTime, MaxAllowedSkewMilliseconds: String(maxSkewSeconds * 1000),
    });
}

export async function authenticate(req: ParsedRequest, lookupSecret: SecretLookup, now: number, maxSkewSeconds: number): Promise<Identity> {
  const info = signedRequestInfo(req);
  if (info.date !== info.datetime.slice(0, 8))
    throw new S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the credential date is not the date of X-Amz-Date.");
  requireSignedAmzHeaders(req, info);
  const payloadHash = payloadHashOf(req, info);
  const missing = info.signedHeaders.find((h) => !req.headers.has(h));
  if (missing) throw new S3Error(403, "AccessDenied", `There were headers present in SignedHeaders which were not in the request: ${missing}`);
  const secret = await lookupSecret(info.accessKey);
  if (secret === null)
    throw new S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  const query = info.presigned ? req.query.filter(([k]) => k !== "X-Amz-Signature") : req.query;
  const expected = await signature({
    method: req.method,
    encodedPath: canonicalUri(req.rawPath),
    encodedSearch: canonicalQuery(query),
    signedHeaders: info.signedHeaders,
    canonicalHeaders: canonicalHeaders(req.headers, info.signedHeaders),
    payloadHash,
  }, info, secret);
  if (!constantTimeEqual(expected, info.signature)) throw signatureMismatch();
  checkTime(info, now, maxSkewSeconds);
  const chain = payloadHash.startsWith("STREAMING-AWS4-HMAC-SHA256-")
    ? { signingKey: cachedSigningKey(secret, info.date, info.region, info.service), datetime: info.datetime, scope: `${info.date}/${info.region}/${info.service}/aws4_request`, seedSignature: info.signature }
    : undefined;
  return { accessKey: info.accessKey, info, payloadHash, chain };
}
