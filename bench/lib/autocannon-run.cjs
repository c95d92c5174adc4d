// Runs autocannon through its API and prints its JSON result on stdout.
//
//   AUTOCANNON_DIR=/path/to/node_modules/autocannon node bench/lib/autocannon-run.cjs '{"url":…,"connections":16,"duration":5,"method":"HEAD","headers":{…}}'
//
// Why not the CLI: autocannon's response parser does not know that a HEAD response has no body,
// so against any server that answers HEAD with a Content-Length it waits for the body forever and
// counts 0 requests. For HEAD runs this wrapper tells the parser (http-parser-js, the copy
// autocannon itself loads) to skip the body of every response.
"use strict";
const path = require("node:path");

const dir = process.env.AUTOCANNON_DIR;
if (!dir) throw new Error("AUTOCANNON_DIR is not set");
const opts = JSON.parse(process.argv[2]);
const autocannon = require(dir);

if ((opts.method || "GET").toUpperCase() === "HEAD") {
  const parserPath = require.resolve("http-parser-js", { paths: [dir, path.dirname(dir)] });
  const { HTTPParser } = require(parserPath);
  const key = HTTPParser.kOnHeadersComplete;
  const wrapped = Symbol("onHeadersComplete");
  Object.defineProperty(HTTPParser.prototype, key, {
    configurable: true,
    get() {
      return this[wrapped] || (() => true);
    },
    set(fn) {
      const self = this;
      this[wrapped] = function (...args) {
        fn.apply(self, args);
        return true; // skip the body: responses to HEAD have none
      };
    },
  });
}

autocannon(opts, (err, result) => {
  if (err) {
    console.error(err.stack || String(err));
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(result));
});
