import { describe, expect, test } from "bun:test";
import { ConfigError, parseConfig } from "../../src/config.ts";

const base = `
[server]
http_port = 8080
[[keys]]
access_key = "AK"
secret_key = "\${SECRET}"
buckets = ["a-bucket"]
[buckets.a-bucket]
endpoint = "https://s3.example.com:9000"
region = "eu-de"
backend_bucket = "real-name"
access_key = "BK"
secret_key = "bs"
`;
const env = { SECRET: "s3cret" };

function problem(text: string, e: Record<string, string> = env): string {
  try {
    parseConfig(text, e, "/etc/osp");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("osp.toml", () => {
  test("a valid file, with defaults and ${VAR}", () => {
    const c = parseConfig(base + `[hooks]\nmodule = "./hooks.ts"\n`, env, "/etc/osp");
    expect(c.server).toMatchObject({ httpPort: 8080, bind: "0.0.0.0", workers: 0, maxClockSkew: 900, sigv2: true });
    expect(parseConfig(base.replace("http_port = 8080", "http_port = 8080\nsigv2 = false"), env, "/etc/osp").server.sigv2).toBe(false);
    expect(problem(base.replace("http_port = 8080", 'http_port = 8080\nsigv2 = "no"'))).toBe("server.sigv2: expected boolean, found string");
    // the admin and metrics listeners may share a port
    expect(parseConfig(base.replace("http_port = 8080", "http_port = 8080\nadmin_port = 9090\nmetrics_port = 9090"), env, "/").server)
      .toMatchObject({ adminPort: 9090, metricsPort: 9090 });
    expect(c.server).toMatchObject({ bodyTimeout: 20, minBodyRate: 500, maxBackendRequests: 128, backendQueueTimeout: 10 });
    expect(c.keys).toEqual([{ accessKey: "AK", secretKey: "s3cret", buckets: ["a-bucket"], readOnly: false }]);
    expect(c.hooks.module).toBe("/etc/osp/hooks.ts");
    const b = c.buckets.get("a-bucket")!;
    expect(b.endpoint.origin).toBe("https://s3.example.com:9000");
    expect(b).toMatchObject({ region: "eu-de", addressingStyle: "virtual", backendBucket: "real-name", ttl: 300, tls: { rejectUnauthorized: true } });
    expect(c.server).toMatchObject({ iamEndpoint: "https://iam.cloud.ibm.com/identity/token", iamTimeout: 10, drainTimeout: 30 });
    expect(parseConfig(base.replace("http_port = 8080", "http_port = 8080\ndrain_timeout = 0"), env, "/").server.drainTimeout).toBe(0);
    expect(problem(base.replace("http_port = 8080", "drain_timeout = -1"))).toBe("server.drain_timeout: must be between 0 and 86400, found -1");
    // values that go into the backend request's headers
    expect(problem(base.replace('access_key = "BK"', 'access_key = "BK\\r\\nx-amz-acl: public-read"'))).toBe("buckets.a-bucket.access_key: holds a control character");
    expect(problem(base.replace('region = "eu-de"', 'region = "eu-de\\n"'))).toBe("buckets.a-bucket.region: holds a control character");
    expect(problem(base + 'service_instance_id = "crn\\r\\n"\n')).toBe("buckets.a-bucket.service_instance_id: holds a control character");
  });

  test("backend TLS: a CA file relative to osp.toml, and verification that can be switched off", () => {
    expect(() => parseConfig(base + `ca_file = "../../osp.toml"\n`, env, import.meta.dir)).toThrow(/^buckets\.a-bucket\.ca_file: \/.*\/osp\.toml holds no PEM certificate$/);
    expect(problem(base + `ca_file = "missing.pem"\n`)).toBe("buckets.a-bucket.ca_file: cannot read /etc/osp/missing.pem (ENOENT)");
    expect(problem(base.replace("https://s3.example.com:9000", "http://s3.example.com") + "tls_verify = false\n")).toBe("buckets.a-bucket: ca_file and tls_verify are for https endpoints");
    expect(parseConfig(base + "tls_verify = false\n", env, "/etc/osp").buckets.get("a-bucket")!.tls).toEqual({ ca: undefined, rejectUnauthorized: false });
  });

  test("presigned URL limits: a server default, overridden per bucket; Redis for several instances", () => {
    const c = parseConfig(base.replace("http_port = 8080", "http_port = 8080\npresign_max_uses = 3") + `presign_max_uses = 0\n[state]\nredis_url = "redis://:pw@redis.example:6380/2"\n`, env, "/etc/osp");
    expect(c.server.presignMaxUses).toBe(3);
    expect(c.buckets.get("a-bucket")!.presignMaxUses).toBe(0);
    expect(c.state.redisUrl).toBe("redis://:pw@redis.example:6380/2");
    expect(parseConfig(base, env, "/etc/osp")).toMatchObject({ server: { presignMaxUses: 0 }, state: { redisUrl: undefined } });
    expect(parseConfig(base.replace("http_port = 8080", "presign_max_uses = 4"), env, "/etc/osp").buckets.get("a-bucket")!.presignMaxUses).toBe(4);
    const routed = parseConfig(base.replace("http_port = 8080", "presign_max_uses = 4") + `[[routes]]\nmatch = "logs-*"\nendpoint = "http://127.0.0.1:9000"\n[[routes]]\nmatch = "tmp-*"\nendpoint = "http://127.0.0.1:9000"\npresign_max_uses = 1\n`, env, "/etc/osp");
    expect(routed.routes.map((r) => r.bucket.presignMaxUses)).toEqual([4, 1]);
    expect(problem(base + "presign_max_uses = -1\n")).toBe("buckets.a-bucket.presign_max_uses: must be between 0 and 1000000, found -1");
    expect(problem(base + `[state]\nredis_url = "http://redis.example"\n`)).toBe("state.redis_url: must be redis://[user:password@]host[:port][/db] (or rediss:// for TLS)");
    expect(problem(base + `[state]\nredis = "x"\n`)).toBe("state.redis: unknown field (known: redis_url)");
  });

  test("each mistake names its field", () => {
    expect(problem(base.replace("http_port = 8080", 'iam_endpoint = "iam.example"'))).toBe('server.iam_endpoint: not a valid URL: "iam.example"');
    expect(problem(base, {})).toBe("keys[0].secret_key: environment variable SECRET is not set");
    expect(problem(base + "extra = 1\n")).toBe("buckets.a-bucket.extra: unknown field (known: endpoint, region, addressing_style, backend_bucket, access_key, secret_key, apikey, service_instance_id, ttl, ca_file, tls_verify, anonymous, cors, presign_max_uses)");
    expect(problem(base.replace("http_port = 8080", 'http_port = "8080"'))).toBe("server.http_port: expected integer, found string");
    expect(problem(base.replace("http_port = 8080", "http_port = 70000"))).toBe("server.http_port: must be between 0 and 65535, found 70000");
    expect(problem(base.replace("http_port = 8080", "body_timeout = 0"))).toBe("server.body_timeout: must be between 1 and 3600, found 0");
    expect(problem(base.replace("http_port = 8080", "min_body_rate = -1"))).toBe("server.min_body_rate: must be between 0 and 1073741824, found -1");
    expect(problem(base.replace("http_port = 8080", "max_backend_requests = 0"))).toBe("server.max_backend_requests: must be between 1 and 100000, found 0");
    expect(problem(base.replace("http_port = 8080", "backend_queue_timeout = 1.5"))).toBe("server.backend_queue_timeout: expected integer, found float");
    expect(problem(base.replace("https://s3.example.com:9000", "s3.example.com"))).toBe('buckets.a-bucket.endpoint: not a valid URL: "s3.example.com"');
    expect(problem(base.replace("https://s3.example.com:9000", "ftp://x"))).toBe("buckets.a-bucket.endpoint: scheme must be http or https, found ftp");
    expect(problem(base.replace("https://s3.example.com:9000", "https://x/path"))).toContain("buckets.a-bucket.endpoint: must be scheme://host[:port]");
    expect(problem(base.replace('buckets = ["a-bucket"]', 'buckets = ["nope"]'))).toBe("keys[0].buckets: bucket nope is not configured and matches no route");
    expect(problem(base.replace('secret_key = "bs"', ""))).toBe("buckets.a-bucket: access_key and secret_key go together");
    expect(problem(base + "[other]\n")).toBe("other: unknown section (known: server, keys, hooks, buckets, routes, state)");
    expect(problem(base + '[[keys]]\naccess_key = "AK"\nsecret_key = "x"\n')).toBe("keys[1].access_key: duplicate access key AK");
    expect(problem("[server]\nhttp_port = 1\nx = = 2\n")).toBe("not valid TOML at line 3, column 5: invalid value");
    expect(problem(base.replace("[buckets.a-bucket]", "[buckets.A_B]"))).toStartWith("buckets.A_B: bucket names are");
    expect(problem(base.replace('region = "eu-de"', 'addressing_style = "dns"'))).toBe('buckets.a-bucket.addressing_style: must be "virtual" or "path", found "dns"');
    expect(problem(base.replace("http_port = 8080", "http_port = 8080\nadmin_port = 8080"))).toBe("server.admin_port: 8080 is also http_port");
    expect(problem(base.replace("http_port = 8080", "http_port = 8080\nmetrics_port = 8080"))).toBe("server.metrics_port: 8080 is also http_port");
  });

  test("CORS rules, as S3's CORSRule", () => {
    const rule = `[[buckets.a-bucket.cors]]\nallowed_origins = ["https://*.example.com"]\nallowed_methods = ["GET", "PUT"]\n`;
    const c = parseConfig(base + rule + `allowed_headers = ["Content-Type", "x-amz-*"]\nexpose_headers = ["ETag"]\nmax_age = 3000\n`, env, "/etc/osp");
    expect(c.buckets.get("a-bucket")!.cors).toEqual([{
      allowedOrigins: ["https://*.example.com"], allowedMethods: ["GET", "PUT"], allowedHeaders: ["content-type", "x-amz-*"], exposeHeaders: ["ETag"], maxAge: 3000,
    }]);
    expect(parseConfig(base, env, "/").buckets.get("a-bucket")!.cors).toEqual([]);
    const at = "buckets.a-bucket.cors[0]";
    expect(problem(base + `[[buckets.a-bucket.cors]]\nallowed_methods = ["GET"]\n`)).toBe(`${at}.allowed_origins: is required (at least one origin, or "*")`);
    expect(problem(base + `[[buckets.a-bucket.cors]]\nallowed_origins = ["*"]\n`)).toBe(`${at}.allowed_methods: is required (some of GET, PUT, POST, DELETE, HEAD)`);
    expect(problem(base + rule.replace('"PUT"', '"PATCH"'))).toBe(`${at}.allowed_methods: "PATCH" is not one of GET, PUT, POST, DELETE, HEAD`);
    expect(problem(base + rule.replace("https://*.example.com", "https://*.*.com"))).toBe(`${at}.allowed_origins: "https://*.*.com": each value must be non-empty with at most one "*"`);
    expect(problem(base + rule + `expose_headers = ["x-*"]\n`)).toBe(`${at}.expose_headers: wildcards are not allowed here`);
    expect(problem(base + rule + `max_age = -1\n`)).toBe(`${at}.max_age: must be between 0 and 31536000, found -1`);
    expect(problem(base + rule + `allowed_origin = ["x"]\n`)).toStartWith(`${at}.allowed_origin: unknown field`);
    expect(problem(base + `[buckets.a-bucket.cors]\nallowed_origins = ["*"]\n`)).toBe("buckets.a-bucket.cors: expected an array of tables, found table");
  });

  test("the shipped osp.toml is valid", async () => {
    const text = await Bun.file(new URL("../../osp.toml", import.meta.url)).text();
    const c = parseConfig(text, { OSP_ACCESS_KEY: "a", OSP_SECRET_KEY: "b", BACKEND_ENDPOINT: "http://127.0.0.1:9000", BACKEND_ACCESS_KEY: "c", BACKEND_SECRET_KEY: "d" }, "/");
    expect(c.buckets.size).toBe(1);
  });

  test("osp.toml mistakes in routes, domains and anonymous", () => {
    const bucket = `[buckets.bbb]\nendpoint = "http://h"\naccess_key = "a"\nsecret_key = "s"\n`;
    expect(problem(`[[routes]]\nendpoint = "http://h"\n`)).toBe("routes[0].match: is required");
    expect(problem(`[[routes]]\nmatch = "Logs*"\nendpoint = "http://h"\n`)).toBe("routes[0].match: a glob of a-z, 0-9, '.', '-', '*' and '?'");
    expect(problem(`[[routes]]\nmatch = "*"\nendpoint = "http://h"\nbackend_bucket = "fixed"\n`)).toMatch(/^routes\[0\]\.backend_bucket: a template with \{bucket\} once/);
    expect(problem(`[[routes]]\nmatch = "*"\n`)).toBe("routes[0].endpoint: is required");
    expect(problem(`[server]\ndomains = ["S3.example.com:80"]\n`)).toMatch(/^server\.domains\[0\]: a lower-case DNS name/);
    expect(problem(bucket + `anonymous = ["PutObject"]\n`)).toMatch(/^buckets\.bbb\.anonymous: PutObject cannot be anonymous/);
    expect(problem(`[buckets.bbb]\nendpoint = "http://h"\nanonymous = ["GetObject"]\n`)).toBe("buckets.bbb.anonymous: needs the backend's access_key/secret_key or apikey");
    expect(problem(bucket + `[[keys]]\naccess_key = "k"\nsecret_key = "s"\nbuckets = ["nope"]\n`)).toBe("keys[0].buckets: bucket nope is not configured and matches no route");
  });
});
