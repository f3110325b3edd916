#!/usr/bin/env bash
# One command: build the release binary and the image `raftq:local`, start
# the three-node cluster (deploy/docker-compose.yml), wait until every node
# is healthy, and say how to reach it.
#
# Usage: deploy/up.sh            (env: CARGO_TARGET_DIR, RAFTQ_IMAGE)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh   # CARGO_TARGET_DIR
source deploy/lib.sh

deploy/build-image.sh
ensure_secrets "$CARGO_TARGET_DIR/release/raftq"
echo "==> compose up (project $COMPOSE_PROJECT_NAME)"
compose up -d
echo "==> waiting for three healthy nodes"
wait_healthy 120

first="${RAFTQ_CONTAINERS[0]}"
cat <<MSG
raftq is up (project $COMPOSE_PROJECT_NAME): three nodes, gRPC on 127.0.0.1:$RAFTQ_PORT_1-$RAFTQ_PORT_3, metrics on 127.0.0.1:$RAFTQ_METRICS_PORT_1-$RAFTQ_METRICS_PORT_3.

From the host (the nodes call each other raftq-1..3, and a follower's leader
hint names one of them, so map those names to loopback once):
  echo '127.0.0.1 raftq-1 raftq-2 raftq-3' | sudo tee -a /etc/hosts
  export RAFTQ_SERVERS=$RAFTQ_COMPOSE_NODES
  source deploy/lib.sh && export_client_secrets   # token and TLS files (auth, mutual TLS)
  raftq cluster status

Without touching /etc/hosts, run the client inside a node:
  docker exec $first raftq cluster status
  docker exec $first raftq queue create demo

Logs: docker logs -f $first.   Stop: deploy/down.sh   (data too: deploy/down.sh --volumes)
MSG
