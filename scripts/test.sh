#!/usr/bin/env bash
# The whole test suite: formatting, lints, the core's purity, every test.
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_system_packages

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> the core crate has no I/O dependencies"
forbidden=$(cargo tree -p raftq-core -e normal --prefix none | grep -E '^(tokio|rocksdb|librocksdb-sys|tonic|openraft|rand|getrandom) ' || true)
if [[ -n "$forbidden" ]]; then
    echo "raftq-core must stay pure, but depends on:" >&2
    echo "$forbidden" >&2
    exit 1
fi

echo "==> cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings

echo "==> cargo test"
cargo test --release --workspace
