/**
 * Whether osp's ports are free. node:cluster workers in Bun listen with SO_REUSEPORT, so a worker
 * binds without error next to any other SO_REUSEPORT listener (MinIO, a second osp) and the kernel
 * splits the connections between them. A bind without SO_REUSEPORT fails next to every listener,
 * whatever its options, so the primary tries one on each port before any worker binds.
 */
import { createServer } from "node:net";

/** Resolves with the error code if host:port cannot be bound exclusively, or null if it is free. */
export function portHeld(port: number, host: string): Promise<string | null> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

/** The first of the ports that is held by another process, with why; port 0 (any free port) is never held. */
export async function firstHeldPort(ports: number[], host: string): Promise<{ port: number; code: string } | null> {
  for (const port of new Set(ports)) {
    if (port === 0) continue;
    const code = await portHeld(port, host);
    if (code) return { port, code };
  }
  return null;
}
