#!/usr/bin/env bash
# Stops and removes the cluster's containers and network (SIGTERM first).
# `--volumes` also deletes the nodes' data.
#
# Usage: deploy/down.sh [--volumes]
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

args=(down --timeout 30)
if [[ "${1:-}" == "--volumes" || "${1:-}" == "-v" ]]; then
    args+=(--volumes)
fi
compose "${args[@]}"
