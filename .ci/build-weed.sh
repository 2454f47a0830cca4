#!/usr/bin/env bash
# Builds SeaweedFS's `weed` from its Go module once and caches the binary
# outside the clone; the S3 tests (source/s3src) run against it. Prints the
# binary's path on stdout; all else goes to stderr.
#
# The module has replace directives, so `go install module@version` refuses
# it: download it, copy it somewhere writable and build there. The build takes
# about 5 minutes on 2 cores the first time; afterwards the cached binary is
# reused and this script returns at once. The binary is cached at
# ${XDG_CACHE_HOME:-$HOME/.cache}/safeweights/weed-<version>/weed.
#
#   SAFEWEIGHTS_WEED=$(.ci/build-weed.sh)
set -euo pipefail

version=v0.0.0-20261109003541-7506e5f91cd6
module=github.com/seaweedfs/seaweedfs
cache=${XDG_CACHE_HOME:-$HOME/.cache}/safeweights
dir_out=$cache/weed-$version
bin=$dir_out/weed

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

# Outside any module, so neither this repository's go.mod nor -mod flags
# from the caller apply to the download or the build.
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS= GOWORK=off CGO_ENABLED=0

dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
  echo "build-weed: go mod download did not give $module@$version" >&2
  exit 1
fi
echo "build-weed: building weed $version from $dir (a few minutes)" >&2
cp -R "$dir" src
chmod -R u+w src
(cd src && go build -trimpath -o "$work/weed" ./weed) >&2

mkdir -p "$dir_out"
# Rename into place, so a concurrent or interrupted build never leaves a
# half-written binary at the cached path.
mv "$work/weed" "$bin.tmp.$$"
mv "$bin.tmp.$$" "$bin"
echo "$bin"
