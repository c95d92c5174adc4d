/**
 * SigV4 for S3: canonicalization as pure functions over the raw request, and the signature
 * itself computed by aws4fetch's AwsV4Signer (string to sign, signing-key derivation, HMAC).
 * The signer's own canonicalization goes through WHATWG URL parsing, which rewrites dot
 * segments and backslashes and collapses repeated query keys; the parts it would derive are
 * therefore set from the raw request target here, so the signature covers exactly what the
 * client sent.
 */
import { AwsV4Signer } from "aws4fetch";
import { timingSafeEqual } from "node:crypto";
import { S3Error } from "../errors.ts";

export type QueryPair = [name: string, value: string];

const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
const UNRESERVED_OR_SLASH = /^[A-Za-z0-9\-._~/]*$/;

/** S3's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ (and "/" when keepSlash) as %XX. */
export function uriEncode(s: string, keepSlash: boolean): string {
  // most keys need no encoding at all
  if ((keepSlash ? UNRESERVED_OR_SLASH : UNRESERVED).test(s)) return s;
  const e = encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  return keepSlash ? e.replace(/%2F/g, "/") : e;
}

/** Percent-decoding in which "+" stays a plus, as S3 reads paths. */
export function uriDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
  }
}

export function parseQuery(rawQuery: string): QueryPair[] {
  if (!rawQuery) return [];
  return rawQuery
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const i = p.indexOf("=");
      return i < 0 ? [uriDecode(p), ""] : [uriDecode(p.slice(0, i)), uriDecode(p.slice(i + 1))];
    });
}

/** The canonical query string: pairs encoded, then sorted by name and value. */
export function canonicalQuery(pairs: QueryPair[]): string {
  return pairs
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** The canonical URI of an S3 path: decoded once, re-encoded once, no normalisation. */
export const canonicalUri = (rawPath: string) => uriEncode(uriDecode(rawPath), true);

/** Header values by lower-case name, in arrival order. */
export type HeaderMap = Map<string, string[]>;

export function headerMap(rawHeaders: string[]): HeaderMap {
  const m: HeaderMap = new Map();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const list = m.get(name);
    if (list) list.push(rawHeaders[i + 1]!);
    else m.set(name, [rawHeaders[i + 1]!]);
  }
  return m;
}

export const header = (h: HeaderMap, name: string): string | undefined => h.get(name)?.join(",");

const utf8 = new TextDecoder("utf-8", { fatal: true });
/** Printable ASCII words with single spaces between them: canonical already. */
const CANONICAL = /^[!-~]+(?: [!-~]+)*$/;

/**
 * A header value as SigV4 canonicalizes it: trimmed, inner runs of white space made one space.
 * Values are byte strings (one char per byte, as node:http hands them over and osp's client sends
 * them), so the signature covers the bytes on the wire. White space is judged on the value's
 * UTF-8 reading, as S3 servers do: 0xA0 is a space on its own but part of "à" in UTF-8.
 */
export function canonicalValue(v: string): string {
  if (CANONICAL.test(v)) return v;
  if (/^[\x00-\x7f]*$/.test(v)) return v.trim().replace(/\s+/g, " ");
  let text: string;
  try {
    text = utf8.decode(Buffer.from(v, "latin1"));
  } catch {
    return v.replace(/^[ \t]+|[ \t]+$/g, "").replace(/[ \t]+/g, " ");
  }
  return Buffer.from(text.trim().replace(/\s+/g, " "), "utf8").toString("latin1");
}

export function canonicalHeaders(h: HeaderMap, signed: string[]): string {
  return signed.map((name) => name + ":" + (h.get(name) ?? []).map(canonicalValue).join(",")).join("\n");
}

/** What a client's SigV4 credential says, from the Authorization header or the presigned query. */
export interface SignedRequestInfo {
  presigned: boolean;
  accessKey: string;
  /** yyyymmdd of the credential scope. */
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  /** x-amz-date / X-Amz-Date: yyyymmddThhmmssZ. */
  datetime: string;
  /** Seconds a presigned URL is valid. */
  expires?: number;
}

