/**
 * The body that goes upstream, and the headers that describe it. Plain bodies stream through
 * with their Content-Length. aws-chunked bodies are decoded and verified (chunked.ts) and go on
 * as plain bodies, or, when they carry a trailing checksum, as unsigned aws-chunked bodies with
 * that trailer so that the backend verifies and stores the checksum.
 */
import { S3Error } from "../errors.ts";
import { announcedTrailer, AwsChunkedDecoder, payloadMode, Reframer, reframedLength } from "../sigv4/chunked.ts";
import type { BodyTransform } from "./upload.ts";
import type { Identity } from "./authenticate.ts";
import type { ParsedRequest } from "./request.ts";
import { header } from "../sigv4/sigv4.ts";

export interface UpstreamBody {
  /** What the body becomes on its way upstream, when it is not passed on as it is. */
  transform?: BodyTransform;
  /** Header values to set (or, when null, to remove) upstream. */
  headers: Record<string, string | null>;
}

const missingLength = () => new S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");

/** `hasBody`: whether the request has a body at all (node:http gives none for a Content-Length of 0). */
export function upstreamBody(req: ParsedRequest, identity: Identity, hasBody: boolean): UpstreamBody {
  const mode = payloadMode(identity.payloadHash);
  // a plain body labelled aws-chunked is passed on as it is, as S3 and MinIO accept it
  if (mode === "plain") {
    if (hasBody && req.headers.has("transfer-encoding") && !req.headers.has("content-length")) throw missingLength();
    const hash = identity.payloadHash;
    return { headers: { "x-amz-content-sha256": /^[0-9a-f]{64}$/.test(hash) ? hash : "UNSIGNED-PAYLOAD" } };
  }

  const declared = header(req.headers, "x-amz-decoded-content-length");
  if (declared === undefined || !/^\d{1,15}$/.test(declared)) throw missingLength();
  const decodedLength = Number(declared);
  const trailer = announcedTrailer(header(req.headers, "x-amz-trailer"));
  if (mode === "signed-chunks" && trailer) throw new S3Error(400, "InvalidArgument", "x-amz-trailer needs a *-TRAILER x-amz-content-sha256");
  const decoder = new AwsChunkedDecoder({ mode, decodedLength, trailer, chain: identity.chain });
  // an empty body is not even a final chunk: refused before anything goes upstream
  if (!hasBody) decoder.end();
  const otherEncodings = (header(req.headers, "content-encoding") ?? "").split(",").map((s) => s.trim())
    .filter((e) => e !== "" && e.toLowerCase() !== "aws-chunked").join(",") || null;
  const framer = trailer ? new Reframer() : undefined;
  const transform: BodyTransform = {
    push: (chunk) => (framer ? framer.push(decoder.push(chunk)) : decoder.push(chunk)),
    end: () => {
      const { data, trailers } = decoder.end();
      return framer ? [...framer.push(data), ...framer.end(trailers)] : data;
    },
  };
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
  return { transform, headers };
}
