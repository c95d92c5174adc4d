/**
 * The S3 operation a request names, from its method, key, query and headers. Authorization
 * hooks, declarative rules and metrics all speak in these names.
 */
const OBJECT_SUBRESOURCES: Record<string, string> = {
  tagging: "ObjectTagging", acl: "ObjectAcl", retention: "ObjectRetention",
  "legal-hold": "ObjectLegalHold", attributes: "ObjectAttributes", torrent: "ObjectTorrent",
};
const BUCKET_SUBRESOURCES: Record<string, string> = {
  tagging: "BucketTagging", acl: "BucketAcl", policy: "BucketPolicy", versioning: "BucketVersioning",
  location: "BucketLocation", lifecycle: "BucketLifecycleConfiguration", cors: "BucketCors",
  encryption: "BucketEncryption", "object-lock": "ObjectLockConfiguration", notification: "BucketNotificationConfiguration",
  replication: "BucketReplication", website: "BucketWebsite", logging: "BucketLogging",
  "publicAccessBlock": "PublicAccessBlock", ownershipControls: "BucketOwnershipControls",
};
const VERB: Record<string, string> = { GET: "Get", PUT: "Put", DELETE: "Delete", HEAD: "Get" };

function subresource(method: string, query: Map<string, string>, table: Record<string, string>): string | undefined {
  for (const [name, suffix] of Object.entries(table)) {
    if (query.has(name)) return (VERB[method] ?? method) + suffix;
  }
}

export function s3Operation(method: string, bucket: string, key: string, query: Map<string, string>, hasCopySource: boolean): string {
  if (!bucket) return method === "GET" ? "ListBuckets" : "Unknown";
  if (key) {
    if (query.has("uploadId")) {
      const op = { PUT: hasCopySource ? "UploadPartCopy" : "UploadPart", POST: "CompleteMultipartUpload", DELETE: "AbortMultipartUpload", GET: "ListParts" }[method];
      if (op) return op;
    }
    if (method === "POST" && query.has("uploads")) return "CreateMultipartUpload";
    const sub = subresource(method, query, OBJECT_SUBRESOURCES);
    if (sub) return sub;
    if (method === "POST") return query.has("restore") ? "RestoreObject" : query.has("select") ? "SelectObjectContent" : "PostObject";
    return { GET: "GetObject", HEAD: "HeadObject", PUT: hasCopySource ? "CopyObject" : "PutObject", DELETE: "DeleteObject" }[method] ?? "Unknown";
  }
  if (method === "POST" && query.has("delete")) return "DeleteObjects";
  if (method === "GET" && query.has("uploads")) return "ListMultipartUploads";
  if (method === "GET" && query.has("versions")) return "ListObjectVersions";
  const sub = subresource(method, query, BUCKET_SUBRESOURCES);
  if (sub) return sub;
  if (method === "GET") return query.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects";
  return { HEAD: "HeadBucket", PUT: "CreateBucket", DELETE: "DeleteBucket", POST: "PostObject" }[method] ?? "Unknown";
}

/** Operations that change nothing: all a read-only key may do. */
export const isReadOnly = (operation: string) => /^(Get|Head|List)/.test(operation);
