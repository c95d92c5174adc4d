#!/usr/bin/env bash
# Install everything the test suites need. Idempotent; fast when everything is present.
#   bun 1.4.x (npm), node_modules (bun install), minio + mc + versitygw + promtool (go install), boto3 + awscli + pytest (pip),
#   iproute2, redis-server, podman, buildah, runc and mmdebstrap (apt-get)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUN_VERSION=1.4.5
MINIO_MODULE=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
MC_MODULE=github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9
PROMTOOL_MODULE=github.com/prometheus/prometheus/cmd/promtool@v0.316.0
VERSITYGW_MODULE=github.com/versity/versitygw/cmd/versitygw@v1.8.0

say() { echo "install: $*"; }

source test/go-tools.sh

# --- bun -----------------------------------------------------------------------------------
bun_ok() { command -v bun >/dev/null 2>&1 && [[ "$(bun --version 2>/dev/null)" == 1.4.* ]]; }
if bun_ok; then
  say "bun $(bun --version) ok"
else
  say "installing bun@$BUN_VERSION from npm"
  npm install -g --no-fund --no-audit "bun@$BUN_VERSION" >/dev/null
  export PATH="$(npm prefix -g)/bin:$PATH"
  hash -r
  bun_ok || { say "bun $BUN_VERSION install failed"; exit 1; }
  say "bun $(bun --version) installed"
fi

# --- node_modules --------------------------------------------------------------------------
if [ -f bun.lock ]; then
  bun install --frozen-lockfile >"$INSTALL_LOGS/bun-install.log" 2>&1 \
    || { cat "$INSTALL_LOGS/bun-install.log"; say "bun install --frozen-lockfile failed"; exit 1; }
else
  bun install >"$INSTALL_LOGS/bun-install.log" 2>&1 \
    || { cat "$INSTALL_LOGS/bun-install.log"; say "bun install failed"; exit 1; }
fi
say "node_modules ok"

# --- minio and mc, built from their Go modules -------------------------------------------
if [ -n "${MINIO_BIN:-}" ] && [ -x "$MINIO_BIN" ]; then
  say "minio ok ($MINIO_BIN)"
else
  go_tool minio "$MINIO_MODULE" "minio version"
fi
# mc signs every chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) over plain HTTP
go_tool mc "$MC_MODULE" "Runtime: go"
# the Versity S3 Gateway: a second S3 implementation behind osp (its --version names no release)
go_tool versitygw "$VERSITYGW_MODULE" "BuildTime"
# promtool checks osp's /metrics output; without Prometheus' service discovery (remove_all_sd)
# the build needs half the CPU: about 4 CPU-minutes and 1 GB of modules the first time
GOFLAGS="$(go env GOFLAGS 2>/dev/null || true) -tags=remove_all_sd" go_tool promtool "$PROMTOOL_MODULE" "promtool, version"

# --- python --------------------------------------------------------------------------------
PY=python3
# awscrt: botocore's CRC32C and CRC64NVME checksums
if "$PY" -c 'import boto3, pytest, awscli, awscrt, S3' >/dev/null 2>&1; then
  say "python boto3/awscli/awscrt/pytest/s3cmd ok"
else
  say "pip install boto3 awscli botocore[crt] pytest s3cmd"
  if ! "$PY" -m pip install -q --disable-pip-version-check boto3 awscli "botocore[crt]" pytest s3cmd 2>"$INSTALL_LOGS/pip.log"; then
    if grep -q externally-managed "$INSTALL_LOGS/pip.log"; then
      "$PY" -m pip install -q --disable-pip-version-check --break-system-packages boto3 awscli "botocore[crt]" pytest s3cmd
    else
      cat "$INSTALL_LOGS/pip.log"
      exit 1
    fi
  fi
  command -v pyenv >/dev/null 2>&1 && pyenv rehash >/dev/null 2>&1 || true
  "$PY" -c 'import boto3, pytest, awscli, awscrt, S3' || { say "python packages still not importable"; exit 1; }
  say "python packages installed"
fi

# --- Debian packages ------------------------------------------------------------------------
apt_updated=
apt_install() { # packages...; the index is updated once per run
  { [ -n "$apt_updated" ] || apt-get update -qq; } && apt_updated=1 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >"$INSTALL_LOGS/apt.log" 2>&1
}

# ss (iproute2): the streaming test watches the backend's socket queues
if command -v ss >/dev/null 2>&1; then
  say "ss ok"
else
  say "apt-get install iproute2"
  apt_install iproute2 || { cat "$INSTALL_LOGS/apt.log"; exit 1; }
fi

# redis-server: osp instances share presigned URL use counts through it in the limit tests
if command -v redis-server >/dev/null 2>&1; then
  say "redis-server ok"
else
  say "apt-get install redis-server"
  apt_install redis-server || { cat "$INSTALL_LOGS/apt.log"; exit 1; }
fi

# podman, buildah, runc, mmdebstrap: the container test builds the Containerfile and runs it
# (about 10 s to install); without them that test is skipped, with the reason
if command -v podman >/dev/null 2>&1 && command -v buildah >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 \
  && command -v mmdebstrap >/dev/null 2>&1; then
  say "podman, buildah, runc, mmdebstrap ok"
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "apt-get install podman buildah runc mmdebstrap"
  apt_install podman buildah runc mmdebstrap || { tail -20 "$INSTALL_LOGS/apt.log"; say "container tools not installed: the container test will be skipped"; }
else
  say "podman, buildah, runc or mmdebstrap missing (needs apt-get as root): the container test will be skipped"
fi
