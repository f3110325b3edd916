#!/usr/bin/env bash
# The chaos suite: a fresh three-node compose cluster, faults injected while
# a workload publishes and consumes, a total-queue check after each fault
# class. Exits non-zero if anything confirmed was lost, anything unexpected
# was delivered, or a scenario could not run.
#
# Usage: deploy/chaos/run.sh [short|long] [raftq-chaos flags...]
#   short  ~8 s of faults per class, about 2 min in all (CI runs it)
#   long   300 s of fault cycles per class, about 45 min in all
# e.g.   deploy/chaos/run.sh long --scenarios kill-leader,pause-leader
#
# The JSON report goes to $RAFTQ_CHAOS_REPORT (default
# $CARGO_TARGET_DIR/chaos-<profile>.json); the summary table to stdout.
# The cluster (and its volumes) is removed afterwards unless
# RAFTQ_CHAOS_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
source deploy/lib.sh

profile="${1:-short}"
[[ $# -gt 0 ]] && shift
case "$profile" in short | long) ;; *) echo "usage: $0 [short|long] [flags...]" >&2; exit 2 ;; esac
report="${RAFTQ_CHAOS_REPORT:-$CARGO_TARGET_DIR/chaos-$profile.json}"

echo "==> cargo build --release -p raftq-chaos"
cargo build --release -p raftq-chaos

cleanup() {
    local status=$?
    if ((status != 0)); then
        for c in "${RAFTQ_CONTAINERS[@]}"; do
            echo "--- last log lines of $c" >&2
            docker logs --tail 30 "$c" >&2 2>&1 || true
        done
    fi
    if [[ "${RAFTQ_CHAOS_KEEP:-0}" != 1 ]]; then
        compose down --volumes --timeout 10 >/dev/null 2>&1 || true
    fi
    exit "$status"
}
# Start from empty volumes so every run sees a fresh cluster.
compose down --volumes --timeout 10 >/dev/null 2>&1 || true
trap cleanup EXIT
deploy/up.sh >/dev/null
export_client_secrets   # the cluster runs with auth and mutual TLS on

echo "==> raftq-chaos --profile $profile $*"
containers=$(IFS=,; echo "${RAFTQ_CONTAINERS[*]}")
"$CARGO_TARGET_DIR/release/raftq-chaos" --profile "$profile" --report "$report" \
    --nodes "$RAFTQ_COMPOSE_NODES" --containers "$containers" --network "$RAFTQ_NETWORK" "$@"
