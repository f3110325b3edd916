#!/usr/bin/env bash
# Fails if the committed stubs in src/raftq/v1/ differ from what
# generate.sh makes from proto/raftq/v1/*.proto now (a .proto changed and
# the stubs were not regenerated, or they were edited by hand).
#
# Usage: clients/python/check-generated.sh [PYTHON]
#   PYTHON  an interpreter with the pinned grpcio-tools (see generate.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/generate.sh" "${1:-}" "$tmp/v1" >/dev/null
if ! diff -r -u -x __pycache__ "$tmp/v1" "$here/src/raftq/v1" >"$tmp/diff"; then
    head -n 80 "$tmp/diff" >&2
    echo "check-generated: clients/python/src/raftq/v1 is stale; run clients/python/generate.sh and commit the result" >&2
    exit 1
fi
echo "check-generated: clients/python/src/raftq/v1 matches proto/raftq/v1"
