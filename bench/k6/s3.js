// k6 S3 workload: every request is signed with SigV4 (header auth) here, per request.
//
//   k6 run -q --no-color -e BASE=http://127.0.0.1:PORT -e OP=get -e KEY=obj-1k \
//      -e ACCESS_KEY=... -e SECRET_KEY=... -e VUS=16 -e DURATION=5s -e SUMMARY=out.json bench/k6/s3.js
//
// OP: get | head | put | list. BUCKET (default bench), REGION (default us-east-1),
// SIZE (bytes of the PUT body, default 1 MiB), PREFIX / MAX_KEYS for list.
// PUT bodies are sent with x-amz-content-sha256: UNSIGNED-PAYLOAD (as SDKs do over TLS), so the
// client does not hash 1 MiB per request; GET/HEAD/LIST sign the empty-body hash.
// Writes the end-of-test metrics as JSON to SUMMARY.
import http from "k6/http";
import crypto from "k6/crypto";

const E = __ENV;
const BASE = E.BASE;
const HOST = BASE.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
const BUCKET = E.BUCKET || "bench";
const REGION = E.REGION || "us-east-1";
const OP = E.OP || "get";
const KEY = E.KEY || "obj-1k";
const SIZE = Number(E.SIZE || 1048576);
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export const options = {
  vus: Number(E.VUS || 1),
  duration: E.DURATION || "5s",
  discardResponseBodies: true,
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "max"],
  noVUConnectionReuse: false,
  setupTimeout: "30s",
  teardownTimeout: "30s",
};

const body = OP === "put" ? new Uint8Array(SIZE).fill(0x78).buffer : null;

let keyDate = "";
let signingKey = null;

function hmac(key, data) {
  return crypto.hmac("sha256", key, data, "binary");
}

// RFC 3986 encoding as SigV4 wants it (everything but unreserved; '/' kept in paths)
function enc(s, keepSlash) {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%2F/g, keepSlash ? "/" : "%2F");
}

function sign(method, path, query, payloadHash) {
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const date = amzDate.slice(0, 8);
  if (date !== keyDate) {
    // the derived key changes once a day; SDKs cache it the same way
    keyDate = date;
    signingKey = hmac(hmac(hmac(hmac("AWS4" + E.SECRET_KEY, date), REGION), "s3"), "aws4_request");
  }
  const signedHeaders = "host;x-amz-content-sha256;x-amz-date";
  const canonical = [
    method,
    path,
    query,
    `host:${HOST}\nx-amz-content-sha256:${payloadHash}\nx-amz-date:${amzDate}\n`,
    signedHeaders,
    payloadHash,
  ].join("\n");
  const scope = `${date}/${REGION}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, crypto.sha256(canonical, "hex")].join("\n");
  const sig = crypto.hmac("sha256", signingKey, toSign, "hex");
  return {
    "x-amz-date": amzDate,
    "x-amz-content-sha256": payloadHash,
    authorization: `AWS4-HMAC-SHA256 Credential=${E.ACCESS_KEY}/${scope}, SignedHeaders=${signedHeaders}, Signature=${sig}`,
  };
}

const objectPath = (key) => `/${BUCKET}/${key.split("/").map((p) => enc(p, false)).join("/")}`;

export default function () {
  let res;
  if (OP === "get" || OP === "head") {
    const path = objectPath(KEY);
    const method = OP === "get" ? "GET" : "HEAD";
    res = http.request(method, BASE + path, null, { headers: sign(method, path, "", EMPTY_SHA256) });
  } else if (OP === "put") {
    const path = objectPath(`${KEY}-${__VU}`);
    const h = sign("PUT", path, "", "UNSIGNED-PAYLOAD");
    h["content-type"] = "application/octet-stream";
    res = http.put(BASE + path, body, { headers: h });
  } else if (OP === "list") {
    const path = `/${BUCKET}`;
    // canonical query: sorted by name, values encoded
    const q = `list-type=2&max-keys=${E.MAX_KEYS || 1000}&prefix=${enc(E.PREFIX || "list/", false)}`;
    res = http.get(`${BASE}${path}?${q}`, { headers: sign("GET", path, q, EMPTY_SHA256) });
  } else {
    throw new Error(`unknown OP ${OP}`);
  }
  if (res.status !== 200 && __ITER < 3) console.error(`${OP} ${BASE}: HTTP ${res.status}`);
}

export function handleSummary(data) {
  const out = { metrics: data.metrics, state: data.state };
  return { [E.SUMMARY || "/dev/stdout"]: JSON.stringify(out) };
}
