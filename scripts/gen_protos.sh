#!/usr/bin/env bash
# Regenerates geri/wire/_pb/ from proto/ with grpcio-tools. The output is committed; a test
# checks it is current, so run this after editing a .proto file. An argument writes elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-geri/wire/_pb}
rm -rf "$out"
mkdir -p "$out"
python -m grpc_tools.protoc -I proto --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" proto/geri/v1/wolf.proto proto/geri/v1/vision.proto \
  proto/geri/v1/stats.proto
# make the generated package importable as geri.wire._pb.geri.v1
find "$out" -type d -exec touch {}/__init__.py \;
# generated imports are absolute ("from geri.v1 import ..."): make them package-relative
find "$out" -name '*.py' -exec sed -i 's/^from geri\.v1 import/from geri.wire._pb.geri.v1 import/' {} +
