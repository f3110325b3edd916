#!/usr/bin/env bash
# Runs the Python hello world — producer, then consumer with acks — and then
# the pub/sub scenario — pubsub.py: one publisher, a topic, two consumer
# groups (queues billing and search bound to it) that each get every message
# exactly once — against a raftq cluster, in a virtualenv with the raftq
# Python client installed from clients/python (and its grpcio / protobuf
# dependencies from PyPI).
#
# Usage: examples/python/run.sh [--compose | --dev]
#   --compose  bring up deploy/docker-compose.yml (deploy/up.sh), take it
#              down (with its volumes) afterwards
#   --dev      start `raftq dev` on 127.0.0.1:7101-7103, stop it afterwards
#   neither    use the cluster in $RAFTQ_SERVERS
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
mode="${1:-}"

venv="examples/python/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> python3 -m venv $venv"
    python3 -m venv "$venv" || {
        # Debian splits venv out of python3.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    }
fi
# A regular (not editable) install: the example runs the package as users
# get it (from a clean tree: setuptools reuses clients/python/build/).
rm -rf clients/python/build
"$venv/bin/pip" install -q --upgrade ./clients/python

dev_pid=""
data=""
cleanup() {
    local status=$?
    if [[ -n "$dev_pid" ]]; then
        kill -TERM "$dev_pid" 2>/dev/null || true
        wait "$dev_pid" 2>/dev/null || true
    fi
    [[ -n "$data" ]] && rm -rf "$data"
    if [[ "$mode" == --compose ]]; then
        source deploy/lib.sh
        compose down --volumes --timeout 10 >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT

case "$mode" in
--compose)
    deploy/up.sh >/dev/null
    source deploy/lib.sh
    export RAFTQ_SERVERS="$RAFTQ_COMPOSE_SERVERS"
    export_client_secrets   # auth and mutual TLS are on
    ;;
--dev)
    cargo build --release -p raftq
    raftq="$CARGO_TARGET_DIR/release/raftq"
    if "$raftq" health --service '' --addr 127.0.0.1:7101 >/dev/null 2>&1; then
        echo "something already serves 127.0.0.1:7101 (a compose cluster?): stop it first" >&2
        exit 1
    fi
    data=$(mktemp -d)
    "$raftq" dev --data-dir "$data" >"$data/dev.log" 2>&1 &
    dev_pid=$!
    export RAFTQ_SERVERS=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
    # Bounded wait until node 1 knows a leader (and the dev cluster still runs).
    for _ in $(seq 1 120); do
        kill -0 "$dev_pid" 2>/dev/null || { cat "$data/dev.log" >&2; exit 1; }
        "$raftq" health --addr 127.0.0.1:7101 >/dev/null 2>&1 && break
        sleep 0.5
    done
    ;;
"") ;;
*) echo "usage: $0 [--compose | --dev]" >&2; exit 2 ;;
esac

queue="hello-$(date +%s)-$$"
echo "==> python producer.py / consumer.py on $RAFTQ_SERVERS, queue $queue"
"$venv/bin/python" examples/python/producer.py --queue "$queue" --count 10
"$venv/bin/python" examples/python/consumer.py --queue "$queue" --count 10 --idle-s 5

# Its own names: the topic, and queues <topic>-billing and <topic>-search.
topic="orders-$(date +%s)-$$"
echo "==> python pubsub.py on $RAFTQ_SERVERS, topic $topic, consumer groups billing and search"
"$venv/bin/python" examples/python/pubsub.py --topic "$topic" --groups billing,search --count 20 --idle-s 5
echo "python example: 2 passed, 0 failed"
