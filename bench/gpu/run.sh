#!/bin/sh
# Runs the GPU loading benchmark on a machine with an NVIDIA GPU, PyTorch and
# safetensors. The safeweights binary is built elsewhere with CGO_ENABLED=0
# (go build -o safeweights ./cmd/safeweights) and carried here.
#
#   bench/gpu/run.sh ./safeweights /path/on/a/real/disk [sizes]
#
# sizes defaults to "4,16" (GiB). Results: $OUT/gpu_bench.{json,txt}.
set -eu
bin=${1:?usage: run.sh SAFEWEIGHTS_BINARY DATA_DIR [SIZES]}
dir=${2:?usage: run.sh SAFEWEIGHTS_BINARY DATA_DIR [SIZES]}
sizes=${3:-4,16}
: "${OUT:=/tmp}"
export OUT
here=$(dirname "$0")
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv || true
"$bin" load --help >/dev/null 2>&1 || { echo "run.sh: $bin does not run" >&2; exit 2; }
python3 -c 'import torch, safetensors, numpy' || { echo "run.sh: needs torch, safetensors, numpy" >&2; exit 2; }
python3 "$here/bench_gpu.py" --bin "$bin" --dir "$dir" --sizes "$sizes" 2>&1 | tee "$OUT/gpu_bench.log"
