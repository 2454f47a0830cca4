#!/bin/bash
# Runs the GPU loading benchmark on a machine with an NVIDIA GPU, PyTorch and
# safetensors. The safeweights binary is built elsewhere with CGO_ENABLED=0
# (go build -o safeweights ./cmd/safeweights) and carried here.
#
#   bench/gpu/run.sh ./safeweights /path/on/a/real/disk [sizes]
#
# sizes defaults to "1,4,16" (GiB; the first is the smoke stage). DATA_DIR
# must be on a real disk, outside $OUT; each stage's files are deleted once
# measured. Results: $OUT/gpu_bench.{json,txt,log}. The whole run is meant
# to finish within BUDGET seconds (default 540); stages that would not fit
# are skipped and listed. Exits non-zero on any failure.
# DRYRUN=1 runs it at tiny sizes (bench/gpu/dryrun.sh does, on a CPU).
set -euo pipefail
bin=${1:?usage: run.sh SAFEWEIGHTS_BINARY DATA_DIR [SIZES]}
dir=${2:?usage: run.sh SAFEWEIGHTS_BINARY DATA_DIR [SIZES]}
sizes=${3:-1,4,16}
: "${OUT:=/tmp}" "${BUDGET:=540}"
export OUT
here=$(dirname "$0")
mkdir -p "$OUT" "$dir"
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv || echo "run.sh: no nvidia-smi" >&2
"$bin" load --help >/dev/null 2>&1 || { echo "run.sh: $bin does not run" >&2; exit 2; }
df -h "$dir" >&2
rc=0
python3 "$here/bench_gpu.py" --bin "$bin" --dir "$dir" --sizes "$sizes" --budget "$BUDGET" 2>&1 | tee "$OUT/gpu_bench.log" || rc=$?
[ -s "$OUT/gpu_bench.txt" ] || { echo "run.sh: no result table written" >&2; exit 1; }
exit $rc
