/**
 * POST Object's authentication: a browser form carries no signed request, but a policy document
 * signed with the client's key (SigV4, or SigV2), whose conditions every form field must meet.
 * Since osp re-signs the upload for the backend, a field reaches it only when a condition
 * names it, so that the signer vouched for it, as S3 itself requires.
 */
import { S3Error, accessDenied, signatureMismatch } from "../errors.ts";
import { DATETIME, cachedSigningKey, constantTimeEqual, hmacHex, parseCredential } from "../sigv4/sigv4.ts";
import { signatureV2 } from "../sigv4/sigv2.ts";
import { secretOf, type SecretLookup } from "./authenticate.ts";

export type Condition =
  | { op: "eq" | "starts-with"; field: string; value: string; text: string }
  | { op: "content-length-range"; min: number; max: number; text: string };

const invalidArgument = (m: string) => new S3Error(400, "InvalidArgument", m);
const invalidPolicy = (m: string) => new S3Error(400, "InvalidPolicyDocument", `Invalid Policy: ${m}`);
const policyFailed = (m: string) => accessDenied(`Invalid according to Policy: ${m}`);

/**
 * The access key whose secret signed the form's policy: SigV4 fields, or (unless `[server] sigv2 =
 * false`) SigV2's AWSAccessKeyId and signature.
 */
export async function verifyPolicySignature(fields: Map<string, string>, lookupSecret: SecretLookup, sigv2: boolean): Promise<string> {
  const policy = fields.get("policy");
  if (policy === undefined) throw accessDenied("Anonymous POST uploads are not allowed: sign the form's policy");
  if (fields.has("x-amz-algorithm") || fields.has("x-amz-signature") || fields.has("x-amz-credential")) {
    if (fields.get("x-amz-algorithm") !== "AWS4-HMAC-SHA256") throw invalidArgument("x-amz-algorithm only supports \"AWS4-HMAC-SHA256\"");
    const credential = fields.get("x-amz-credential");
    const datetime = fields.get("x-amz-date");
    const signature = fields.get("x-amz-signature");
    if (!credential || !datetime || !signature) throw invalidArgument("A SigV4 POST form needs x-amz-credential, x-amz-date and x-amz-signature fields");
    const scope = parseCredential(credential, (m) => invalidArgument(`x-amz-credential: ${m}`));
    if (!DATETIME.test(datetime) || datetime.slice(0, 8) !== scope.date) throw invalidArgument("x-amz-date must be yyyyMMddTHHmmssZ of the credential's date");
    const secret = await secretOf(lookupSecret, scope.accessKey);
    if (!constantTimeEqual(hmacHex(cachedSigningKey(secret, scope.date, scope.region, scope.service), policy), signature)) throw signatureMismatch();
    return scope.accessKey;
  }
  const accessKey = fields.get("awsaccesskeyid");
  const signature = fields.get("signature");
  if (accessKey === undefined && signature === undefined) throw accessDenied("Anonymous POST uploads are not allowed: sign the form's policy");
  if (!sigv2) throw new S3Error(400, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
  if (!accessKey || !signature) throw invalidArgument("A SigV2 POST form needs both AWSAccessKeyId and signature fields");
  const secret = await secretOf(lookupSecret, accessKey);
  // Signature Version 2 signs the base64 policy itself
  if (!constantTimeEqual(signatureV2(secret, policy), signature)) throw signatureMismatch();
  return accessKey;
}

const EXPIRATION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** The conditions of a signed policy that has not expired. */
export function parsePolicy(base64: string, now: number): Condition[] {
  let doc: unknown;
  try {
    if (!/^[A-Za-z0-9+/\r\n]*={0,2}$/.test(base64)) throw new Error();
    doc = JSON.parse(Buffer.from(base64, "base64").toString("utf8"));
  } catch {
    throw invalidPolicy("Invalid JSON.");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalidPolicy("Invalid JSON.");
  const d = doc as Record<string, unknown>;
  const unknown = Object.keys(d).find((k) => k !== "expiration" && k !== "conditions");
  if (unknown !== undefined) throw invalidPolicy(`Unexpected field ${JSON.stringify(unknown)}.`);
  if (d.expiration === undefined) throw invalidPolicy("Policy missing expiration.");
  if (typeof d.expiration !== "string" || !EXPIRATION.test(d.expiration) || Number.isNaN(Date.parse(d.expiration)))
    throw invalidPolicy("Invalid 'expiration' value: it must be an ISO 8601 UTC date-time.");
  if (Date.parse(d.expiration) < now) throw policyFailed("Policy expired.");
  if (!Array.isArray(d.conditions)) throw invalidPolicy("Policy missing conditions.");
  return d.conditions.flatMap(condition);
}

function condition(c: unknown): Condition[] {
  const text = JSON.stringify(c);
  if (typeof c === "object" && c !== null && !Array.isArray(c)) {
    if (Object.keys(c).length === 0) throw invalidPolicy(`Empty condition: ${text}`);
    return Object.entries(c).map(([field, value]) => {
      if (typeof value !== "string") throw invalidPolicy(`Condition values must be strings: ${text}`);
      return { op: "eq", field: field.toLowerCase(), value, text };
    });
  }
  if (!Array.isArray(c) || c.length !== 3 || typeof c[0] !== "string") throw invalidPolicy(`Invalid condition: ${text}`);
  const op = c[0].toLowerCase();
  if (op === "content-length-range") {
    const [min, max] = [c[1], c[2]].map((v) => (typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : v));
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || (min as number) < 0 || (min as number) > (max as number))
      throw invalidPolicy(`Invalid content-length-range: ${text}`);
    return [{ op, min: min as number, max: max as number, text }];
  }
  if ((op !== "eq" && op !== "starts-with") || typeof c[1] !== "string" || !c[1].startsWith("$") || typeof c[2] !== "string")
    throw invalidPolicy(`Invalid condition: ${text}`);
  return [{ op, field: c[1].slice(1).toLowerCase(), value: c[2], text }];
}

/**
 * Fields a policy need not name: its own signature, what S3 lets a form add freely, and checksums
 * of the file, which can only make the backend refuse it.
 */
const unconditioned = (name: string) =>
  ["policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"].includes(name) || /^(x-ignore-|x-amz-checksum-)/.test(name);

/**
 * Whether the form's values (its fields, with the bucket of the URL and the key as it will be
 * stored) and the file's length meet every condition, and every field is named by one.
 */
export function checkConditions(conditions: Condition[], values: Map<string, string>, fileLength: number): void {
  for (const c of conditions) {
    if (c.op === "content-length-range") {
      if (fileLength > c.max) throw new S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", { ProposedSize: String(fileLength), MaxSizeAllowed: String(c.max) });
      if (fileLength < c.min) throw new S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size", { ProposedSize: String(fileLength), MinSizeAllowed: String(c.min) });
      continue;
    }
    const value = values.get(c.field) ?? "";
    const ok = c.op === "eq"
      ? value === c.value
      // a Content-Type may list several types, each of which must match
      : (c.field === "content-type" ? value.split(",").map((s) => s.trim()) : [value]).every((v) => v.startsWith(c.value));
    if (!ok) throw policyFailed(`Policy Condition failed: ${c.text}`);
  }
  const named = new Set(conditions.flatMap((c) => (c.op === "content-length-range" ? [] : [c.field])));
  const extra = [...values.keys()].find((name) => !unconditioned(name) && !named.has(name));
  if (extra !== undefined) throw policyFailed(`Extra input fields: ${extra}`);
}
