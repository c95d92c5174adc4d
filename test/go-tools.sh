# Sourced by test/install.sh and bench/install.sh: Go's bin directory on PATH, go_tool, which
# installs a pinned Go module's command unless it is already there, and INSTALL_LOGS, a directory
# of this run's own for installers' output, removed on exit. Needs say().

INSTALL_LOGS="$(mktemp -d "${TMPDIR:-/tmp}/osp-install-XXXXXX")"
trap 'rm -rf "$INSTALL_LOGS"' EXIT

if command -v go >/dev/null 2>&1; then
  GOBIN_DIR="$(go env GOBIN)"
  [ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH | cut -d: -f1)/bin"
else
  GOBIN_DIR="$HOME/go/bin"
fi
export PATH="$GOBIN_DIR:$PATH"

go_tool() { # name, module@version, text its --version prints (mc is also Midnight Commander's name)
  local name=$1 module=$2 marker=$3
  if command -v "$name" >/dev/null 2>&1 && [[ "$("$name" --version 2>/dev/null)" == *"$marker"* ]]; then
    say "$name ok ($(command -v "$name"))"
    return
  fi
  command -v go >/dev/null 2>&1 || { say "go is needed to build $name but is not installed"; exit 1; }
  say "building $name with go install (takes several minutes the first time)"
  if ! go install "$module" >"$INSTALL_LOGS/$name.log" 2>&1; then
    tail -30 "$INSTALL_LOGS/$name.log"
    say "go install $name failed"
    exit 1
  fi
  command -v "$name" >/dev/null 2>&1 || { say "$name not found in $GOBIN_DIR after go install"; exit 1; }
  say "$name installed ($(command -v "$name"))"
}
