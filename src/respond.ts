/** respond: the backend's answer passed on as it came (status, headers, length, streamed body). */
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "te", "proxy-connection"];

export function respond(upstream: Response, method: string): Response {
  const headers = new Headers(upstream.headers);
  for (const h of HOP_BY_HOP) headers.delete(h);
  const bodyless = method === "HEAD" || upstream.status === 204 || upstream.status === 304;
  if (bodyless) upstream.body?.cancel().catch(() => {});
  return new Response(bodyless ? null : upstream.body, { status: upstream.status, statusText: upstream.statusText, headers });
}
