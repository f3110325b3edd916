#!/usr/bin/env bash
# Generates the Python stubs of proto/raftq/v1/*.proto into gen/ with
# grpcio-tools. Usage: examples/python/generate.sh [python]
set -euo pipefail
cd "$(dirname "$0")"
python="${1:-python3}"
rm -rf gen && mkdir -p gen
"$python" -m grpc_tools.protoc -I ../../proto --python_out=gen --grpc_python_out=gen ../../proto/raftq/v1/*.proto
echo "stubs in $(pwd)/gen"
