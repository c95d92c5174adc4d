/**
 * Public buckets: the read operations a bucket opens to unsigned requests (its `anonymous` list).
 * Such a request reaches the backend signed with the bucket's keys, so only what was opened may
 * ride along: no x-amz-* header (a copy source, a checksum mode, SSE-C keys), no query parameter
 * outside the listed operation's own (a sub-resource osp does not name would read the
 * bucket's settings), and only the harmless headers of resign.ts.
 */
import type { BucketConfig } from "../config.ts";
import type { ParsedRequest } from "./request.ts";
import { anonymousDenied, requireSignedAmzHeaders, type Identity } from "./authenticate.ts";

const RESPONSE_OVERRIDES = ["response-content-type", "response-content-language", "response-expires", "response-cache-control", "response-content-disposition", "response-content-encoding"];
const LIST = ["prefix", "delimiter", "max-keys", "encoding-type"];

/** The query parameters each operation that can be opened may carry. */
const QUERY: Record<string, string[]> = {
  GetObject: ["versionId", "partNumber", ...RESPONSE_OVERRIDES],
  HeadObject: ["versionId", "partNumber", ...RESPONSE_OVERRIDES],
  ListObjects: [...LIST, "marker"],
  ListObjectsV2: [...LIST, "list-type", "continuation-token", "start-after", "fetch-owner"],
  ListObjectVersions: [...LIST, "versions", "key-marker", "version-id-marker"],
  HeadBucket: [],
  GetBucketLocation: ["location"],
};

/** The identity of an unsigned request the bucket allows; anything else is refused as before. */
export function anonymousIdentity(req: ParsedRequest, bucket: BucketConfig | undefined): Identity {
  if (!bucket || !bucket.anonymous.includes(req.operation)) throw anonymousDenied();
  const allowed = QUERY[req.operation] ?? [];
  if (req.query.some(([k]) => !allowed.includes(k))) throw anonymousDenied();
  requireSignedAmzHeaders(req, []);
  return { accessKey: "", anonymous: true, signedHeaders: [], payloadHash: "UNSIGNED-PAYLOAD" };
}
