#!/bin/sh
# retire.sh COLOR: scale COLOR down once the other color has proven itself.
set -eu
. "$(dirname "$0")/lib.sh"
color=${1:?usage: retire.sh COLOR}
progress "draining $color" 3 0.15
rm -f "$WORKDIR/$color.version"
say "$color scaled to zero"
