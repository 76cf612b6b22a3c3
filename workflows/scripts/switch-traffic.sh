#!/bin/sh
# switch-traffic.sh COLOR: move the load balancer to COLOR in steps, remembering the old one.
set -eu
. "$(dirname "$0")/lib.sh"
color=${1:?usage: switch-traffic.sh COLOR}
previous=$(cat "$WORKDIR/live.color" 2>/dev/null || echo blue)
echo "$previous" > "$WORKDIR/previous.color"
for share in 10 25 50 100; do
  say "traffic to $color: $share%"
  sleep 0.2
done
echo "$color" > "$WORKDIR/live.color"
say "$color is live (was $previous)"
