/** route: which backend serves a frontend bucket, and the URL a request has there. */
import type { BucketConfig, Config } from "../config.ts";
import { S3Error, invalidArgument } from "../errors.ts";
import { PRESIGN_V2_PARAMS } from "../sigv4/sigv2.ts";
import { PRESIGN_PARAMS, canonicalQuery, uriDecode, uriEncode, type QueryPair } from "../sigv4/sigv4.ts";

export const noSuchBucket = (name: string) =>
  new S3Error(404, "NoSuchBucket", "The specified bucket does not exist", { BucketName: name });

export function bucketFor(config: Config, name: string): BucketConfig {
  const b = config.buckets.get(name);
  if (!b) throw noSuchBucket(name);
  return b;
}

/** Query parameters of a presigned URL's own signature (V4 or V2): the backend gets a signature of ours instead. */
const CLIENT_AUTH_PARAMS = new Set([...PRESIGN_PARAMS, ...PRESIGN_V2_PARAMS]);

/**
 * The backend URL of a key. fetch() resolves "." and ".." segments as a browser would, which
 * would address another key (or bucket), so such keys are refused rather than rewritten.
 */
export function upstreamUrl(bucket: BucketConfig, key: string, query: QueryPair[]): string {
  if (key.split("/").some((s) => s === "." || s === "..")) {
    throw invalidArgument("Object keys with '.' or '..' path segments are not supported by this proxy");
  }
  const { protocol, host } = bucket.endpoint;
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
