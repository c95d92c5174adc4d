/**
 * AWS Signature Version 2, which boto3, aws-cli and s3fs still use for presigned URLs unless told
 * otherwise, and s3cmd for its signed URLs. Only verified here: osp re-signs upstream with SigV4.
 * Pure functions over the raw request target and header values.
 */
import { S3Error } from "../errors.ts";
import type { HeaderMap, QueryPair } from "./sigv4.ts";

/** Query parameters that are part of the resource a V2 signature covers (sorted, as signed). */
const SUBRESOURCES = [
  "acl", "cors", "delete", "encryption", "legal-hold", "lifecycle", "location", "logging", "notification", "partNumber",
  "policy", "requestPayment", "response-cache-control", "response-content-disposition", "response-content-encoding",
  "response-content-language", "response-content-type", "response-expires", "retention", "select", "select-type",
  "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
];

/** The query parameters of a V2 presigned URL's own signature. */
export const PRESIGN_V2_PARAMS = ["AWSAccessKeyId", "Signature", "Expires"];

/**
 * Query parameters SigV2 leaves out of the signature and that only shape a listing (or name the
 * SDK's operation): S3 takes them unsigned, so osp does too.
 */
const UNSIGNED_V2_PARAMS = new Set([
  "prefix", "delimiter", "marker", "max-keys", "encoding-type", "list-type", "continuation-token", "start-after", "fetch-owner",
  "key-marker", "version-id-marker", "upload-id-marker", "max-uploads", "max-parts", "part-number-marker", "x-id",
]);

/**
 * The first query parameter a V2 signature does not cover and that could change what the backend
 * does (`?attributes`, `?object-lock`...), since osp re-signs all it forwards; undefined if none.
 */
export const unsignedParamV2 = (query: QueryPair[]): string | undefined =>
  query.find(([k]) => !SUBRESOURCES.includes(k) && !UNSIGNED_V2_PARAMS.has(k) && !PRESIGN_V2_PARAMS.includes(k))?.[0];

export interface V2Credential {
  accessKey: string;
  /** Base64 HMAC-SHA1. */
  signature: string;
  /** Presigned URLs: seconds since the epoch after which the URL is refused. */
  expires?: number;
}

/** "AWS AccessKeyId:Signature" */
export function parseAuthorizationV2(value: string): V2Credential {
  const m = /^AWS ([^\s:]+):([A-Za-z0-9+/]+={0,2})$/.exec(value);
  if (!m) throw new S3Error(400, "AuthorizationHeaderMalformed", 'The authorization header is malformed; expecting "AWS <AccessKeyId>:<Signature>"');
  return { accessKey: m[1]!, signature: m[2]! };
}

export function parsePresignedV2(query: QueryPair[]): V2Credential {
  const bad = (m: string) => new S3Error(400, "AuthorizationQueryParametersError", m);
  const values = (name: string) => query.filter(([k]) => k === name).map(([, v]) => v);
  const [accessKey, signature, expires] = PRESIGN_V2_PARAMS.map((name) => {
    const v = values(name);
    if (v.length > 1) throw bad(`${name} is given more than once`);
    return v[0];
  });
  if (!accessKey || !signature || !expires)
    throw bad("Query-string authentication requires the AWSAccessKeyId, Signature and Expires parameters.");
  if (!/^\d{1,12}$/.test(expires)) throw bad("Expires must be a number of seconds since the epoch");
  return { accessKey, signature, expires: Number(expires) };
}

export interface V2Request {
  method: string;
  /** The path as sent, still percent-encoded: what V2 signs. */
  rawPath: string;
  query: QueryPair[];
  headers: HeaderMap;
}

/** The headers a V2 signature covers: every x-amz-* header, and Content-MD5, Content-Type and Date. */
export function signedHeadersV2(headers: HeaderMap): string[] {
  return [...headers.keys()].filter((name) => name.startsWith("x-amz-") || name === "content-md5" || name === "content-type" || name === "date");
}

/** The string a V2 signature is made over; `expires` stands in for the Date of a presigned URL. */
export function stringToSignV2(r: V2Request, expires?: number): string {
  const one = (name: string) => r.headers.get(name)?.join(",") ?? "";
  const amz = [...r.headers.keys()]
    .filter((name) => name.startsWith("x-amz-"))
    .sort()
    .map((name) => `${name}:${one(name)}\n`)
    .join("");
  const present = new Map(r.query);
  const sub = SUBRESOURCES.filter((name) => present.has(name))
    .map((name) => (present.get(name) ? `${name}=${present.get(name)}` : name))
    .join("&");
  const date = expires === undefined ? one("date") : String(expires);
  return `${r.method}\n${one("content-md5")}\n${one("content-type")}\n${date}\n${amz}${r.rawPath}${sub ? "?" + sub : ""}`;
}

export const signatureV2 = (secret: string, stringToSign: string) =>
  new Bun.CryptoHasher("sha1", secret).update(stringToSign, "latin1").digest("base64");
