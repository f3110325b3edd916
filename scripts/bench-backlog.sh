#!/usr/bin/env bash
# Backlog benchmark (README "Performance", docs/storage.md): a fresh
# three-node `raftq dev` cluster on loopback, then `raftq bench --scenario
# backlog`: publish N × 1 KiB in steps (batches of 100, 16 in flight) and
# leave them in the queue, printing the publish rate of each step and every
# node's RSS and data dir size. With the backlog in place,
# scripts/bench-restarts.sh times a follower restart, a snapshot catch-up
# into a wiped data dir and a whole-cluster restart. Then one consumer
# drains the queue and the bench checks nothing was lost or duplicated.
# Finally the data dirs are measured again once the idle nodes have
# compacted their stores.
#
# Usage: scripts/bench-backlog.sh
#   RAFTQ_BENCH_MESSAGES (default 1000000), RAFTQ_BENCH_STEPS (default 4),
#   RAFTQ_BENCH_PORT (default 7600), RAFTQ_BENCH_RESTARTS (default 1; 0
#   skips the restarts), RAFTQ_SERVER_BIN (default
#   $CARGO_TARGET_DIR/release/raftq), RAFTQ_BENCH_WARMUP (default 0:
#   messages published and drained on the bench queue first, so the
#   measured run starts as under a steady keyed load, with the queue's
#   table of idempotency keys full), RAFTQ_BENCH_KEEP_LOGS (a directory:
#   each node's RocksDB LOG is copied there at the end, to count flushes
#   and compactions)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
server_bin="${RAFTQ_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/release/raftq}"
messages="${RAFTQ_BENCH_MESSAGES:-1000000}"
steps="${RAFTQ_BENCH_STEPS:-4}"
port="${RAFTQ_BENCH_PORT:-7600}"
restarts="${RAFTQ_BENCH_RESTARTS:-1}"
start_dev_cluster "$server_bin" "$port"

pids=$(pgrep -P "$dev" | tr '\n' ',' | sed 's/,$//')
dirs=$(for pid in ${pids//,/ }; do
    tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^--data-dir$/{n;p}'
done | tr '\n' ',' | sed 's/,$//')
echo "nodes: pids $pids, data dirs $dirs"
# Nodes the restarts start again are not the dev cluster's children: the
# pid file follows them, and they are stopped on exit too.
export BENCH_PIDFILE="$data/pids" BENCH_LOGDIR="$data" RAFTQ_SERVER_BIN="$server_bin" RAFTQ_SERVERS="$servers"
echo "${pids//,/ }" | tr ' ' '\n' >"$BENCH_PIDFILE"
stop_all() {
    local pid
    for pid in $(cat "$BENCH_PIDFILE"); do
        kill "$pid" 2>/dev/null || continue
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    done
    stop_dev_cluster
}
trap stop_all EXIT
warmup="${RAFTQ_BENCH_WARMUP:-0}"
if [[ "$warmup" != 0 ]]; then
    echo "warmup: publishing and draining $warmup messages"
    "$server_bin" --servers "$servers" bench --scenario drain --size 1024 --messages "$warmup" --batch 100 \
        --inflight 16 --consumers 1 --receive-batch 500 | tail -n 3
fi
before_drain=()
if [[ "$restarts" != 0 ]]; then
    before_drain=(--before-drain "scripts/bench-restarts.sh")
fi
"$server_bin" --servers "$servers" --json bench --scenario backlog --size 1024 --messages "$messages" \
    --steps "$steps" --batch 100 --inflight 16 --receive-batch 500 --pid-file "$BENCH_PIDFILE" --data-dirs "$dirs" \
    "${before_drain[@]}"
# The drained messages are deleted as they are acked; a node compacts its
# store once it has applied nothing for 60 s (checked every 5 s): wait for
# that, then report what is left on disk.
sleep 75
for dir in ${dirs//,/ }; do
    echo "after drain + 75 s idle: $dir $(du -sm "$dir" | cut -f1) MiB"
    if [[ -n "${RAFTQ_BENCH_KEEP_LOGS:-}" ]]; then
        mkdir -p "$RAFTQ_BENCH_KEEP_LOGS"
        find "$dir" -name LOG -exec cp {} "$RAFTQ_BENCH_KEEP_LOGS/$(basename "$dir").LOG" \;
    fi
done
