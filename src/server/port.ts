/**
 * Whether osp's ports are free. node:cluster workers in Bun listen with SO_REUSEPORT, so a worker
 * binds without error next to any other SO_REUSEPORT listener (MinIO, a second osp) and the kernel
 * splits the connections between them. A bind without SO_REUSEPORT fails next to every listener,
 * whatever its options, so the primary tries one on each port before any worker binds.
 */
import { createServer } from "node:net";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

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

/**
 * After osp's own listeners are up: the first port on which another process listens beside them.
 * That closes the gap between the probe above and the workers' bind (two osps started within
 * a second both pass the probe). Linux only: it reads /proc; elsewhere it finds nothing.
 */
export function sharedPort(ports: number[], ownPids: number[]): number | null {
  const own = new Set(ownPids.flatMap(socketInodes));
  const listeners = [...readTable("/proc/net/tcp"), ...readTable("/proc/net/tcp6")];
  for (const port of new Set(ports)) {
    const here = listeners.filter((l) => l.port === port);
    // only the addresses osp listens on: another address on the same port shares no traffic
    const ours = new Set(here.filter((l) => own.has(l.inode)).map((l) => l.address));
    if (here.some((l) => ours.has(l.address) && !own.has(l.inode))) return port;
  }
  return null;
}

/** The LISTEN sockets of a /proc/net/tcp table. */
function readTable(path: string): { address: string; port: number; inode: string }[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").slice(1).flatMap((line) => {
    const f = line.trim().split(/\s+/);
    if (f[3] !== "0A") return []; // TCP_LISTEN
    const [address, port] = f[1]!.split(":");
    return [{ address: address!, port: parseInt(port!, 16), inode: f[9]! }];
  });
}

/** Inodes of the sockets a process holds open. */
function socketInodes(pid: number): string[] {
  const fds = `/proc/${pid}/fd`;
  try {
    return readdirSync(fds).flatMap((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`${fds}/${fd}`))?.[1] ?? [];
      } catch {
        return []; // closed meanwhile
      }
    });
  } catch {
    return [];
  }
}
