/**
 * osp: an S3 reverse proxy. `bun run osp.ts [--config FILE] [--check]`
 * Runs the osp.toml of the working directory unless --config names another.
 */
import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, type Config } from "./src/config.ts";
import { loadHooks, type Hooks } from "./src/hooks.ts";
import { startServer, workerCount } from "./src/server/server.ts";

export { startServer } from "./src/server/server.ts";
export type { Config } from "./src/config.ts";
export type { Hooks, AuthorizeRequest, BackendCredentials } from "./src/hooks.ts";

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { config: { type: "string", short: "c", default: "osp.toml" }, check: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  // a compiled binary's forked workers are handed the binary's own path once more
  if (positionals.length > 0 && cluster.isPrimary) {
    console.error(`osp: unexpected argument ${positionals[0]} (see --help)`);
    process.exit(2);
  }
  if (values.help) {
    console.log("usage: osp [--config FILE] [--check]\n  --config FILE  configuration (default: ./osp.toml)\n  --check        validate the configuration and exit");
    return;
  }
  let config: Config;
  let hooks: Hooks = {};
  try {
    config = await loadConfig(values.config!);
    for (const [field, path] of [["server.tls_cert", config.server.tlsCert], ["server.tls_key", config.server.tlsKey]] as const) {
      if (path && !(await Bun.file(path).exists())) throw new ConfigError(field, `cannot read ${path}`);
    }
    if (config.hooks.module) hooks = await loadHooks(config.hooks.module);
    if (config.keys.length === 0 && !hooks.lookupSecret)
      throw new ConfigError("keys", "no frontend keys: add a [[keys]] entry or a hooks module with lookupSecret");
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : `hooks.module: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
    console.error(`osp: ${values.config}: ${msg}`);
    process.exit(2);
  }
  if (values.check) {
    console.log(`osp: ${values.config} is valid: ${config.buckets.size} buckets, ${config.keys.length} keys, ${workerCount(config)} workers`);
    return;
  }
  startServer(config, hooks);
}

if (import.meta.main) await main();
