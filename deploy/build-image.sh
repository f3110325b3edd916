#!/usr/bin/env bash
# Builds the container image `raftq:local` from the locally built release
# binary, pulling nothing (FROM scratch + the binary + the shared libraries
# `ldd` lists + a passwd file with a non-root user).
#
# Usage: deploy/build-image.sh            (env: RAFTQ_IMAGE, CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh   # sets CARGO_TARGET_DIR (default ./target)
ensure_system_packages

image="${RAFTQ_IMAGE:-raftq:local}"
echo "==> cargo build --release -p raftq (target dir $CARGO_TARGET_DIR)"
cargo build --release -p raftq
binary="$CARGO_TARGET_DIR/release/raftq"

stage="$CARGO_TARGET_DIR/docker-context"
rm -rf "$stage"
mkdir -p "$stage/rootfs/usr/local/bin" "$stage/rootfs/etc" "$stage/data"
# Debug info off (25 MB instead of ~450), symbols kept for panic backtraces.
strip --strip-debug -o "$stage/rootfs/usr/local/bin/raftq" "$binary"

# Every shared library the binary loads, at the path the loader looks for
# it, plus the loader itself (`ldd` prints it as a bare absolute path).
ldd "$binary" | while read -r first arrow path _; do
    if [[ "$arrow" == "=>" && "$path" == /* ]]; then
        lib="$path"
    elif [[ "$first" == /* ]]; then
        lib="$first"
    else
        continue # linux-vdso: provided by the kernel
    fi
    mkdir -p "$stage/rootfs$(dirname "$lib")"
    cp -L "$lib" "$stage/rootfs$lib"
done
if ! compgen -G "$stage/rootfs/lib*/ld-linux*" >/dev/null && ! compgen -G "$stage/rootfs/lib/*/ld-linux*" >/dev/null; then
    echo "build-image: ldd named no dynamic loader for $binary" >&2
    exit 1
fi

cat >"$stage/rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
raftq:x:10001:10001:raftq:/var/lib/raftq:/sbin/nologin
PASSWD
cat >"$stage/rootfs/etc/group" <<'GROUP'
root:x:0:
raftq:x:10001:
GROUP
# Names resolve from /etc/hosts, then DNS (Docker's and Kubernetes' DNS
# give the peers' addresses).
echo "hosts: files dns" >"$stage/rootfs/etc/nsswitch.conf"
cp deploy/Dockerfile "$stage/Dockerfile"

echo "==> docker build -t $image (from $stage, FROM scratch)"
docker build --quiet -t "$image" "$stage" >/dev/null
docker run --rm --entrypoint /usr/local/bin/raftq "$image" --version
echo "built $image"
