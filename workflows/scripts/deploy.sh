#!/bin/sh
# deploy.sh COLOR VERSION ENV: start VERSION on the idle COLOR of ENV.
set -eu
. "$(dirname "$0")/lib.sh"
color=${1:?usage: deploy.sh COLOR VERSION ENV} version=${2:?} env=${3:?}
[ -f "$WORKDIR/artifact-$version.txt" ] || fail "no artifact for $version — run the build step first"
say "deploying $version to $color in $env"
progress "rolling out $color" 5 0.2
echo "$version" > "$WORKDIR/$color.version"
say "$color is running $version (health: ok)"
