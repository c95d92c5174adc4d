/** parse: the raw request as it arrived, without URL normalisation, and what it addresses. */
import { header, headerMap, parseQuery, uriDecode, type HeaderMap, type QueryPair } from "../sigv4/sigv4.ts";
import { s3Operation } from "./operation.ts";
import { S3Error } from "../errors.ts";

export interface ParsedRequest {
  id: string;
  method: string;
  /** The request target's path and query exactly as sent. */
  rawPath: string;
  rawQuery: string;
  query: QueryPair[];
  queryMap: Map<string, string>;
  headers: HeaderMap;
  /** The frontend bucket ("" for the service, i.e. ListBuckets) and the decoded object key. */
  bucket: string;
  /** Whether the Host named the bucket (virtual-hosted style): the path then holds only the key. */
  virtualHosted: boolean;
  key: string;
  operation: string;
  clientAddress: string;
  scheme: "http" | "https";
}

export interface RawRequest {
  method: string;
  /** The request target, e.g. "/bucket/a%20key?uploads". */
  url: string;
  /** Alternating names and values, as node:http's rawHeaders. */
  rawHeaders: string[];
  scheme: "http" | "https";
  clientAddress: string;
}

/** Request ids: 16 random hex digits (random, so that they say nothing about traffic), drawn 512 at a time. */
const randomPool = Buffer.alloc(4096);
let poolAt = randomPool.length;
export function newRequestId(): string {
  if (poolAt === randomPool.length) {
    crypto.getRandomValues(randomPool);
    poolAt = 0;
  }
  poolAt += 8;
  return randomPool.toString("hex", poolAt - 8, poolAt).toUpperCase();
}

/** `domains`: the [server] domains under which a Host of BUCKET.DOMAIN names the bucket. */
export function parseRequest(raw: RawRequest, id = newRequestId(), domains: readonly string[] = []): ParsedRequest {
  let target = raw.url;
  // absolute-form (RFC 9112 3.2.2), as sent to forward proxies
  const abs = /^https?:\/\/[^/?]*/i.exec(target);
  if (abs) target = target.slice(abs[0].length) || "/";
  if (!target.startsWith("/")) throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  // not a URI character (RFC 3986); a client that means a key with "\\" in it sends %5C
  if (rawPath.includes("\\")) throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
  const rawQuery = q < 0 ? "" : target.slice(q + 1);
  const headers = headerMap(raw.rawHeaders);
  checkFraming(headers);
  const hostBucket = bucketOfHost(headers.get("host")![0]!, domains);
  const slash = rawPath.indexOf("/", 1);
  const bucket = hostBucket ?? uriDecode(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
  const key = hostBucket !== undefined ? uriDecode(rawPath.slice(1)) : slash < 0 ? "" : uriDecode(rawPath.slice(slash + 1));
  const query = parseQuery(rawQuery);
  const queryMap = new Map(query);
  const method = raw.method.toUpperCase();
  return {
    id, method, rawPath, rawQuery, query, queryMap, headers, bucket, key, virtualHosted: hostBucket !== undefined,
    operation: s3Operation(method, bucket, key, queryMap, header(headers, "x-amz-copy-source") !== undefined),
    clientAddress: raw.clientAddress,
    scheme: raw.scheme,
  };
}

/** The bucket a Host names as BUCKET.DOMAIN (DNS names are case-insensitive; the port does not matter). */
export function bucketOfHost(host: string, domains: readonly string[]): string | undefined {
  if (domains.length === 0) return undefined;
  const name = host.replace(/:\d+$/, "").toLowerCase();
  for (const d of domains) {
    if (name.length > d.length + 1 && name.endsWith("." + d)) return name.slice(0, -d.length - 1);
  }
}

const badRequest = (message: string) => new S3Error(400, "InvalidArgument", message);

/**
 * One Host that a URL can carry (the backend request is built from it), and one Content-Length:
 * repeated identical lengths are read as one, as RFC 9110 allows; anything else is refused here,
 * as the client's fault, rather than failing later.
 */
let validHost = "";
/** What URL parsing would read as the end of the host or as user info. */
const HOST = /^[^\s/?#@\\]+$/;
function checkFraming(headers: HeaderMap): void {
  const host = headers.get("host");
  // clients send the same Host again and again: the last valid one is not parsed again
  if (!host || host.length !== 1 || (host[0] !== validHost && !(HOST.test(host[0]!) && URL.canParse(`http://${host[0]}/`))))
    throw badRequest("The request needs exactly one Host header naming a valid host[:port]");
  validHost = host[0]!;
  const length = headers.get("content-length");
  if (length && length.length > 1) {
    if (length.some((v) => v !== length[0])) throw badRequest("Conflicting Content-Length headers");
    headers.set("content-length", [length[0]!]);
  }
}
