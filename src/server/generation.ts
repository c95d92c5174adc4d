/**
 * Configuration generations. osp.toml and its hooks module are read at start-up and again on
 * SIGHUP; a reading that passes the start-up validation becomes the next generation and gets a
 * pipeline of its own, so the caches of keys and buckets that went away go with the old one.
 * Requests take the current pipeline once, so those in flight finish on the generation they
 * started with.
 */
import { ConfigError, configDir, parseConfig, readConfigText, type Config, type ServerConfig } from "../config.ts";
import { loadHooks, type Hooks } from "../hooks.ts";
import { createPipeline, type Pipeline, type PipelineEvents } from "../pipeline/proxy.ts";

export interface Generation {
  /** 1 at start-up, one more at each reload that took. */
  n: number;
  config: Config;
  hooks: Hooks;
  /** The file it was read from and its text; without one (embedding), SIGHUP has nothing to re-read. */
  source?: { path: string; text: string };
}

/** osp.toml's text, validated and its hooks module loaded exactly as at start-up; throws ConfigError. */
export async function loadGeneration(n: number, path: string, text: string): Promise<Generation> {
  const config = parseConfig(text, process.env, configDir(path));
  for (const [field, file] of [["server.tls_cert", config.server.tlsCert], ["server.tls_key", config.server.tlsKey]] as const) {
    if (file && !(await Bun.file(file).exists())) throw new ConfigError(field, `cannot read ${file}`);
  }
  let hooks: Hooks = {};
  if (config.hooks.module) {
    try {
      hooks = await loadHooks(config.hooks.module);
    } catch (e) {
      throw new ConfigError("hooks.module", problem(e));
    }
  }
  if (config.keys.length === 0 && !hooks.lookupSecret)
    throw new ConfigError("keys", "no frontend keys: add a [[keys]] entry or a hooks module with lookupSecret");
  return { n, config, hooks, source: { path, text } };
}

export const readGeneration = async (n: number, path: string) => loadGeneration(n, path, await readConfigText(path));

/** One line for a failed load: a ConfigError names the field; anything else gives its first line. */
export const problem = (e: unknown) => (e instanceof Error ? e.message.split("\n")[0]! : String(e));

/** Fields of the listeners and the worker pool, which only a restart changes. */
const RESTART_ONLY = [
  ["bind", "bind"], ["http_port", "httpPort"], ["https_port", "httpsPort"], ["tls_cert", "tlsCert"], ["tls_key", "tlsKey"],
  ["metrics_port", "metricsPort"], ["admin_port", "adminPort"], ["workers", "workers"],
] as const satisfies readonly (readonly [string, keyof ServerConfig])[];

/** The first field that `next` changes and only a restart can, as the error that refuses the reload; or null. */
export function needsRestart(current: ServerConfig, next: ServerConfig): ConfigError | null {
  for (const [field, key] of RESTART_ONLY) {
    const [was, is] = [current[key], next[key]];
    if (was !== is) return new ConfigError(`server.${field}`, `changed from ${was ?? "unset"} to ${is ?? "unset"}, which needs a restart`);
  }
  return null;
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export const summary = (config: Config) => `${plural(config.buckets.size, "bucket")}, ${plural(config.keys.length, "key")}`;

/** What one process serves: a generation and its pipeline, replaced together. */
export class Live {
  pipeline: Pipeline;

  constructor(public generation: Generation, private readonly events: PipelineEvents = {}) {
    this.pipeline = createPipeline(generation.config, generation.hooks, events);
  }

  swap(next: Generation): void {
    const pipeline = createPipeline(next.config, next.hooks, this.events);
    // the cap on backend requests keeps counting those still in flight on the old generation
    const [was, is] = [this.generation.config.server, next.config.server];
    if (was.maxBackendRequests === is.maxBackendRequests && was.backendQueueTimeout === is.backendQueueTimeout) pipeline.backendSlot = this.pipeline.backendSlot;
    this.generation = next;
    this.pipeline = pipeline;
  }
}
