#!/usr/bin/env bash
# Install what the benchmarks need. Idempotent; fast when everything is present.
#   the test tools (bun, node_modules, minio)  via test/install.sh
#   k6                                         go install go.k6.io/k6@v1.8.1
#   nginx + its echo module, curl              apt (Debian)
#   object-storage-proxy                       pip (PyPI wheel)
#   autocannon                                 npx (npm cache; not a project dependency)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "bench/install: $*"; }

bash test/install.sh

source test/go-tools.sh
go_tool k6 go.k6.io/k6@v1.8.1 "k6 v"

# --- nginx (with the echo module, used by the static origin), curl --------------------------
need_apt=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] || need_apt+=(libnginx-mod-http-echo)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >"$INSTALL_LOGS/apt.log" 2>&1 \
    || { tail -20 "$INSTALL_LOGS/apt.log"; say "apt-get install failed"; exit 1; }
fi
say "nginx ok ($( (/usr/sbin/nginx -v || nginx -v) 2>&1 ))"

# --- object-storage-proxy (the reference project) ---------------------------------------------
PY="${PYTHON:-python3}"
if "$PY" -c 'import object_storage_proxy' >/dev/null 2>&1; then
  say "object-storage-proxy ok ($("$PY" -c 'import importlib.metadata as m; print(m.version("object-storage-proxy"))'))"
else
  say "pip install object-storage-proxy"
  if ! "$PY" -m pip install -q --disable-pip-version-check object-storage-proxy 2>"$INSTALL_LOGS/pip-bench.log"; then
    if grep -q externally-managed "$INSTALL_LOGS/pip-bench.log"; then
      "$PY" -m pip install -q --disable-pip-version-check --break-system-packages object-storage-proxy
    else
      cat "$INSTALL_LOGS/pip-bench.log"
      say "object-storage-proxy could not be installed: the benchmark will run without it and say so"
    fi
  fi
  command -v pyenv >/dev/null 2>&1 && pyenv rehash >/dev/null 2>&1 || true
fi

# --- autocannon (into npx's cache) -------------------------------------------------------------
npx -y autocannon --version >/dev/null 2>&1 && say "autocannon ok ($(npx -y autocannon --version 2>/dev/null | head -1))" \
  || { say "npx autocannon failed"; exit 1; }
