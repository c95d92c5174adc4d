/**
 * record: access and error logs as JSON lines. They name the access key id, never a secret,
 * a signature or an Authorization header; lines are buffered and written off the request path.
 */
import type { IncomingMessage } from "node:http";
import type { ParsedRequest } from "../pipeline/request.ts";

let pending: string[] = [];
let scheduled = false;

function write(line: object): void {
  pending.push(JSON.stringify(line));
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    const out = pending.join("\n") + "\n";
    pending = [];
    scheduled = false;
    process.stdout.write(out);
  }, 50);
}

export function logAccess(id: string, req: ParsedRequest | undefined, incoming: IncomingMessage, status: number, ms: number): void {
  write({
    t: new Date().toISOString(), id, status, ms: Math.round(ms * 10) / 10,
    method: incoming.method, bucket: req?.bucket, key: req?.key, op: req?.operation, client: incoming.socket.remoteAddress,
  });
}

export function logError(id: string, e: unknown): void {
  console.error(JSON.stringify({ t: new Date().toISOString(), id, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }));
}
