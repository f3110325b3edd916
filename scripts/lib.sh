# Shared by scripts/*.sh: install what a fresh machine lacks, pick the target dir.
# shellcheck shell=bash

# System packages the build needs: a C++ compiler and libclang for RocksDB's
# bindings (librocksdb-sys). Installed only if missing.
ensure_system_packages() {
    local missing=()
    for pkg in g++ libclang-dev pkg-config; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "==> installing ${missing[*]}"
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
    if ! command -v cargo >/dev/null; then
        echo "cargo not found: install Rust (https://rustup.rs) first" >&2
        exit 1
    fi
}

# Everything builds in the release profile (tests, clippy, binary, bench), so
# RocksDB's C++ compiles once. The target dir may live outside the clone so
# later runs on the same machine reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"
