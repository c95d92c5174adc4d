/**
 * Stand-ins for the two IBM Cloud services this machine cannot reach, so that osp's IAM path runs
 * against the documented protocols with a real S3 behind it:
 *
 * - startIamStandIn(): the IAM token endpoint (POST /identity/token,
 *   grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=..., form-encoded). A known key gets
 *   {access_token, refresh_token, token_type: "Bearer", expires_in, expiration, scope}; an unknown
 *   one 400 {errorCode: "BXNIM0415E", errorMessage, context}. It counts exchanges per key.
 * - startCosStandIn(iam, minio): IBM COS's bearer-token door. A request must carry
 *   "Authorization: Bearer <token>" with a token the IAM stand-in issued and that has not expired
 *   (else 403 AccessDenied); it is then signed with MinIO's keys and passed to MinIO byte for byte,
 *   raw target and streamed body included, so the data path is MinIO's.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { Backend } from "./env.ts";
import { signRawRequest } from "./sign.ts";
import { close, listen, passOn } from "./relay.ts";

export interface IamStandIn {
  endpoint: string;
  /** exchanges per API key, failed ones included */
  exchanges: Map<string, number>;
  /** lifetime of the tokens it issues from now on, seconds */
  expiresIn: number;
  /** delay before it answers, ms */
  delayMs: number;
  tokenValid(token: string): boolean;
  stop(): Promise<void>;
}

const readBody = async (req: AsyncIterable<Buffer>) => {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p);
  return Buffer.concat(parts).toString("utf8");
};

export async function startIamStandIn(apiKeys: string[]): Promise<IamStandIn> {
  const tokens = new Map<string, number>(); // token -> expiry, ms
  const json = (res: import("node:http").ServerResponse, status: number, body: object) =>
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  const server = createServer(async (req, res) => {
    const form = new URLSearchParams(await readBody(req));
    await Bun.sleep(iam.delayMs);
    const requestId = crypto.randomUUID();
    if (req.method !== "POST" || req.url !== "/identity/token" || !/^application\/x-www-form-urlencoded/.test(req.headers["content-type"] ?? ""))
      return json(res, 400, { errorCode: "BXNIM0109E", errorMessage: "Property missing or empty.", context: { requestId } });
    const apiKey = form.get("apikey") ?? "";
    iam.exchanges.set(apiKey, (iam.exchanges.get(apiKey) ?? 0) + 1);
    if (form.get("grant_type") !== "urn:ibm:params:oauth:grant-type:apikey")
      return json(res, 400, { errorCode: "BXNIM0103E", errorMessage: "Unsupported grant type.", context: { requestId } });
    if (!apiKeys.includes(apiKey))
      return json(res, 400, { errorCode: "BXNIM0415E", errorMessage: "Provided API key could not be found.", context: { requestId } });
    const token = `${Buffer.from(JSON.stringify({ iam_id: "ServiceId-test", n: tokens.size })).toString("base64url")}.${crypto.randomUUID()}`;
    const now = Date.now();
    tokens.set(token, now + iam.expiresIn * 1000);
    json(res, 200, {
      access_token: token, refresh_token: "not-supported", token_type: "Bearer",
      expires_in: iam.expiresIn, expiration: Math.floor(now / 1000) + iam.expiresIn, scope: "ibm openid",
    });
  });
  const iam: IamStandIn = {
    endpoint: `${await listen(server)}/identity/token`,
    exchanges: new Map(),
    expiresIn: 3600,
    delayMs: 0,
    tokenValid: (token) => (tokens.get(token) ?? 0) > Date.now(),
    stop: () => close(server),
  };
  return iam;
}

export interface CosStandIn {
  endpoint: string;
  /** the tokens and ibm-service-instance-id values requests came with, in order */
  seen: { method: string; target: string; token: string; serviceInstanceId?: string }[];
  stop(): Promise<void>;
}

const xmlError = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;

export async function startCosStandIn(iam: IamStandIn, minio: Backend): Promise<CosStandIn> {
  const seen: CosStandIn["seen"] = [];
  const server = createServer(async (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
    seen.push({ method: req.method!, target: req.url!, token, serviceInstanceId: req.headers["ibm-service-instance-id"] as string | undefined });
    if (!iam.tokenValid(token)) {
      req.resume();
      return res.writeHead(403, { "content-type": "application/xml" }).end(xmlError("AccessDenied", "Access Denied"));
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers as IncomingHttpHeaders)) {
      if (["authorization", "host", "connection", "ibm-service-instance-id"].includes(name) || value === undefined) continue;
      headers[name] = Array.isArray(value) ? value.join(",") : value;
    }
    const signed = await signRawRequest(req.method!, req.url!, headers, { base: minio.endpoint, region: minio.region, accessKey: minio.accessKey, secret: minio.secretKey });
    passOn(req, res, minio.endpoint, signed);
  });
  return { endpoint: await listen(server), seen, stop: () => close(server) };
}
