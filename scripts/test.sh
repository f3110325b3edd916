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

echo "==> the web console in headless Chromium against raftq dev --secure"
tests/console/run.sh

# The container chaos suite needs a Docker engine (images are built locally,
# nothing is pulled); without one it is skipped, not failed.
if docker info >/dev/null 2>&1; then
    echo "==> chaos suite (short) against the docker-compose cluster"
    deploy/chaos/run.sh short
    echo "==> the Python example against the docker-compose cluster"
    examples/python/run.sh --compose
    echo "==> the Python client's tests against the docker-compose cluster"
    clients/python/run-tests.sh --compose
else
    echo "==> no Docker engine: skipping the container chaos suite (deploy/chaos/run.sh)"
    echo "==> the Python example against raftq dev"
    examples/python/run.sh --dev
    echo "==> the Python client's tests against raftq dev"
    clients/python/run-tests.sh --dev
fi