const SCOPE_PART = /^[a-z0-9-]{1,64}$/;
export const DATETIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export function parseCredential(credential: string, bad: (m: string) => S3Error) {
  const parts = credential.split("/");
  if (parts.length < 5 || parts[parts.length - 1] !== "aws4_request")
    throw bad(`the Credential is malformed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"`);
  const n = parts.length;
  const date = parts[n - 4]!;
  const region = parts[n - 3]!;
  const service = parts[n - 2]!;
  const accessKey = n === 5 ? parts[0]! : parts.slice(0, -4).join("/");
  if (!/^\d{8}$/.test(date) || !SCOPE_PART.test(region) || !accessKey) throw bad("the Credential is malformed");
  if (service !== "s3") throw bad(`the Credential names service ${JSON.stringify(service)}; expecting "s3"`);
  return { accessKey, date, region, service };
}

const SIGNED_HEADERS = /^[a-z0-9-]+(;[a-z0-9-]+)*$/;

function parseSignedHeaders(s: string, bad: (m: string) => S3Error): string[] {
  const names = SIGNED_HEADERS.test(s) ? s.split(";") : [];
  if (!names.includes("host")) throw bad("SignedHeaders must be lower-case names including host");
  return names;
}

const AUTHORIZATION_PARAMS = new Set(["Credential", "SignedHeaders", "Signature"]);
const malformed = (m: string) => new S3Error(400, "AuthorizationHeaderMalformed", `The authorization header is malformed; ${m}`);

/** Reads the SigV4 parameters of an Authorization header. */
export function parseAuthorization(value: string, datetime: string | undefined): SignedRequestInfo {
  if (value.startsWith("AWS4-ECDSA-P256-SHA256 "))
    throw new S3Error(501, "NotImplemented", "SigV4a (AWS4-ECDSA-P256-SHA256) signatures are not supported; sign with SigV4");
  if (!value.startsWith("AWS4-HMAC-SHA256 ")) throw malformed("the authorization algorithm is not AWS4-HMAC-SHA256");
  // exactly Credential, SignedHeaders and Signature, once each: anything else is not what was signed
  let credential: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  for (const part of value.slice(17).split(",")) {
    const i = part.indexOf("=");
    const name = i < 0 ? "" : part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (name === "Credential" && credential === undefined) credential = v;
    else if (name === "SignedHeaders" && signedHeaders === undefined) signedHeaders = v;
    else if (name === "Signature" && signature === undefined) signature = v;
    else if (AUTHORIZATION_PARAMS.has(name)) throw malformed(`${name} is given more than once`);
    else throw malformed(`unexpected parameter ${JSON.stringify(part.trim().slice(0, 40))}`);
  }
  if (!credential || !signedHeaders || !signature) throw malformed("Credential, SignedHeaders and Signature are required");
  if (!datetime || !DATETIME.test(datetime))
    throw new S3Error(403, "AccessDenied", "AWS authentication requires a valid x-amz-date header");
  const { accessKey, date, region, service } = parseCredential(credential, malformed);
  return { presigned: false, accessKey, date, region, service, signedHeaders: parseSignedHeaders(signedHeaders, malformed), signature, datetime };
}

/** The query parameters of a presigned URL's own signature. */
export const PRESIGN_PARAMS = [
  "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
];

