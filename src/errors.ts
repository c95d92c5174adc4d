/** An error osp answers itself, as S3 does: a status, an S3 error code and a message. */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra XML elements (e.g. RequestTime, ServerTime) a client may read. */
    readonly detail: Record<string, string> = {},
  ) {
    super(message);
    this.name = "S3Error";
  }
}

export const accessDenied = (message = "Access Denied") => new S3Error(403, "AccessDenied", message);
export const signatureMismatch = () =>
  new S3Error(
    403,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
  );
export const invalidArgument = (message: string) => new S3Error(400, "InvalidArgument", message);
export const notImplemented = (message: string) => new S3Error(501, "NotImplemented", message);
export const requestAborted = () => new S3Error(499, "RequestAborted", "The client closed the request");
export const slowDown = () => new S3Error(503, "SlowDown", "Please reduce your request rate.");
export const requestTimeout = () =>
  new S3Error(400, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.");
export const internalError = (message = "We encountered an internal error. Please try again.") =>
  new S3Error(500, "InternalError", message);

const XML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };
export const xmlEscape = (s: string) => s.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);

export function errorXml(err: S3Error, requestId: string, resource: string): string {
  const detail = Object.entries(err.detail)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${err.code}</Code>` +
    `<Message>${xmlEscape(err.message)}</Message>${detail}` +
    `<Resource>${xmlEscape(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

/** The response for an error; HEAD answers carry the status and headers but no body. */
export function errorResponse(err: S3Error, requestId: string, resource: string, method: string): Response {
  const body = errorXml(err, requestId, resource);
  const headers = {
    "content-type": "application/xml",
    "x-amz-request-id": requestId,
    "x-osp-error-code": err.code,
  };
  if (method === "HEAD") return new Response(null, { status: err.status, headers: { ...headers, "content-length": "0" } });
  return new Response(body, { status: err.status, headers });
}
