# Shared by deploy/*.sh: the compose command and waiting for health.
# shellcheck shell=bash

# The compose project (volume names are prefixed with it).
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-raftq}"
RAFTQ_CONTAINERS=(raftq-1 raftq-2 raftq-3)

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
