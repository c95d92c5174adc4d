/**
 * One request's life: parse → authenticate → authorize → route → re-sign → forward → respond.
 * Each step is a module of its own; this file only strings them together.
 */
import type { Config } from "../config.ts";
import type { Hooks } from "../hooks.ts";
import { notImplemented } from "../errors.ts";
import type { ParsedRequest } from "./request.ts";
import { authenticate, type Identity, type SecretLookup } from "./authenticate.ts";
import { createAuthorizer, requireAllowed, type Authorizer } from "./authorize.ts";
import { createCredentialSource, sameAccount, upstreamAuth, type CredentialSource } from "../state/credentials.ts";
import { createTokenSource, requestToken, type TokenSource } from "../state/iam.ts";
import { backendCopySource, bucketFor, knownBucket, parseCopySource, upstreamUrl } from "./route.ts";
import { forwardedHeaders, resign } from "./resign.ts";
import { upstreamBody } from "./payload.ts";
import type { ClientBody } from "./upload.ts";
import { forward, type BackendAnswer } from "./forward.ts";
import { respond } from "./respond.ts";
import { createBackendSlots, type AcquireSlot } from "../state/slots.ts";
import { bucketPage, createBucketLister, listBucketsQuery, listBucketsXml, methodNotAllowed, type BucketLister } from "./listbuckets.ts";
import { anonymousIdentity } from "./anonymous.ts";
import { logError } from "../server/log.ts";
import { header } from "../sigv4/sigv4.ts";
import { createSecretLookup } from "../state/secrets.ts";
import { preflight } from "./cors.ts";
import { isPostObject, postObject } from "./postobject.ts";
import { countPresignedUse, useCounterFor, type PresignedUseSeen, type UseCounter } from "../state/presign-uses.ts";

export interface Pipeline {
  config: Config;
  lookupSecret: SecretLookup;
  authorize: Authorizer;
  credentials: CredentialSource;
  /** IAM bearer tokens for IBM COS API keys. */
  tokens: TokenSource;
  backendSlot: AcquireSlot;
  buckets: BucketLister;
  startedAt: Date;
  /** Uses of presigned URLs, where a bucket limits them. */
  useCounter?: UseCounter;
  events: PipelineEvents;
}

/** What the pipeline tells the outside (metrics) about requests. */
export interface PipelineEvents {
  presignedUse?: PresignedUseSeen;
}

export function createPipeline(config: Config, hooks: Hooks, events: PipelineEvents = {}): Pipeline {
  const p: Pipeline = {
    config,
    lookupSecret: createSecretLookup(config, hooks),
    authorize: createAuthorizer(config, hooks),
    credentials: createCredentialSource(config, hooks),
    tokens: createTokenSource((apiKey) => requestToken(config.server.iamEndpoint, apiKey, config.server.iamTimeout)),
    backendSlot: createBackendSlots(config.server.maxBackendRequests, config.server.backendQueueTimeout),
    buckets: undefined!,
    startedAt: new Date(),
    useCounter: useCounterFor(config),
    events,
  };
  p.buckets = createBucketLister(config, async (token, bucket, method, url) => {
    const headers = await resign(method, url, new Map(), await upstreamAuth(await p.credentials(token, bucket), p.tokens), bucket);
    return forward({ method, url, headers, tls: bucket.tls }, null, bucket.name, new AbortController(), Math.min(LIST_TIMEOUT, config.server.upstreamTimeout));
  });
  return p;
}

/** Seconds a backend may take to tell its buckets before a listing goes on without them. */
const LIST_TIMEOUT = 5;

