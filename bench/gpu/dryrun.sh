#!/bin/bash
# dryrun.sh: runs bench/gpu/run.sh end to end on a machine without a GPU, so
# that a script error cannot waste time on a GPU machine: the safeweights
# binary built here, the strict fake CUDA driver (gpu/internal/fakecuda)
# built with cc, the stand-in torch and safetensors of bench/gpu/dryrun on
# PYTHONPATH, and DRYRUN=1 (64 x 64 tensors, the same counts). Needs go, cc
# and python3; exits 0 only if the dry run completed without a failure and
# the fake driver saw no violation.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gpubench-dry.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fake" "$work/out" "$work/data"
(cd "$root" && CGO_ENABLED=0 go build -o "$work/safeweights" ./cmd/safeweights)
"${CC:-cc}" -O1 -shared -fPIC -o "$work/fake/libcuda.so.1" "$root/gpu/internal/fakecuda/fake.c" -lpthread
export LD_LIBRARY_PATH="$work/fake" FAKECUDA_LOG="$work/fake.log" FAKECUDA_STRICT_ALIGN=1
export PYTHONPATH="$root/bench/gpu/dryrun" DRYRUN=1 OUT="${DRYRUN_OUT:-$work/out}"
rc=0
"$root/bench/gpu/run.sh" "$work/safeweights" "$work/data" 1,4,16 || rc=$?
viol=$(grep -c VIOLATION "$work/fake.log" || true)
echo "dryrun: run.sh exit $rc, fake driver violations $viol, $(grep -c 'fakecuda: summary' "$work/fake.log") loader processes"
[ "$viol" = 0 ] || { grep VIOLATION "$work/fake.log" | head -5; exit 1; }
exit $rc
