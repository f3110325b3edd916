#!/usr/bin/env bash
# Builds raftq and runs a three-node cluster on loopback (127.0.0.1:7101-7103).
# Usage: ./scripts/dev.sh [raftq dev flags, e.g. --nodes 5 --data-dir /tmp/rq]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_system_packages
cargo build --release -p raftq
exec "$CARGO_TARGET_DIR/release/raftq" dev "$@"
