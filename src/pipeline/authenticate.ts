/**
 * authenticate: who signed this request, proven by a signature: SigV4 (Authorization header or
 * presigned query), or SigV2 for the clients that still make it, unless switched off. There is
 * no other way in.
 */
import { S3Error, accessDenied, signatureMismatch } from "../errors.ts";
import type { ParsedRequest } from "./request.ts";
import {
  canonicalHeaders, canonicalQuery, canonicalUri, constantTimeEqual, datetimeMs, header,
  cachedSigningKey, parseAuthorization, parsePresigned, signature, type SignedRequestInfo,
} from "../sigv4/sigv4.ts";
import { PRESIGN_V2_PARAMS, parseAuthorizationV2, unsignedParamV2, parsePresignedV2, signatureV2, signedHeadersV2, stringToSignV2, type V2Credential } from "../sigv4/sigv2.ts";
import type { ChunkChain } from "../sigv4/chunked.ts";

/** Payload hashes the client may sign; aws-chunked (STREAMING-*) ones are recognised but not yet accepted. */
const PAYLOAD_HASH = /^([0-9a-f]{64}|UNSIGNED-PAYLOAD|STREAMING-[A-Z0-9-]+)$/;

/** The longest a presigned URL may be valid, as S3 caps SigV4 URLs. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

export interface Identity {
  /** "" for an anonymous request to a public bucket. */
  accessKey: string;
  anonymous?: boolean;
  /** The headers the client's signature covers: only these, and harmless ones, are forwarded. */
  signedHeaders: string[];
  /** The payload hash the client signed: hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-*. */
  payloadHash: string;
  /** For signed aws-chunked bodies: what continues the signature chain. */
  chain?: ChunkChain;
  /** For presigned URLs: the signature, which names the URL however the client encodes it, and when it expires (ms). */
  presigned?: { signature: string; expiresAt: number };
}

/** Resolves a frontend access key to its secret, or null when unknown. */
export type SecretLookup = (accessKey: string) => Promise<string | null>;

export interface AuthPolicy {
  /** Seconds the request's time may differ from ours. */
  maxClockSkew: number;
  /** Whether Signature Version 2 is accepted. */
  sigv2: boolean;
}

type Signed = { version: 4; info: SignedRequestInfo } | { version: 2; credential: V2Credential };

export const anonymousDenied = () => accessDenied("Anonymous access is not allowed: sign the request with AWS Signature Version 4");

/** Reads which signature the request carries; null for an anonymous request. */
export function signedRequestInfo(req: ParsedRequest): Signed | null {
  const authorization = header(req.headers, "authorization");
  const q = req.queryMap;
  const presignedV4 = q.size > 0 && (q.has("X-Amz-Signature") || q.has("X-Amz-Algorithm") || q.has("X-Amz-Credential"));
  const presignedV2 = q.size > 0 && (q.has("AWSAccessKeyId") || q.has("Signature"));
  if (Number(authorization !== undefined) + Number(presignedV4) + Number(presignedV2) > 1)
    throw new S3Error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified");
  if (authorization !== undefined) {
    // two headers would be read as one, each contributing parts
    if (req.headers.get("authorization")!.length > 1)
      throw new S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; it is given more than once");
    if (authorization.startsWith("AWS ")) return { version: 2, credential: parseAuthorizationV2(authorization) };
    return { version: 4, info: parseAuthorization(authorization, single(req, "x-amz-date")) };
  }
  if (presignedV4) return { version: 4, info: parsePresigned(req.query) };
  if (presignedV2) return { version: 2, credential: parsePresignedV2(req.query) };
  return null;
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
export function requireSignedAmzHeaders(req: ParsedRequest, signedHeaders: string[]): void {
  let unsigned: string[] | undefined;
  for (const name of req.headers.keys()) if (name.startsWith("x-amz-") && !signedHeaders.includes(name)) (unsigned ??= []).push(name);
  if (unsigned)
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
  if (info.presigned) {
    if (t - now > maxSkewSeconds * 1000) throw accessDenied("Request is not valid yet");
    // a URL valid for 0 seconds has expired as soon as it is used, as S3 answers it
    if (now >= t + info.expires! * 1000)
      throw new S3Error(403, "AccessDenied", "Request has expired", {
        "X-Amz-Expires": String(info.expires), Expires: new Date(t + info.expires! * 1000).toISOString(), ServerTime: new Date(now).toISOString(),
      });
    return;
  }
  checkSkew(info.datetime, t, now, maxSkewSeconds);
}

function checkSkew(requestTime: string, t: number, now: number, maxSkewSeconds: number): void {
  if (Math.abs(now - t) > maxSkewSeconds * 1000)
    throw new S3Error(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.", {
      RequestTime: requestTime, ServerTime: new Date(now).toISOString(), MaxAllowedSkewMilliseconds: String(maxSkewSeconds * 1000),
    });
}

