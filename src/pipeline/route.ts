/** route: which backend serves a frontend bucket, and the URL a request has there. */
import type { BucketConfig, Config, RouteConfig } from "../config.ts";
import { S3Error, invalidArgument } from "../errors.ts";
import { PRESIGN_V2_PARAMS } from "../sigv4/sigv2.ts";
import { PRESIGN_PARAMS, canonicalQuery, uriDecode, uriEncode, type QueryPair } from "../sigv4/sigv4.ts";

export const noSuchBucket = (name: string) =>
  new S3Error(404, "NoSuchBucket", "The specified bucket does not exist", { BucketName: name });

export const invalidBucketName = (name: string, why = "The specified bucket is not valid.") =>
  new S3Error(400, "InvalidBucketName", why, { BucketName: name });

/** S3's rules for a new bucket's name (general purpose buckets). */
export function validBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !/\.\.|\.-|-\./.test(name) && !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !/^(xn--|sthree-)/.test(name) && !/(-s3alias|--ol-s3)$/.test(name);
}

/**
 * A frontend bucket: named in osp.toml, else served by the first route whose pattern matches.
 * A name S3 would refuse is refused here, before any backend is asked.
 */
export function bucketFor(config: Config, name: string): BucketConfig {
  const b = config.buckets.get(name);
  if (b) return b;
  if (!validBucketName(name)) throw invalidBucketName(name);
  const route = routeOf(config, name);
  if (!route) throw noSuchBucket(name);
  const backendBucket = route.prefix + name + route.suffix;
  if (!validBucketName(backendBucket)) throw invalidBucketName(name, "The bucket's name on its backend would not be valid (too long?)");
  return { ...route.bucket, name, backendBucket };
}

/** The bucket a name addresses, or undefined where bucketFor would refuse it. */
export function knownBucket(config: Config, name: string): BucketConfig | undefined {
  try {
    return name ? bucketFor(config, name) : undefined;
  } catch {
    return undefined;
  }
}

/** The route serving a name that osp.toml does not list one by one. */
export const routeOf = (config: Config, name: string): RouteConfig | undefined => config.routes.find((r) => r.pattern.test(name));

/** The frontend name of a backend bucket of a route, if that route serves it (exact names and earlier routes win). */
export function frontendName(config: Config, route: RouteConfig, backendBucket: string): string | undefined {
  if (!backendBucket.startsWith(route.prefix) || !backendBucket.endsWith(route.suffix)) return undefined;
  const name = backendBucket.slice(route.prefix.length, backendBucket.length - route.suffix.length);
  return validBucketName(name) && !config.buckets.has(name) && routeOf(config, name) === route ? name : undefined;
}

/** Query parameters of a presigned URL's own signature (V4 or V2): the backend gets a signature of ours instead. */
const CLIENT_AUTH_PARAMS = new Set([...PRESIGN_PARAMS, ...PRESIGN_V2_PARAMS]);

/**
 * The backend URL of a key. URL parsers (WHATWG's, and many a backend's router) resolve "." and
 * ".." segments as a browser would, which would address another key (or bucket), so such keys are
 * refused rather than rewritten.
 */
const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;

export function upstreamUrl(bucket: BucketConfig, key: string, query: QueryPair[]): string {
  if (DOT_SEGMENT.test(key)) {
    throw invalidArgument("Object keys with '.' or '..' path segments are not supported by this proxy");
  }
  const { protocol, host, hostname } = bucket.endpoint;
  // BUCKET.10.0.0.1 is no host name
  if (bucket.addressingStyle === "virtual" && /^(\[.*\]|[\d.]+)$/.test(hostname))
    throw new S3Error(502, "BadGateway", `The backend of bucket ${bucket.name} is addressed by IP: it needs addressing_style = "path"`);
  const encodedKey = uriEncode(key, true);
  const path =
    bucket.addressingStyle === "path"
      ? `/${bucket.backendBucket}${key ? "/" + encodedKey : ""}`
      : `/${encodedKey}`;
  const authority = bucket.addressingStyle === "path" ? host : `${bucket.backendBucket}.${host}`;
  const search = canonicalQuery(query.filter(([k]) => !CLIENT_AUTH_PARAMS.has(k)));
  return `${protocol}//${authority}${path}${search ? "?" + search : ""}`;
}

export interface CopySource {
  bucket: string;
  key: string;
  versionId?: string;
}

/** x-amz-copy-source: "[/]bucket/key[?versionId=v]", URL-encoded. */
export function parseCopySource(value: string): CopySource {
  const q = value.indexOf("?");
  const path = (q < 0 ? value : value.slice(0, q)).replace(/^\//, "");
  const slash = path.indexOf("/");
  if (slash <= 0 || slash === path.length - 1)
    throw invalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  let versionId: string | undefined;
  if (q >= 0) {
    const m = /^versionId=(.*)$/.exec(value.slice(q + 1));
    if (!m) throw invalidArgument("Copy Source may only carry a versionId query parameter");
    versionId = uriDecode(m[1]!);
  }
  return { bucket: uriDecode(path.slice(0, slash)), key: uriDecode(path.slice(slash + 1)), versionId };
}

/** The copy source as the backend names it. */
export function backendCopySource(bucket: BucketConfig, src: CopySource): string {
  const v = src.versionId === undefined ? "" : `?versionId=${uriEncode(src.versionId, false)}`;
  return `/${bucket.backendBucket}/${uriEncode(src.key, true)}${v}`;
}
