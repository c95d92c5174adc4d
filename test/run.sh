#!/usr/bin/env bash
# THE test command: install what is missing, start MinIO + osp, run all suites.
#   bash test/run.sh [--only-bun|--only-py] [-t NAME] [--verbose] [paths...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/go/bin:$PATH"
if command -v go >/dev/null 2>&1; then
  GOBIN_DIR="$(go env GOBIN)"
  [ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH | cut -d: -f1)/bin"
  export PATH="$GOBIN_DIR:$PATH"
fi
if ! command -v bun >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  export PATH="$(npm prefix -g)/bin:$PATH"
fi
bash test/install.sh
if ! command -v bun >/dev/null 2>&1; then export PATH="$(npm prefix -g)/bin:$PATH"; fi
exec bun test/harness/run.ts "$@"
