/**
 * osp: an S3 reverse proxy. `bun run osp.ts [--config FILE] [--check] [--healthcheck] [--version]`
 * Runs the osp.toml of the working directory unless --config names another.
 */
import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./src/config.ts";
import { serveGeneration, workerCount } from "./src/server/server.ts";
import { plural, problem, readGeneration, summary, type Generation } from "./src/server/generation.ts";
import { generationFromPrimary } from "./src/server/reload.ts";
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

async function main(): Promise<void> {
  const values = parseCommandLine(process.argv.slice(2));
  if (values.help) return console.log(USAGE);
  if (values.version) return console.log(`osp ${version}`);
  let generation: Generation;
  try {
    if (values.healthcheck) {
      const config = await loadConfig(values.config);
      if (config.server.adminPort === undefined) throw new ConfigError("server.admin_port", "is needed by --healthcheck");
      const unhealthy = await askHealth(config);
      if (unhealthy) console.error(`osp: unhealthy: ${unhealthy}`);
      process.exit(unhealthy ? 1 : 0);
    }
    // a worker serves the primary's reading of the file, which may since have changed
    generation = cluster.isWorker ? await generationFromPrimary() : await readGeneration(1, values.config);
  } catch (e) {
    console.error(`osp: ${values.config}: ${problem(e)}`);
    // a container health check may only say 0 (healthy) or 1 (unhealthy): 2 is reserved there
    process.exit(values.healthcheck ? 1 : 2);
  }
  if (values.check) {
    const { config } = generation;
    console.log(`osp: ${values.config} is valid: ${summary(config)}, ${plural(workerCount(config), "worker")}`);
    return;
  }
  await serveGeneration(generation);
}

if (import.meta.main) await main();
