/**
 * Test harness: a pass-through in front of a real backend that counts the requests reaching it,
 * so that a test can tell how many a proxy let through. Requests and answers go on byte for byte
 * (Host included, so the backend's signature checks still hold).
 *
 *   const relay = await startRelay(minio.endpoint);
 *   // point osp's bucket at relay.endpoint; relay.seen lists "METHOD target" per request
 */
import { createServer, request, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Relay {
  endpoint: string;
  seen: string[];
  stop(): Promise<void>;
}

export const listen = (server: Server) =>
  new Promise<string>((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));

export const close = (server: Server) => new Promise<void>((resolve) => {
  server.closeAllConnections();
  server.close(() => resolve());
});

/** Sends a request on to `target` with these headers, and its answer back. */
export function passOn(req: IncomingMessage, res: ServerResponse, target: string, headers: OutgoingHttpHeaders): void {
  const u = new URL(target);
  const up = request({ host: u.hostname, port: u.port, method: req.method, path: req.url, headers }, (r) => {
    res.writeHead(r.statusCode!, r.headers);
    r.pipe(res);
  });
  up.on("error", () => res.destroy());
  req.pipe(up);
}

export async function startRelay(target: string): Promise<Relay> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    passOn(req, res, target, req.headers);
  });
  return { endpoint: await listen(server), seen, stop: () => close(server) };
}
