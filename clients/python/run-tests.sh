#!/usr/bin/env bash
# Tests the Python client: installs it (editable, with its test extras) in a
# virtualenv, checks the committed stubs against proto/, runs the unit tests
# (no server) and the integration tests against a raftq cluster.
#
# Usage: clients/python/run-tests.sh [--compose | --dev]
#   --compose  bring up deploy/docker-compose.yml (deploy/up.sh; auth and
#              mutual TLS on), take it down (with its volumes) afterwards
#   --dev      start `raftq dev` (3 nodes on loopback), stop it afterwards.
#              The binary is $RAFTQ_BIN, else $CARGO_TARGET_DIR/release/raftq,
#              built with cargo only if it does not exist. Ports:
#              $RAFTQ_DEV_BASE_PORT+1..3 (default 7100) for clients and
#              $RAFTQ_DEV_PEER_BASE_PORT+1..3 (default 7150) for peers.
#              Only here do the failover tests run (RAFTQ_TEST_CAN_KILL=dev):
#              they SIGKILL the leader and restart it; the nodes they
#              restarted are stopped with the cluster.
#   neither    use the cluster in $RAFTQ_SERVERS (with RAFTQ_TOKEN,
#              RAFTQ_TLS_*); without it the integration tests are skipped
#
# The last line is `python client: N passed, M failed` (the stub check
# counts as one test); the exit status is 0 only if nothing failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
mode="${1:-}"
case "$mode" in
--compose | --dev | "") ;;
*) echo "usage: $0 [--compose | --dev]" >&2; exit 2 ;;
esac

venv="clients/python/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> python3 -m venv $venv"
    python3 -m venv "$venv" || {
        # Debian splits venv out of python3.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    }
fi
echo "==> pip install -e clients/python[test]"
"$venv/bin/pip" install -q -e "clients/python[test]"

dev_pid=""
data=""
results="$(mktemp -d)"
cleanup() {
    local status=$?
    # Nodes a failover test restarted (pytest stops them itself, unless it
    # died first): they are not children of `raftq dev`.
    if [[ -n "$data" && -s "$data/restarted.pids" ]]; then
        while read -r pid; do
            kill -TERM "$pid" 2>/dev/null || true
        done <"$data/restarted.pids"
        sleep 1
    fi
    if [[ -n "$dev_pid" ]]; then
        kill -TERM "$dev_pid" 2>/dev/null || true
        wait "$dev_pid" 2>/dev/null || true
    fi
    [[ -n "$data" ]] && rm -rf "$data"
    rm -rf "$results"
    if [[ "$mode" == --compose ]]; then
        source deploy/lib.sh
        compose down --volumes --timeout 10 >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT

passed=0
failed=0

echo "==> clients/python/check-generated.sh"
if clients/python/check-generated.sh "$(pwd)/$venv/bin/python"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

# Runs pytest with the given arguments and adds its counts to the totals.
run_pytest() {
    local xml="$results/$1.xml"
    shift
    (cd clients/python && "../../$venv/bin/python" -m pytest -q -rs --junitxml="$xml" "$@") || true
    if [[ ! -s "$xml" ]]; then
        echo "pytest wrote no report: counted as one failure" >&2
        failed=$((failed + 1))
        return
    fi
    local counts
    counts=$("$venv/bin/python" - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad)
PY
)
    passed=$((passed + ${counts% *}))
    failed=$((failed + ${counts#* }))
}

echo "==> unit tests (no server)"
run_pytest unit -m "not integration"

case "$mode" in
--compose)
    deploy/up.sh >/dev/null
    source deploy/lib.sh
    export RAFTQ_SERVERS="$RAFTQ_COMPOSE_SERVERS"
    export_client_secrets # auth and mutual TLS are on
    unset RAFTQ_TEST_CAN_KILL # the failover tests kill dev nodes only
    ;;
--dev)
    raftq="${RAFTQ_BIN:-$CARGO_TARGET_DIR/release/raftq}"
    if [[ ! -x "$raftq" ]]; then
        echo "==> $raftq is missing: cargo build --release -p raftq"
        cargo build --release -p raftq
    fi
    base="${RAFTQ_DEV_BASE_PORT:-7100}"
    peer_base="${RAFTQ_DEV_PEER_BASE_PORT:-7150}"
    if "$raftq" health --service '' --addr "127.0.0.1:$((base + 1))" >/dev/null 2>&1; then
        echo "something already serves 127.0.0.1:$((base + 1)) (a compose or dev cluster?): stop it first" >&2
        exit 1
    fi
    data=$(mktemp -d)
    "$raftq" dev --data-dir "$data" --base-port "$base" --peer-base-port "$peer_base" >"$data/dev.log" 2>&1 &
    dev_pid=$!
    export RAFTQ_SERVERS="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
    unset RAFTQ_TOKEN RAFTQ_TOKEN_FILE RAFTQ_TLS_CA RAFTQ_TLS_CERT RAFTQ_TLS_KEY
    export RAFTQ_TEST_CAN_KILL=dev RAFTQ_TEST_PIDFILE="$data/restarted.pids"
    # Bounded wait until node 1 knows a leader (and the dev cluster still runs).
    for _ in $(seq 1 120); do
        kill -0 "$dev_pid" 2>/dev/null || { cat "$data/dev.log" >&2; exit 1; }
        "$raftq" health --addr "127.0.0.1:$((base + 1))" >/dev/null 2>&1 && break
        sleep 0.5
    done
    ;;
esac

if [[ -n "${RAFTQ_SERVERS:-}" ]]; then
    echo "==> integration tests against $RAFTQ_SERVERS"
    run_pytest integration -m integration
else
    echo "==> RAFTQ_SERVERS is unset: no integration tests (use --dev or --compose)"
fi

echo "python client: $passed passed, $failed failed"
((failed == 0))
