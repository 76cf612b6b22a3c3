#!/bin/sh
# build.sh VERSION: "compile" and write the artifact for VERSION into the scratch directory.
set -eu
. "$(dirname "$0")/lib.sh"
version=${1:?usage: build.sh VERSION}
say "building payments-api $version"
progress "compiling" 4 0.2
printf 'payments-api %s\nbuilt %s\n' "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$WORKDIR/artifact-$version.txt"
say "artifact: $WORKDIR/artifact-$version.txt ($(wc -c < "$WORKDIR/artifact-$version.txt") bytes)"
