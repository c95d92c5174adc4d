/**
 * The body that goes upstream, and the headers that describe it. Plain bodies stream through
 * with their Content-Length. aws-chunked bodies are decoded and verified (chunked.ts) and go on
 * as plain bodies, or, when they carry a trailing checksum, as unsigned aws-chunked bodies with
 * that trailer so that the backend verifies and stores the checksum.
 */
import { S3Error } from "../errors.ts";
import { announcedTrailer, decodeAwsChunked, payloadMode, reframe, reframedLength, streamOf } from "../sigv4/chunked.ts";
import type { Identity } from "./authenticate.ts";
import type { ParsedRequest } from "./request.ts";
import { header } from "../sigv4/sigv4.ts";

export interface UpstreamBody {
  body: ReadableStream<Uint8Array> | null;
  /** Header values to set (or, when null, to remove) upstream. */
  headers: Record<string, string | null>;
  /** The S3 error that stopped the body, if it was stopped. */
  failure(): S3Error | undefined;
}

const missingLength = () => new S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");

export function upstreamBody(req: ParsedRequest, identity: Identity, body: ReadableStream<Uint8Array> | null): UpstreamBody {
  const mode = payloadMode(identity.payloadHash);
  const encoding = (header(req.headers, "content-encoding") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  // a plain body labelled aws-chunked is passed on as it is, as S3 and MinIO accept it
  if (mode === "plain") {
    if (body && req.headers.has("transfer-encoding") && !req.headers.has("content-length")) throw missingLength();
    const hash = identity.payloadHash;
    return { body, headers: { "x-amz-content-sha256": /^[0-9a-f]{64}$/.test(hash) ? hash : "UNSIGNED-PAYLOAD" }, failure: () => undefined };
  }

  const declared = header(req.headers, "x-amz-decoded-content-length");
  if (declared === undefined || !/^\d{1,15}$/.test(declared)) throw missingLength();
  const decodedLength = Number(declared);
  const trailer = announcedTrailer(header(req.headers, "x-amz-trailer"));
  if (mode === "signed-chunks" && trailer) throw new S3Error(400, "InvalidArgument", "x-amz-trailer needs a *-TRAILER x-amz-content-sha256");
  let failure: S3Error | undefined;
  const onError = (e: unknown) => {
    failure = e instanceof S3Error ? e : new S3Error(400, "IncompleteBody", "The request body could not be read to its end.");
  };
  const decoded = decodeAwsChunked(body ?? new ReadableStream({ start: (c) => c.close() }), { mode, decodedLength, trailer, chain: identity.chain });
  const otherEncodings = encoding.filter((e) => e.toLowerCase() !== "aws-chunked").join(",") || null;
  const headers: Record<string, string | null> = trailer
    ? {
        "content-length": String(reframedLength(decodedLength, trailer)),
        "content-encoding": ["aws-chunked", otherEncodings].filter(Boolean).join(","),
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": trailer,
      }
    : {
        "content-length": declared,
        "content-encoding": otherEncodings,
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        "x-amz-decoded-content-length": null,
        "x-amz-trailer": null,
      };
  return { body: streamOf(trailer ? reframe(decoded) : decoded, onError), headers, failure: () => failure };
}
