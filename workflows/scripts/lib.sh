# Shared by the example scripts (sourced, not run). POSIX sh only.
# Every script works in a scratch directory for this run and prints its progress.

WORKDIR="${TMPDIR:-/tmp}/console-demo-${CONSOLE_RUN_ID:-manual}"
mkdir -p "$WORKDIR"

say() {
  printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "${CONSOLE_STEP:-$(basename "$0" .sh)}" "$*"
}

# progress LABEL STEPS DELAY: a counted progress line per step, DELAY seconds apart.
progress() {
  label=$1 steps=$2 delay=$3 i=1
  while [ "$i" -le "$steps" ]; do
    say "$label $((i * 100 / steps))% ($i/$steps)"
    sleep "$delay"
    i=$((i + 1))
  done
}

fail() {
  say "error: $*" >&2
  exit 1
}
