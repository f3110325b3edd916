# Shared by deploy/*.sh: the compose command and waiting for health.
# shellcheck shell=bash

# The compose project: containers are <project>-1..3, the network
# <project>-net, volumes <project>_raftq-N. Two projects can run side by
# side with different RAFTQ_PORT_BASE values.
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-raftq}"
RAFTQ_CONTAINERS=("$COMPOSE_PROJECT_NAME-1" "$COMPOSE_PROJECT_NAME-2" "$COMPOSE_PROJECT_NAME-3")
RAFTQ_NETWORK="$COMPOSE_PROJECT_NAME-net"
# Ports (docker-compose.yml reads the RAFTQ_*PORT_N variables): node N
# serves clients on BASE+N inside its container and on the host (published
# on 127.0.0.1 as is), Raft on BASE+50+N (never published), metrics on the
# host at BASE+2000+N. The default, 7300, stays clear of `raftq dev`
# (7101-7103, 7151-7153).
export RAFTQ_PORT_BASE="${RAFTQ_PORT_BASE:-7300}"
for n in 1 2 3; do
    export "RAFTQ_PORT_$n=$((RAFTQ_PORT_BASE + n))"
    export "RAFTQ_PEER_PORT_$n=$((RAFTQ_PORT_BASE + 50 + n))"
    export "RAFTQ_METRICS_PORT_$n=$((RAFTQ_PORT_BASE + 2000 + n))"
done
# The client addresses on the host, and the addresses the nodes advertise.
RAFTQ_COMPOSE_SERVERS="127.0.0.1:$RAFTQ_PORT_1,127.0.0.1:$RAFTQ_PORT_2,127.0.0.1:$RAFTQ_PORT_3"
RAFTQ_COMPOSE_NODES="raftq-1:$RAFTQ_PORT_1,raftq-2:$RAFTQ_PORT_2,raftq-3:$RAFTQ_PORT_3"

# `docker compose` (v2) if present, else `docker-compose` (v1.27+).
compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -f deploy/docker-compose.yml "$@"
    elif command -v docker-compose >/dev/null; then
        docker-compose -f deploy/docker-compose.yml "$@"
    else
        echo "neither 'docker compose' nor 'docker-compose' is installed" >&2
        return 1
    fi
}

# Waits (at most $1 seconds) until every node's health check passes.
wait_healthy() {
    local limit="${1:-120}" start=$SECONDS status
    while :; do
        local healthy=0
        for c in "${RAFTQ_CONTAINERS[@]}"; do
            status=$(docker inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null || echo missing)
            [[ "$status" == healthy ]] && healthy=$((healthy + 1))
        done
        ((healthy == ${#RAFTQ_CONTAINERS[@]})) && return 0
        if ((SECONDS - start >= limit)); then
            echo "not healthy after ${limit}s:" >&2
            for c in "${RAFTQ_CONTAINERS[@]}"; do
                echo "--- $c: $(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$c" 2>&1)" >&2
                docker logs --tail 20 "$c" >&2 2>&1 || true
            done
            return 1
        fi
        sleep 1
    done
}

# The compose cluster runs with auth on. Its secrets live in deploy/secrets/
# (not in git), made once by `ensure_secrets` with the built binary:
#   auth.json    the auth file: principals `raftq-nodes` (peer) and `admin`
#                (admin, every permission on every queue), token hashes only
#   peer-token   the nodes' token (mounted into the containers)
#   admin-token  the admin token, for clients on the host: RAFTQ_TOKEN
RAFTQ_SECRETS_DIR="deploy/secrets"

#   tls/         a private CA (ca.pem), each node's certificate and key
#                (raftq-N.pem, raftq-N-key.pem) and the admin client's
#                (client-admin.pem, client-admin-key.pem): TLS on both
#                ports, mutual (every client presents a certificate; on the
#                peer port it must name a member, node-N.peer.raftq)

# Makes the secrets if missing. $1: the raftq binary.
ensure_secrets() {
    local raftq="$1" dir="$RAFTQ_SECRETS_DIR"
    # `peer-identity`: the certificates name node-N.peer.raftq, which the
    # peer port requires; older ones (without the marker) are made again.
    if [[ ! -s "$dir/tls/ca.pem" || ! -e "$dir/tls/peer-identity" ]]; then
        echo "==> making a private CA and certificates in $dir/tls"
        rm -rf "$dir/tls"
        "$raftq" tls gen --dir "$dir/tls" --node raftq-1 --node raftq-2 --node raftq-3 --client admin >/dev/null
        touch "$dir/tls/peer-identity"
    fi
    # An auth file from before topics existed grants none: make it again.
    [[ -s "$dir/auth.json" && -s "$dir/peer-token" && -s "$dir/admin-token" ]] &&
        grep -q '"topics"' "$dir/auth.json" && return 0
    echo "==> making tokens and the auth file in $dir"
    mkdir -p "$dir"
    local peer admin
    peer=$("$raftq" --json auth token --name raftq-nodes --peer)
    admin=$("$raftq" --json auth token --name admin --admin --publish '*' --consume '*' --manage '*' \
        --topic-publish '*' --topic-manage '*')
    python3 - "$dir" "$peer" "$admin" <<'PY'
import json, os, sys
d, peer, admin = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
def write(name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    # The containers run as uid 10001 and read these through a bind mount.
    os.chmod(path, 0o644)
write("auth.json", json.dumps({"principals": [peer["principal"], admin["principal"]]}, indent=2) + "\n")
write("peer-token", peer["token"] + "\n")
write("admin-token", admin["token"] + "\n")
PY
}

# The admin token, for clients on the host.
admin_token() {
    cat "$RAFTQ_SECRETS_DIR/admin-token"
}

# Exports what a client on the host needs for the compose cluster: the
# admin token and the admin client's TLS files.
export_client_secrets() {
    RAFTQ_TOKEN="$(admin_token)"
    RAFTQ_TLS_CA="$PWD/$RAFTQ_SECRETS_DIR/tls/ca.pem"
    RAFTQ_TLS_CERT="$PWD/$RAFTQ_SECRETS_DIR/tls/client-admin.pem"
    RAFTQ_TLS_KEY="$PWD/$RAFTQ_SECRETS_DIR/tls/client-admin-key.pem"
    export RAFTQ_TOKEN RAFTQ_TLS_CA RAFTQ_TLS_CERT RAFTQ_TLS_KEY
}
