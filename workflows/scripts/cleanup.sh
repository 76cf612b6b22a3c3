#!/bin/sh
# cleanup.sh: remove this run's scratch directory.
set -eu
dir="${TMPDIR:-/tmp}/console-demo-${CONSOLE_RUN_ID:-manual}"
rm -rf "$dir"
echo "removed $dir"
