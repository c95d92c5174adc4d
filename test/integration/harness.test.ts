/** The test command itself: two runs at once on one machine, and nothing left in the temporary directory. */
import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../harness/osp.ts";

test("two runs of test/run.sh at once both pass and leave the temporary directory empty", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "osp-harness-"));
  try {
    const run = async () => {
      // each run starts its own MinIO servers and osp; a small suite of both runners keeps this short
      const suites = ["./test/unit/cache.test.ts", "./test/integration/bun-client.test.ts", "test/python/test_awscli.py::test_ls_buckets"];
      const proc = Bun.spawn(["bash", "test/run.sh", ...suites], {
        cwd: REPO_ROOT, env: { ...process.env, TMPDIR: tmp }, stdin: "ignore", stdout: "pipe", stderr: "pipe",
      });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { code, last: out.trim().split("\n").at(-1), err: code === 0 ? "" : err.slice(-2000) };
    };
    const results = await Promise.all([run(), run()]);
    for (const r of results) expect(r).toMatchObject({ code: 0, last: expect.stringMatching(/^[1-9]\d* passed, 0 failed$/) });
    expect(readdirSync(tmp)).toEqual([]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}, 120_000);
