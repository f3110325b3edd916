#!/usr/bin/env bash
# Where one publish in flight goes: starts a fresh `raftq dev` cluster,
# counts the three nodes' CPU time (perf stat) and samples the leader's
# stacks (perf record -g) while `raftq bench --inflight 1` runs for 5 s.
# Needs `perf` (Debian: linux-perf) and a built binary.
#
# Usage: scripts/profile-one-in-flight.sh   (env RAFTQ_BIN, default
#   $CARGO_TARGET_DIR/release/raftq; output in $OUT, default /tmp/raftq-prof)
# then: perf report -i $OUT/leader.data --no-children --sort dso,symbol
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
raftq="${RAFTQ_BIN:-$CARGO_TARGET_DIR/release/raftq}"
out="${OUT:-/tmp/raftq-prof}"
mkdir -p "$out"
start_dev_cluster "$raftq" 7700
"$raftq" --servers "$servers" bench --queue prof --scenario publish --size 1024 --messages 500 --inflight 1 >/dev/null
leader=$("$raftq" --servers "$servers" cluster status 2>&1 | sed -n "s/.*leader node \([0-9]*\).*/\1/p" | head -1)
leader_pid=$(ps -eo pid,args | grep "[r]aftq server --node-id $leader " | awk '{print $1}')
pids=$(ps -eo pid,args | grep '[r]aftq server' | awk '{print $1}' | paste -sd,)
echo "leader $leader pid $leader_pid; pids $pids"
perf stat -e task-clock -p "$pids" -o "$out/stat.txt" -- sleep 6 &
st=$!
perf record -F 1999 -g -p "$leader_pid" -o "$out/leader.data" -- sleep 5 >/dev/null 2>&1 &
pr=$!
sleep 0.2
"$raftq" --servers "$servers" bench --queue prof --scenario publish --size 1024 --duration 5s --inflight 1
wait $pr $st || true
cat "$out/stat.txt"
