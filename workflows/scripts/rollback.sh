#!/bin/sh
# rollback.sh: send traffic back to the color that was live before the switch.
set -eu
. "$(dirname "$0")/lib.sh"
previous=$(cat "$WORKDIR/previous.color" 2>/dev/null || echo blue)
say "rolling traffic back to $previous"
progress "restoring $previous" 3 0.15
echo "$previous" > "$WORKDIR/live.color"
say "$previous is live again"
