/**
 * Test harness: a throwaway redis-server (Debian's, installed by test/install.sh) on a free
 * loopback port, with its own temporary directory and no persistence.
 *
 *   const redis = await startRedis();
 *   // redis.url = "redis://127.0.0.1:PORT"
 *   await redis.stop();      // and start() again on the same port, as after an outage
 *   await redis.remove();    // stops it and removes its directory
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient } from "bun";
import { freePort, killSync, registerCleanup, sleep, spawnCollecting, stopProcess, type Collected } from "./proc.ts";

export interface RedisServer {
  url: string;
  port: number;
  /** A command to the server, e.g. ["DBSIZE"]. */
  send(command: string, args?: string[]): Promise<unknown>;
  stop(): Promise<void>;
  start(): Promise<void>;
  remove(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "osp-redis-"));
  const url = `redis://127.0.0.1:${port}`;
  let child: Collected | undefined;
  let unregister = () => {};

  const start = async () => {
    const c = (child = spawnCollecting(
      ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
      { cwd: dir, detached: true, echoPrefix: process.env.OSP_TEST_VERBOSE ? `[redis-${port}] ` : undefined },
    ));
    unregister = registerCleanup(() => killSync(c.proc, true));
    for (let i = 0; i < 100; i++) {
      if (c.proc.exitCode !== null) break;
      if ((await send("PING").catch(() => "")) === "PONG") return;
      await sleep(50);
    }
    throw new Error(`redis-server did not start on ${port}\n${c.output().slice(-4000)}`);
  };
  const send = async (command: string, args: string[] = []) => {
    const client = new RedisClient(url, { autoReconnect: false, connectionTimeout: 1000 });
    try {
      return await client.send(command, args);
    } finally {
      client.close();
    }
  };
  const stop = async () => {
    if (child) await stopProcess(child.proc, { graceMs: 2000, group: true });
    unregister();
    child = undefined;
  };
  await start();
  return {
    url, port, send, stop, start,
    remove: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