/** `request` is aborted when the client goes away (see forward.ts). */
export async function proxy(p: Pipeline, req: ParsedRequest, body: ClientBody | null, request: AbortController): Promise<Response> {
  const signal = request.signal;
  // the two requests that carry no signed request: a CORS preflight (never forwarded), and a
  // browser form upload (authenticated by its signed policy)
  if (req.method === "OPTIONS") return preflight(p.config, req);
  if (isPostObject(req)) return postObject(p, req, body?.stream() ?? null, request);
  const identity = await authenticate(req, p.lookupSecret, Date.now(), p.config.server, () => anonymousIdentity(req, knownBucket(p.config, req.bucket)));
  if (!req.bucket) return listBuckets(p, req, identity);

  const bucket = bucketFor(p.config, req.bucket);
  // an anonymous request was allowed by the bucket's own list of public operations
  if (!identity.anonymous) await requireAllowed(p.authorize, identity.accessKey, req, bucket, req.operation, req.key);
  const { bodyTimeout, minBodyRate, upstreamTimeout } = p.config.server;
  // (the app gives GET and HEAD no body) the body goes to the backend straight from the client's
  // stream (upload.ts), aws-chunked ones decoded on the way
  const payload = upstreamBody(req, identity, body !== null);
  const piped = body ? { body, pace: { seconds: bodyTimeout, minRate: minBodyRate }, transform: payload.transform } : null;
  const creds = await p.credentials(identity.accessKey, bucket);
  // upstreamBody's own object, made for this request: the copy source is added to it
  const overrides = payload.headers;

  const copySource = header(req.headers, "x-amz-copy-source");
  if (copySource !== undefined) {
    const src = parseCopySource(copySource);
    const srcBucket = bucketFor(p.config, src.bucket);
    await requireAllowed(p.authorize, identity.accessKey, req, srcBucket, "GetObject", src.key);
    const srcCreds = await p.credentials(identity.accessKey, srcBucket);
    if (bucket.endpoint.origin !== srcBucket.endpoint.origin || !sameAccount(creds, srcCreds))
      throw notImplemented("Copying between buckets on different backends is not supported; download and upload instead");
    overrides["x-amz-copy-source"] = backendCopySource(srcBucket, src);
  }

  // only now is the request authenticated and authorized (a copy's source too): a use
  await countPresignedUse(p.useCounter, identity.presigned, bucket, p.config.server.maxClockSkew, p.events.presignedUse);
  const url = upstreamUrl(bucket, req.key, req.query);
  // each kind of request by the client that costs least with it (forward.ts)
  const send = async (extra: Record<string, string | null> = {}): Promise<BackendAnswer> => {
    const auth = await upstreamAuth(creds, p.tokens);
    const up = { method: req.method, url, headers: await resign(req.method, url, forwardedHeaders(req.headers, identity.signedHeaders, { ...overrides, ...extra }), auth, bucket), tls: bucket.tls };
    return forward(up, piped, bucket.name, request, upstreamTimeout);
  };
  // the rest of the same object version; the client's own conditions were met by the first answer
  const refetch = (first: number, last: number, etag: string) =>
    send({ range: `bytes=${first}-${last}`, "if-match": etag, "if-none-match": null, "if-modified-since": null, "if-unmodified-since": null });
  const release = await p.backendSlot(bucket.endpoint.origin, signal);
  const upstream = await send().catch((e) => {
    release();
    throw e;
  });
  if ((req.operation === "CreateBucket" || req.operation === "DeleteBucket") && upstream.status < 300) p.buckets.forget();
  return respond(upstream, req, bucket, { release, refetch: req.operation === "GetObject" && !req.queryMap.has("partNumber") ? refetch : undefined });
}

async function listBuckets(p: Pipeline, req: ParsedRequest, identity: Identity): Promise<Response> {
  if (req.method !== "GET") throw methodNotAllowed();
  const q = listBucketsQuery(req.queryMap);
  const { entries, unavailable } = await p.buckets.list(identity.accessKey, (bucket) =>
    p.authorize(identity.accessKey, req, bucket, "ListBuckets", "").catch(() => false),
  );
  const headers: Record<string, string> = { "content-type": "application/xml", "x-amz-request-id": req.id };
  if (unavailable.length > 0) {
    headers["x-osp-unavailable"] = unavailable.join(", ");
    logError(req.id, new Error(`ListBuckets without the buckets of ${unavailable.join(", ")}: their backend did not answer`));
  }
  return new Response(listBucketsXml(bucketPage(entries, q), q.prefix, identity.accessKey, p.startedAt), { headers });
}
