#!/bin/sh
# climem.sh: peak resident memory of the safeweights command on a valid file
# whose header is large: N (default 1,048,576) empty F32 tensors of shape
# [0] (written by TestClimemFile in cmd/safeweights). Prints the header size
# and the peak RSS of inspect --json, convert to safetensors and
# load --dry-run (when load has it). Memory peaks do not depend on CPU load.
#
#   sh bench/climem.sh [N]
set -eu
cd "$(dirname "$0")/.."
N=${1:-1048576}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CGO_ENABLED=0
go build -o "$tmp/safeweights" ./cmd/safeweights
peak() { # command...: prints the peak RSS in MiB
	/usr/bin/time -v "$@" >/dev/null 2>"$tmp/time" || true
	awk '/Maximum resident set size/ {printf "%.0f MiB\n", $6/1024}' "$tmp/time"
}
f="$tmp/many.swt"
{
	SAFEWEIGHTS_CLIMEM_OUT=$f SAFEWEIGHTS_CLIMEM_N=$N \
		go test -count=1 -run '^TestClimemFile$' ./cmd/safeweights >"$tmp/gen" || { cat "$tmp/gen"; exit 1; }
	size=$(wc -c <"$f")
	echo "tensors $N, file $size bytes"
	echo "  inspect --json:        $(peak "$tmp/safeweights" inspect --json "$f")"
	echo "  convert .safetensors:  $(peak "$tmp/safeweights" convert --force "$f" "$tmp/out.safetensors")"
	rm -f "$tmp/out.safetensors"
	if "$tmp/safeweights" load --help | grep -q -- --dry-run; then
		echo "  load --dry-run:        $(peak "$tmp/safeweights" load --dry-run "$f")"
	fi
	rm -f "$f"
}
