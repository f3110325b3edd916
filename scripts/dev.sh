#!/usr/bin/env bash
# Builds raftq and runs it locally. Usage: ./scripts/dev.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_system_packages
cargo build --release -p raftq
# Until the replicated cluster lands (`raftq dev`), this runs the in-process
# demo of the queue state machine.
exec "$CARGO_TARGET_DIR/release/raftq" demo "$@"