/** Reads the SigV4 parameters of a presigned URL's query. */
export function parsePresigned(query: QueryPair[]): SignedRequestInfo {
  const bad = (m: string) => new S3Error(400, "AuthorizationQueryParametersError", m);
  const q = new Map(query);
  // a repeated parameter would let the client's signature and osp's reading of it differ
  const repeated = PRESIGN_PARAMS.find((name) => query.filter(([k]) => k === name).length > 1);
  if (repeated) throw bad(`${repeated} is given more than once`);
  const algorithm = q.get("X-Amz-Algorithm");
  if (algorithm === "AWS4-ECDSA-P256-SHA256")
    throw new S3Error(501, "NotImplemented", "SigV4a (AWS4-ECDSA-P256-SHA256) signatures are not supported; sign with SigV4");
  if (algorithm !== "AWS4-HMAC-SHA256") throw bad("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  const credential = q.get("X-Amz-Credential");
  const signedHeaders = q.get("X-Amz-SignedHeaders");
  const signature = q.get("X-Amz-Signature");
  const datetime = q.get("X-Amz-Date");
  const expiresText = q.get("X-Amz-Expires");
  if (!credential || !signedHeaders || !signature || !datetime || !expiresText)
    throw bad("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
  if (!DATETIME.test(datetime)) throw bad("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  const expires = /^\d{1,7}$/.test(expiresText) ? Number(expiresText) : NaN;
  if (!(expires >= 0)) throw bad("X-Amz-Expires must be a non-negative number of seconds");
  if (expires > 604800) throw bad("X-Amz-Expires must be less than a week (in seconds) that is 604800");
  return {
    presigned: true,
    ...parseCredential(credential, bad),
    signedHeaders: parseSignedHeaders(signedHeaders, bad),
    signature,
    datetime,
    expires,
  };
}

export function datetimeMs(datetime: string): number {
  const m = DATETIME.exec(datetime)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

const hmac = (key: Uint8Array | string, data: string): Uint8Array => new Bun.CryptoHasher("sha256", key).update(data).digest();
export const hmacHex = (key: Uint8Array, data: string) => new Bun.CryptoHasher("sha256", key).update(data).digest("hex");
export const sha256Hex = (data: Uint8Array | string) => new Bun.CryptoHasher("sha256").update(data).digest("hex");
/** SHA-256 of a byte string (one char per byte), such as a canonical request with raw header values. */
const sha256Latin1Hex = (data: string) => new Bun.CryptoHasher("sha256").update(data, "latin1").digest("hex");

/** The derived SigV4 signing key. */
export function signingKey(secret: string, date: string, region: string, service: string): Uint8Array {
  return hmac(hmac(hmac(hmac("AWS4" + secret, date), region), service), "aws4_request");
}

/** Signing keys by (secret, date, region, service); bounded, since the region comes from the client. */
const signingKeys = new Map<string, Uint8Array>();
export function cachedSigningKey(secret: string, date: string, region: string, service: string): Uint8Array {
  const k = `${secret}\n${date}\n${region}\n${service}`;
  let key = signingKeys.get(k);
  if (!key) {
    if (signingKeys.size >= 4096) signingKeys.delete(signingKeys.keys().next().value!);
    signingKeys.set(k, (key = signingKey(secret, date, region, service)));
  }
  return key;
}

/**
 * aws4fetch's signer core (string to sign, canonical string), with its hashing done synchronously
 * by Bun.CryptoHasher instead of WebCrypto's async importKey/sign/digest: 16 µs of CPU per
 * signature instead of 50-70 µs (bench/signing.ts), and osp signs twice per request.
 */
export class Signer extends AwsV4Signer {
  override async stringToSign(): Promise<string> {
    return ["AWS4-HMAC-SHA256", this.datetime, this.credentialString, sha256Latin1Hex(await this.canonicalString())].join("\n");
  }

  override async signature(): Promise<string> {
    const key = cachedSigningKey(this.secretAccessKey, this.datetime.slice(0, 8), this.region, this.service);
    return hmacHex(key, await this.stringToSign());
  }
}

/** The parts of a canonical request, as the signer hashes them. */
export interface CanonicalParts {
  method: string;
  encodedPath: string;
  encodedSearch: string;
  signedHeaders: string[];
  canonicalHeaders: string;
  payloadHash: string;
}

/**
 * The hex SigV4 signature of a canonical request with the given secret and scope, by aws4fetch's
 * signer. Its constructor is skipped: it parses a URL and copies and canonicalizes headers, all
 * of which osp already has in canonical form, verifying and re-signing alike (half the CPU of a
 * signature).
 */
export async function signature(parts: CanonicalParts, info: Pick<SignedRequestInfo, "datetime" | "region" | "service">, secret: string): Promise<string> {
  const signer: Signer = Object.assign(Object.create(Signer.prototype), {
    method: parts.method,
    secretAccessKey: secret,
    service: info.service,
    region: info.region,
    datetime: info.datetime,
    credentialString: `${info.datetime.slice(0, 8)}/${info.region}/${info.service}/aws4_request`,
    encodedPath: parts.encodedPath,
    encodedSearch: parts.encodedSearch,
    signedHeaders: parts.signedHeaders.join(";"),
    canonicalHeaders: parts.canonicalHeaders,
    hexBodyHash: async () => parts.payloadHash,
  });
  return signer.signature();
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

