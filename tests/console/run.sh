#!/usr/bin/env bash
# The web console's end-to-end test in headless Chromium (Debian's chromium
# and chromium-driver, installed if missing) against a fresh
# `raftq dev --secure` cluster: auth and mutual TLS on, the console on each
# node's HTTP port. Screenshots of every page go to $RAFTQ_ARTIFACTS/console
# (default $CARGO_TARGET_DIR/artifacts/console).
#
# Usage: tests/console/run.sh
#   The binary is $RAFTQ_BIN, else $CARGO_TARGET_DIR/release/raftq, built
#   with cargo only if it does not exist. Ports: clients 7401-7403, peers
#   7451-7453, HTTP (console) 7481-7483.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ensure_browser

bin="${RAFTQ_BIN:-$CARGO_TARGET_DIR/release/raftq}"
if [[ ! -x "$bin" ]]; then
    cargo build --release -p raftq --bin raftq
fi
bin="$(realpath "$bin")"

venv="tests/console/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    }
fi
"$venv/bin/pip" install -q -r tests/console/requirements.txt

RAFTQ_DEV_SECURE=1 RAFTQ_DEV_PEER_BASE_PORT=7450 start_dev_cluster "$bin" 7400
export RAFTQ_SERVERS="$servers"
console="http://127.0.0.1:7481/ui/"
# Waits up to 30 s for URL to answer 2xx, passing the extra curl arguments.
wait_http() {
    local what="$1"
    shift
    for _ in $(seq 1 150); do
        curl -fs -o /dev/null "$@" && return 0
        sleep 0.2
    done
    echo "console test: timed out waiting for $what" >&2
    exit 1
}
wait_http "the console page" "$console"

# A second principal with only `consume`: the console must show it no
# destructive button, and the server must refuse it.
viewer_json="$("$bin" auth token --name viewer --consume '*' --json)"
viewer_token="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <<<"$viewer_json")"
printf '%s' "$viewer_json" >"$data/viewer.json"
python3 - "$data/secure/auth.json" "$data/viewer.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    auth = json.load(f)
with open(sys.argv[2]) as f:
    auth["principals"].append(json.load(f)["principal"])
with open(path + ".new", "w") as f:
    json.dump(auth, f, indent=2)
PY
mv "$data/secure/auth.json.new" "$data/secure/auth.json"
# The nodes reload the auth file on their own; wait until all three know it.
for port in 7481 7482 7483; do
    wait_http "node on $port to know the viewer token" -H "x-raftq-console: 1" \
        -H "authorization: Bearer $viewer_token" "http://127.0.0.1:$port/ui/api/session"
done

artifacts="${RAFTQ_ARTIFACTS:-$CARGO_TARGET_DIR/artifacts}/console"
RAFTQ_BIN="$bin" CONSOLE_URL="$console" ARTIFACTS="$artifacts" \
    ADMIN_TOKEN="$(cat "$data/secure/admin-token")" VIEWER_TOKEN="$viewer_token" \
    "$venv/bin/python" tests/console/console_test.py
