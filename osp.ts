/**
 * osp: an S3 reverse proxy. `bun run osp.ts [--config FILE] [--check] [--healthcheck] [--version]`
 * Runs the osp.toml of the working directory unless --config names another.
 */
import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, type Config } from "./src/config.ts";
import { loadHooks, type Hooks } from "./src/hooks.ts";
import { startServer, workerCount } from "./src/server/server.ts";
import { askHealth } from "./src/server/admin.ts";
import { version } from "./package.json";

export { startServer } from "./src/server/server.ts";
export type { Config } from "./src/config.ts";
export type { Hooks, AuthorizeRequest, BackendCredentials } from "./src/hooks.ts";

const USAGE = `usage: osp [--config FILE] [--check] [--healthcheck] [--version]
  --config FILE  configuration (default: ./osp.toml)
  --check        validate the configuration and exit
  --healthcheck  exit 0 if the osp of this configuration answers /healthz on admin_port, else 1
  --version      print the version and exit`;

/** The command line, or one line saying what is wrong with it (exit code 2). */
function parseCommandLine(args: string[]) {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c", default: "osp.toml" },
        check: { type: "boolean" },
        healthcheck: { type: "boolean" },
        version: { type: "boolean", short: "V" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
    });
    // a compiled binary's forked workers are handed the binary's own path once more
    if (positionals.length > 0 && cluster.isPrimary) throw new Error(`unexpected argument '${positionals[0]}'`);
    if (values.config === "") throw new Error("option '--config' needs a file name");
    return values;
  } catch (e) {
    // node's messages are one line, but some end with advice to use "--" that osp has no use for
    console.error(`osp: ${(e as Error).message.split("\n")[0]!.replace(/\. To specify a positional argument.*$/, "")} (see --help)`);
    process.exit(2);
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

async function main(): Promise<void> {
  const values = parseCommandLine(process.argv.slice(2));
  if (values.help) return console.log(USAGE);
  if (values.version) return console.log(`osp ${version}`);
  let config: Config;
  let hooks: Hooks = {};
  try {
    config = await loadConfig(values.config);
    if (values.healthcheck) {
      if (config.server.adminPort === undefined) throw new ConfigError("server.admin_port", "is needed by --healthcheck");
      const problem = await askHealth(config);
      if (problem) console.error(`osp: unhealthy: ${problem}`);
      process.exit(problem ? 1 : 0);
    }
    for (const [field, path] of [["server.tls_cert", config.server.tlsCert], ["server.tls_key", config.server.tlsKey]] as const) {
      if (path && !(await Bun.file(path).exists())) throw new ConfigError(field, `cannot read ${path}`);
    }
    if (config.hooks.module) hooks = await loadHooks(config.hooks.module);
    if (config.keys.length === 0 && !hooks.lookupSecret)
      throw new ConfigError("keys", "no frontend keys: add a [[keys]] entry or a hooks module with lookupSecret");
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : `hooks.module: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
    console.error(`osp: ${values.config}: ${msg}`);
    // a container health check may only say 0 (healthy) or 1 (unhealthy): 2 is reserved there
    process.exit(values.healthcheck ? 1 : 2);
  }
  if (values.check) {
    const { buckets, keys } = config;
    console.log(`osp: ${values.config} is valid: ${plural(buckets.size, "bucket")}, ${plural(keys.length, "key")}, ${plural(workerCount(config), "worker")}`);
    return;
  }
  await startServer(config, hooks);
}

if (import.meta.main) await main();
