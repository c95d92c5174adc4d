/**
 * The S3 operation a request names, from its method, key, query and headers. Authorization
 * hooks, declarative rules and metrics all speak in these names.
 */
const OBJECT_SUBRESOURCES = Object.entries({
  tagging: "ObjectTagging", acl: "ObjectAcl", retention: "ObjectRetention",
  "legal-hold": "ObjectLegalHold", attributes: "ObjectAttributes", torrent: "ObjectTorrent",
});
const BUCKET_SUBRESOURCES = Object.entries({
  tagging: "BucketTagging", acl: "BucketAcl", policy: "BucketPolicy", versioning: "BucketVersioning",
  location: "BucketLocation", lifecycle: "BucketLifecycleConfiguration", cors: "BucketCors",
  encryption: "BucketEncryption", "object-lock": "ObjectLockConfiguration", notification: "BucketNotificationConfiguration",
  replication: "BucketReplication", website: "BucketWebsite", logging: "BucketLogging",
  "publicAccessBlock": "PublicAccessBlock", ownershipControls: "BucketOwnershipControls",
});
const VERB: Record<string, string> = { GET: "Get", PUT: "Put", DELETE: "Delete", HEAD: "Get" };

const MULTIPART: Record<string, string> = { POST: "CompleteMultipartUpload", DELETE: "AbortMultipartUpload", GET: "ListParts" };
const OBJECT: Record<string, string> = { GET: "GetObject", HEAD: "HeadObject", DELETE: "DeleteObject" };
const BUCKET: Record<string, string> = { HEAD: "HeadBucket", PUT: "CreateBucket", DELETE: "DeleteBucket", POST: "PostObject" };

function subresource(method: string, query: Map<string, string>, table: [string, string][]): string | undefined {
  if (query.size === 0) return undefined;
  for (const [name, suffix] of table) {
    if (query.has(name)) return (VERB[method] ?? method) + suffix;
  }
}

export function s3Operation(method: string, bucket: string, key: string, query: Map<string, string>, hasCopySource: boolean): string {
  if (!bucket) return method === "GET" ? "ListBuckets" : "Unknown";
  if (key) {
    if (query.has("uploadId")) {
      const op = method === "PUT" ? (hasCopySource ? "UploadPartCopy" : "UploadPart") : MULTIPART[method];
      if (op) return op;
    }
    if (method === "POST" && query.has("uploads")) return "CreateMultipartUpload";
    const sub = subresource(method, query, OBJECT_SUBRESOURCES);
    if (sub) return sub;
    if (method === "POST") return query.has("restore") ? "RestoreObject" : query.has("select") ? "SelectObjectContent" : "PostObject";
    if (method === "PUT") return hasCopySource ? "CopyObject" : "PutObject";
    return OBJECT[method] ?? "Unknown";
  }
  if (method === "POST" && query.has("delete")) return "DeleteObjects";
  if (method === "GET" && query.has("uploads")) return "ListMultipartUploads";
  if (method === "GET" && query.has("versions")) return "ListObjectVersions";
  const sub = subresource(method, query, BUCKET_SUBRESOURCES);
  if (sub) return sub;
  if (method === "GET") return query.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects";
  return BUCKET[method] ?? "Unknown";
}

/** Operations that change nothing: all a read-only key may do. */
export const isReadOnly = (operation: string) => /^(Get|Head|List)/.test(operation);
