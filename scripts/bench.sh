#!/usr/bin/env bash
# The Performance table in README.md, reproduced: builds raftq, starts a
# fresh three-node `raftq dev` cluster on loopback (fsync on every commit,
# as always), runs each `raftq bench` scenario against it, measures the
# disk's fsync latency, and prints a Markdown table (raw JSON lines go to
# $RAFTQ_BENCH_JSON, default $CARGO_TARGET_DIR/bench.jsonl); then the
# throughput-latency curve (`raftq bench --sweep`) into docs/perf.
#
# Usage: scripts/bench.sh            (env: RAFTQ_BENCH_MESSAGES, default 100000;
#                                    RAFTQ_DEV_SECURE=1: auth and mutual TLS on)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_system_packages
cargo build --release -p raftq
raftq="$CARGO_TARGET_DIR/release/raftq"
messages="${RAFTQ_BENCH_MESSAGES:-100000}"
json="${RAFTQ_BENCH_JSON:-$CARGO_TARGET_DIR/bench.jsonl}"
start_dev_cluster "$raftq" 7400

: >"$json"
bench() { # name, flags...
    local name="$1"
    shift
    echo "==> $name: raftq bench $*" >&2
    # Each scenario has its queue: reusing one would purge the previous
    # scenario's backlog (600,000 messages) first, and its cleanup would run
    # during the next measurement.
    "$raftq" --servers "$servers" --json bench --queue "bench-$name" "$@" | tee -a "$json" | sed "s/^/$name\t/"
}
{
    bench publish-256 --scenario publish --size 1024 --messages "$messages" --inflight 256
    bench publish-batch100 --scenario publish --size 1024 --messages $((messages * 5)) --inflight 16 --batch 100
    bench end-to-end-64 --scenario end-to-end --size 1024 --messages "$messages" --inflight 64 --consumers 1
    bench drain-50k --scenario drain --size 1024 --messages 50000 --inflight 64 --batch 100 --consumers 1 --receive-batch 500
    bench publish-1 --scenario publish --size 1024 --messages 2000 --inflight 1
    bench fsync --scenario fsync --size 1024 --messages 2000 --dir "$data"
} >"$data/results.tsv"

python3 - "$data/results.tsv" <<'PY'
import json, sys
rows = [line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1]) if "\t" in line]
print("| scenario | msgs/s | MB/s | confirm p50 / p99 / p999 ms | end-to-end p50 / p99 / p999 ms | lost / dup |")
print("|---|---:|---:|---|---|---|")
lat = lambda l: f"{l['p50_ms']:.2f} / {l['p99_ms']:.2f} / {l['p999_ms']:.2f}" if l and l["count"] else "–"
for name, raw in rows:
    r = json.loads(raw)
    if r["scenario"] == "Fsync":
        print(f"| fsync ({r['size']} B + fdatasync) | {r['syncs_per_sec']:.0f} syncs/s | | {lat(r['fsync_latency'])} | | |")
        continue
    rate = r["drain_msgs_per_sec"] if r["scenario"] == "Drain" else r["publish_msgs_per_sec"]
    mb = rate * r["size"] / 1e6
    print(f"| {name} | {rate:.0f} | {mb:.1f} | {lat(r['confirm_latency'])} | {lat(r['end_to_end_latency'])} | {r['lost']} / {r['duplicated']} |")
PY
echo "raw results: $json" >&2

# The throughput-latency curve (open loop, end-to-end, 1 KiB, one message
# per request): CSV and SVG into docs/perf, which README.md shows.
echo "==> sweep: raftq bench --scenario end-to-end --sweep --inflight 1000 --out docs/perf" >&2
"$raftq" --servers "$servers" bench --queue bench-sweep --scenario end-to-end --size 1024 --sweep --inflight 1000 \
    --out docs/perf >&2