/** `anonymous` decides an unsigned request: an identity where a public bucket allows it, else it throws. */
export async function authenticate(req: ParsedRequest, lookupSecret: SecretLookup, now: number, policy: AuthPolicy, anonymous: () => Identity = () => { throw anonymousDenied(); }): Promise<Identity> {
  const signed = signedRequestInfo(req);
  if (!signed) return anonymous();
  return signed.version === 4 ? authenticateV4(req, signed.info, lookupSecret, now, policy) : authenticateV2(req, signed.credential, lookupSecret, now, policy);
}

export async function secretOf(lookupSecret: SecretLookup, accessKey: string): Promise<string> {
  const secret = await lookupSecret(accessKey);
  if (secret === null) throw new S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  return secret;
}

async function authenticateV4(req: ParsedRequest, info: SignedRequestInfo, lookupSecret: SecretLookup, now: number, policy: AuthPolicy): Promise<Identity> {
  if (info.date !== info.datetime.slice(0, 8))
    throw new S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the credential date is not the date of X-Amz-Date.");
  requireSignedAmzHeaders(req, info.signedHeaders);
  const payloadHash = payloadHashOf(req, info);
  const missing = info.signedHeaders.find((h) => !req.headers.has(h));
  if (missing) throw new S3Error(403, "AccessDenied", `There were headers present in SignedHeaders which were not in the request: ${missing}`);
  const secret = await secretOf(lookupSecret, info.accessKey);
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
  checkTime(info, now, policy.maxClockSkew);
  const chain = payloadHash.startsWith("STREAMING-AWS4-HMAC-SHA256-")
    ? { signingKey: cachedSigningKey(secret, info.date, info.region, info.service), datetime: info.datetime, scope: `${info.date}/${info.region}/${info.service}/aws4_request`, seedSignature: info.signature }
    : undefined;
  const presigned = info.presigned ? { signature: info.signature, expiresAt: datetimeMs(info.datetime) + info.expires! * 1000 } : undefined;
  return { accessKey: info.accessKey, signedHeaders: info.signedHeaders, payloadHash, chain, presigned };
}

/** SigV2 covers every x-amz-* header by definition, and never the body: it goes on unsigned. */
async function authenticateV2(req: ParsedRequest, credential: V2Credential, lookupSecret: SecretLookup, now: number, policy: AuthPolicy): Promise<Identity> {
  if (!policy.sigv2)
    throw new S3Error(400, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
  for (const name of ["date", "x-amz-date", "content-md5", "content-type"]) single(req, name);
  const date = req.headers.get("x-amz-date")?.[0] ?? req.headers.get("date")?.[0];
  const t = date === undefined ? NaN : Date.parse(date);
  if (credential.expires === undefined && Number.isNaN(t)) throw accessDenied("AWS authentication requires a valid Date or x-amz-date header");
  const secret = await secretOf(lookupSecret, credential.accessKey);
  const query = credential.expires === undefined ? req.query : req.query.filter(([k]) => !PRESIGN_V2_PARAMS.includes(k));
  // SigV2 signs the bucket as part of the path, wherever the client put it
  const resource = req.virtualHosted && req.bucket ? `/${req.bucket}${req.rawPath}` : req.rawPath;
  const matches = (rawPath: string) =>
    constantTimeEqual(signatureV2(secret, stringToSignV2({ method: req.method, rawPath, query, headers: req.headers }, credential.expires)), credential.signature);
  // a bucket's resource is "/bucket/" as S3 defines it; botocore signs that but sends "/bucket"
  if (!matches(resource) && !(req.key === "" && !resource.endsWith("/") && matches(resource + "/"))) throw signatureMismatch();
  const unsigned = unsignedParamV2(req.query);
  if (unsigned !== undefined) throw accessDenied(`The query parameter ${unsigned} is not covered by a Signature Version 2 signature: sign the request with SigV4`);
  if (credential.expires !== undefined) {
    if (now >= credential.expires * 1000)
      throw new S3Error(403, "AccessDenied", "Request has expired", { Expires: new Date(credential.expires * 1000).toISOString(), ServerTime: new Date(now).toISOString() });
    if (credential.expires * 1000 - now > MAX_PRESIGN_SECONDS * 1000)
      throw new S3Error(400, "AuthorizationQueryParametersError", "Expires must be less than a week (604800 seconds) in the future");
  } else {
    checkSkew(date!, t, now, policy.maxClockSkew);
  }
  const presigned = credential.expires === undefined ? undefined : { signature: credential.signature, expiresAt: credential.expires * 1000 };
  return { accessKey: credential.accessKey, signedHeaders: signedHeadersV2(req.headers), payloadHash: "UNSIGNED-PAYLOAD", presigned };
}
