#!/usr/bin/env bash
# Runs every safeweights benchmark side by side with its peers in one
# process and prints the results and the ratios (lines starting RATIO).
# Sizes are large by default; override them with the environment:
#
#   SWT_BENCH_TENSORS     tensor counts for the open comparison   10,1000,100000
#   SWT_BENCH_SHAPE       shape of each tensor there (F32)          64,64
#   SWT_BENCH_OPEN_SMALL  data size of the small file to open       4MiB
#   SWT_BENCH_OPEN_BIG    data size of the large file to open       4GiB
#   SWT_BENCH_MODEL       model size to encode and verify           4GiB
#   SWT_BENCH_TENSOR      tensor size in that model                 256MiB
#   SWT_BENCH_TIME        benchtime of the open comparisons         300ms
#   SWT_BENCH_BIGTIME     benchtime of encode and verify            1x
#   SWT_BENCH_ROUNDS      interleaved rounds, best kept (open)      3
#   SWT_BENCH_BIGROUNDS   interleaved rounds (encode, verify)       2
#   SWT_BENCH_ONLY        sections to run                           open,size,encode,verify
#   SWT_BENCH_DIR         where temporary files go                  $TMPDIR or /tmp
#
# Quick check: SWT_BENCH_TENSORS=10,1000 SWT_BENCH_OPEN_BIG=64MiB \
#   SWT_BENCH_MODEL=64MiB SWT_BENCH_TENSOR=16MiB bench/run.sh
#
# Files are written sparse where only the header matters; the encode and
# verify sections need SWT_BENCH_MODEL of free disk (twice, briefly) and
# remove everything they write. The small testing.B benchmarks of the
# packages themselves run with:
#   go test -run '^$' -bench . ./decode ./encode     (from the module root)
set -euo pipefail
cd "$(dirname "$0")"
echo "# $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
go build -o "${TMPDIR:-/tmp}/swtbench.$$" ./cmd/swtbench
trap 'rm -f "${TMPDIR:-/tmp}/swtbench.$$"' EXIT
"${TMPDIR:-/tmp}/swtbench.$$"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
