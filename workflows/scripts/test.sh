#!/bin/sh
# test.sh SUITE: run a test suite (unit or integration) against the built artifact.
set -eu
. "$(dirname "$0")/lib.sh"
suite=${1:?usage: test.sh SUITE}
case $suite in
  unit) count=6 ;;
  integration) count=4 ;;
  *) fail "unknown suite $suite (unit or integration)" ;;
esac
say "running the $suite suite ($count cases)"
i=1
while [ "$i" -le "$count" ]; do
  say "$suite case $i/$count passed"
  sleep 0.15
  i=$((i + 1))
done
say "$suite: $count passed, 0 failed"
