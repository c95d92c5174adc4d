/**
 * nginx for the benchmarks, configured at run time in a temp dir:
 *  - a static origin that serves files at /bucket/key (the fast backend that isolates proxy cost);
 *  - a plain reverse proxy with no signing (the floor of what any proxy costs).
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnDetached, waitHttp, type Started } from "./proc.ts";

export function nginxBinary(): string {
  for (const c of [process.env.NGINX_BIN, Bun.which("nginx"), "/usr/sbin/nginx"]) if (c && existsSync(c)) return c;
  throw new Error("nginx not found; run: bash bench/install.sh");
}

const common = (dir: string, name: string, workers: number, modules = "") => `
${modules}
user root;
worker_processes ${workers};
daemon off;
master_process on;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 4096; multi_accept on; }
`;

const httpCommon = (dir: string) => `
  access_log off;
  client_body_temp_path ${join(dir, "client_body")};
  proxy_temp_path ${join(dir, "proxy_temp")};
  fastcgi_temp_path ${join(dir, "fastcgi_temp")};
  uwsgi_temp_path ${join(dir, "uwsgi_temp")};
  scgi_temp_path ${join(dir, "scgi_temp")};
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  client_max_body_size 0;
  tcp_nodelay on;
`;

const ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

/**
 * Static origin: GET/HEAD serve ROOT/bucket/key, `GET /BUCKET?…` serves ROOT/BUCKET.list.xml
 * (a ListObjectsV2 answer), and PUT reads the whole body (echo module's echo_read_request_body;
 * bodies over 2 MiB spill to a temp file in bodyTemp, best on tmpfs) and then answers 200, as a
 * storage backend would: an origin that answered before reading the body would make every proxy
 * in front of it cut the upload short.
 */
export function staticOriginConf(dir: string, port: number, root: string, bucket: string, workers = 1, bodyTemp = join(dir, "client_body")): string {
  if (!existsSync(ECHO_MODULE)) throw new Error(`${ECHO_MODULE} missing: apt-get install libnginx-mod-http-echo (bash bench/install.sh)`);
  return `${common(dir, "static", workers, `load_module ${ECHO_MODULE};`)}
http {
${httpCommon(dir).replace(join(dir, "client_body"), bodyTemp)}
  client_body_buffer_size 2m;
  sendfile on;
  tcp_nopush on;
  etag on;
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port} backlog=4096 reuseport;
    root ${root};
    location = /${bucket} {
      default_type application/xml;
      try_files /${bucket}.list.xml =404;
    }
    location / {
      error_page 418 = @put;
      if ($request_method = PUT) { return 418; }
    }
    location @put {
      echo_read_request_body;
      echo -n "";
    }
  }
}
`;
}

/** A plain reverse proxy: passes the request target and Host through, streams both ways, no signing. */
export function reverseProxyConf(dir: string, port: number, backendPort: number, workers = 1): string {
  return `${common(dir, "proxy", workers)}
http {
${httpCommon(dir)}
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096 reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_buffer_size 256k;
      proxy_buffers 4 256k;
      proxy_busy_buffers_size 512k;
      client_body_buffer_size 256k;
      proxy_max_temp_file_size 0;
      proxy_read_timeout 300s;
      proxy_send_timeout 300s;
    }
  }
}
`;
}

export async function startNginx(name: string, dir: string, conf: string, port: number, logDir?: string): Promise<Started> {
  mkdirSync(dir, { recursive: true });
  const confPath = join(dir, `${name}.conf`);
  writeFileSync(confPath, conf);
  const s = spawnDetached(name, [nginxBinary(), "-p", dir, "-c", confPath], { logDir });
  await waitHttp(`http://127.0.0.1:${port}/`, 15_000, s.proc);
  return s;
}
