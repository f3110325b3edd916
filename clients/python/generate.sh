#!/usr/bin/env bash
# Regenerates the protobuf and gRPC stubs of proto/raftq/v1/*.proto (all but
# raft.proto, the nodes' internal transport, which is no client API) into
# src/raftq/v1/ (the Python package `raftq.v1`, committed to git) with
# grpcio-tools. Run it after changing a .proto, then commit the result;
# check-generated.sh (run by CI) fails while the committed stubs are stale.
#
# Usage: clients/python/generate.sh [PYTHON] [OUT_DIR]
#   PYTHON   an interpreter with grpcio-tools $GRPCIO_TOOLS_VERSION installed
#            (default: clients/python/.venv/bin/python if present, else python3)
#   OUT_DIR  where to write the `v1` package (default: src/raftq/v1)
#
# The protobuf package `raftq.v1` maps onto the Python package `raftq.v1`
# inside this distribution, so the imports protoc writes
# (`from raftq.v1 import queue_pb2`) work as they are; the script rewrites
# them to relative imports anyway, so that the stubs keep working if the
# directory is ever moved.
#
# The generator is pinned: stubs from a newer grpcio-tools demand a newer
# grpcio and protobuf at run time (they check), which would raise the floor
# in pyproject.toml's dependencies. Change the pin and those floors together.
set -euo pipefail
GRPCIO_TOOLS_VERSION=1.72.2
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${1:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; else python=python3; fi
fi
out="${2:-$here/src/raftq/v1}"

have=$("$python" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))' 2>/dev/null || echo none)
if [[ "$have" != "$GRPCIO_TOOLS_VERSION" ]]; then
    echo "generate.sh: needs grpcio-tools==$GRPCIO_TOOLS_VERSION in $python (found: $have)." >&2
    echo "  pip install 'grpcio-tools==$GRPCIO_TOOLS_VERSION'   (or: pip install -e 'clients/python[test]')" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Relative paths to protoc: the generated files record the .proto names
# (`raftq/v1/queue.proto`), never a path on this machine.
(cd "$repo/proto" && "$python" -m grpc_tools.protoc -I . \
    --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" $(ls raftq/v1/*.proto | grep -v '^raftq/v1/raft\.proto$'))

gen="$tmp/raftq/v1"
for f in "$gen"/*.py "$gen"/*.pyi; do
    # `from raftq.v1 import x_pb2 as ...` -> `from . import x_pb2 as ...`
    sed -i -E 's/^from raftq\.v1 import /from . import /; s/^import raftq\.v1\.([a-z_0-9]+) as /from . import \1 as /' "$f"
done
if grep -n -E '^(from|import) raftq\.v1' "$gen"/*.py "$gen"/*.pyi; then
    echo "generate.sh: an absolute import of raftq.v1 is left in the stubs (above)" >&2
    exit 1
fi
cat >"$gen/__init__.py" <<'PY'
"""Generated protobuf and gRPC stubs of proto/raftq/v1/*.proto (all but the
nodes' internal raft.proto).

Do not edit: clients/python/generate.sh writes this package.
The messages here are what `raftq.Client` returns for queue and cluster
information (`queue_pb2.QueueInfo`, `queue_pb2.MessageView`,
`cluster_pb2.StatusResponse`).
"""
PY

rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$gen" "$out"
echo "stubs in $out"
