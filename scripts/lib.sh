# Shared by scripts/*.sh: install what a fresh machine lacks, pick the target dir.
# shellcheck shell=bash

# Installs the Debian packages given that are not installed yet.
install_missing_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "==> installing ${missing[*]}"
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# System packages the build needs: a C++ compiler and libclang for RocksDB's
# bindings (librocksdb-sys), make for the jemalloc RocksDB allocates through.
# Installed only if missing.
ensure_system_packages() {
    install_missing_packages g++ libclang-dev pkg-config make
    if ! command -v cargo >/dev/null; then
        echo "cargo not found: install Rust (https://rustup.rs) first" >&2
        exit 1
    fi
}

# Debian's chromium and its WebDriver, for the console's browser test.
ensure_browser() {
    install_missing_packages chromium chromium-driver curl
}

# Everything builds in the release profile (tests, clippy, binary, bench), so
# RocksDB's C++ compiles once. The target dir may live outside the clone so
# later runs on the same machine reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"

# Starts a fresh three-node `raftq dev` cluster on loopback ports PORT+1..3
# with binary BIN (data in a temporary dir, removed on exit) and waits until
# it answers, asked with CLIENT_BIN (default BIN). Sets `dev` (its pid),
# `data` (its dir) and `servers` (the client address list). With
# RAFTQ_DEV_SECURE=1 the cluster runs `--secure` (auth and mutual TLS) and
# the client environment (RAFTQ_TOKEN_FILE, RAFTQ_TLS_*) is exported.
# RAFTQ_DEV_PEER_BASE_PORT moves the peer ports (default 7150+N).
# Usage: start_dev_cluster BIN PORT [CLIENT_BIN]
start_dev_cluster() {
    local bin="$1" port="$2" client="${3:-$1}" secure=()
    servers="127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2)),127.0.0.1:$((port + 3))"
    data="$(mktemp -d "${TMPDIR:-/var/tmp}/raftq-dev.XXXXXX")"
    if [[ "${RAFTQ_DEV_SECURE:-0}" == 1 ]]; then
        secure=(--secure)
        export RAFTQ_TOKEN_FILE="$data/secure/admin-token" RAFTQ_TLS_CA="$data/secure/tls/ca.pem"
        export RAFTQ_TLS_CERT="$data/secure/tls/client-admin.pem" RAFTQ_TLS_KEY="$data/secure/tls/client-admin-key.pem"
    fi
    if [[ -n "${RAFTQ_DEV_PEER_BASE_PORT:-}" ]]; then
        secure+=(--peer-base-port "$RAFTQ_DEV_PEER_BASE_PORT")
    fi
    "$bin" dev --data-dir "$data" --base-port "$port" "${secure[@]}" >"$data/dev.log" 2>&1 &
    dev=$!
    trap stop_dev_cluster EXIT
    for _ in $(seq 1 100); do
        "$client" --servers "$servers" cluster status >/dev/null 2>&1 && break
        sleep 0.2
    done
}

# Stops the cluster `start_dev_cluster` started and removes its data.
stop_dev_cluster() {
    kill "$dev" 2>/dev/null || true
    wait "$dev" 2>/dev/null || true
    rm -rf "$data"
}
