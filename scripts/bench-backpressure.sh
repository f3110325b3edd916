#!/usr/bin/env bash
# Backpressure benchmark (README "Performance"): a fresh three-node
# `raftq dev` cluster on loopback, then 50 producers, each on its own
# connection with 1,000 publishes in flight (50,000 at once, no client-side
# limit), and consumers acking, until every confirmed message is consumed
# (the bench fails on any lost or unexpected one). Prints the bench's JSON
# line and every node's peak RSS (VmHWM from /proc/<pid>/status).
#
# Usage: scripts/bench-backpressure.sh
#   RAFTQ_SERVER_BIN  binary running the nodes (default $CARGO_TARGET_DIR/release/raftq)
#   RAFTQ_BENCH_BIN   binary running the bench client (default: the same)
#   RAFTQ_BENCH_MESSAGES (default 300000), RAFTQ_BENCH_PORT (default 7500)
#   RAFTQ_BENCH_CONNECTIONS (default 50; 1 = every producer on one
#   connection, for a client binary without `--connections`)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
server_bin="${RAFTQ_SERVER_BIN:-$CARGO_TARGET_DIR/release/raftq}"
bench_bin="${RAFTQ_BENCH_BIN:-$server_bin}"
messages="${RAFTQ_BENCH_MESSAGES:-300000}"
port="${RAFTQ_BENCH_PORT:-7500}"
connections="${RAFTQ_BENCH_CONNECTIONS:-50}"
start_dev_cluster "$server_bin" "$port" "$bench_bin"

set +e
"$bench_bin" --servers "$servers" --json bench --scenario end-to-end --size 1024 --messages "$messages" \
    --producers 50 $([ "$connections" = 1 ] || echo "--connections $connections") --inflight 1000 \
    --consumers 2 --receive-batch 500
status=$?
set -e
for pid in $(pgrep -P "$dev"); do
    node=$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.*--node-id \([0-9]*\).*/\1/p')
    echo "node $node (pid $pid): $(grep -E 'VmHWM|VmRSS' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
done
exit "$status"
