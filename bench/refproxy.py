"""Start the reference proxy, object-storage-proxy (PyPI), for the benchmarks.

    python3 bench/refproxy.py CONFIG.json

CONFIG.json: {"http_port": N, "threads": N,
              "buckets": {"name": {"host", "port", "region", "access_key", "secret_key", "ttl"}},
              "keys": [{"access_key", "secret_key"}]}
It builds the equivalent of osp's config: one cos_map entry per bucket (path addressing, backend
HMAC keys) and an hmac_keystore with the frontend keys, and serves until killed.
"""
import json
import sys

from object_storage_proxy import ProxyServerConfig, start_server


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    cos_map = {
        name: {
            "host": b["host"],
            "port": int(b["port"]),
            "region": b.get("region", "us-east-1"),
            "access_key": b["access_key"],
            "secret_key": b["secret_key"],
            "addressing_style": "path",
            "ttl": int(b.get("ttl", 300)),
        }
        for name, b in cfg["buckets"].items()
    }
    keystore = [{"access_key": k["access_key"], "secret_key": k["secret_key"]} for k in cfg["keys"]]
    conf = ProxyServerConfig(
        cos_map=cos_map,
        hmac_keystore=keystore,
        http_port=int(cfg["http_port"]),
        threads=int(cfg.get("threads", 1)),
    )
    start_server(conf)


if __name__ == "__main__":
    main()
