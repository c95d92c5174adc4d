"""Start the reference proxy, object-storage-proxy (PyPI), for the benchmarks.

    python3 bench/refproxy.py CONFIG.json

CONFIG.json: {"http_port": N, "threads": N,
              "buckets": {"name": {"host", "port", "region", "access_key", "secret_key", "ttl"}},
              "keys": [{"access_key", "secret_key"}]}
It builds the equivalent of osp's config: one cos_map entry per bucket (path addressing, backend
HMAC keys) and an hmac_keystore with the frontend keys, and serves until killed.

object-storage-proxy checks SigV4 signatures only when a `validator` callable is configured (without
one, any request, even with a wrong signature or an unknown key, is forwarded). osp always checks
them, so the benchmark passes a validator that allows every key on every bucket: signatures are then
verified per request, and the validator's answer is cached per key and bucket for `ttl` seconds,
like osp's own authorization cache. Its log stays at RUST_LOG=error unless the caller says otherwise.
"""
import json
import os
import sys

from object_storage_proxy import ProxyServerConfig, start_server


def allow_all(access_key: str, bucket: str) -> bool:
    return True


def main() -> None:
    os.environ.setdefault("RUST_LOG", "error")
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
            "tls": bool(b.get("tls", False)),
        }
        for name, b in cfg["buckets"].items()
    }
    keystore = [{"access_key": k["access_key"], "secret_key": k["secret_key"]} for k in cfg["keys"]]
    conf = ProxyServerConfig(
        cos_map=cos_map,
        hmac_keystore=keystore,
        http_port=int(cfg["http_port"]),
        threads=int(cfg.get("threads", 1)),
        validator=allow_all,
        skip_signature_validation=False,
    )
    start_server(conf)


if __name__ == "__main__":
    main()
