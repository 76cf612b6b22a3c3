#!/bin/sh
# db.sh ACTION [ARGS]: a pretend database for the migration example.
#   preflight ENV | backup | migrate VERSION | verify VERSION | backfill BATCH DRY_RUN | restore
# State lives in the run's scratch directory: schema.version, backup.sql, rows.
set -eu
. "$(dirname "$0")/lib.sh"
action=${1:?usage: db.sh ACTION [ARGS]}
shift
db="$WORKDIR/db"
mkdir -p "$db"
[ -f "$db/schema.version" ] || echo "0.9.0" > "$db/schema.version"
case $action in
  preflight)
    say "connecting to the ${1:-staging} database"
    sleep 0.2
    say "connected; schema at $(cat "$db/schema.version"); 0 blocking locks"
    ;;
  backup)
    progress "snapshot" 4 0.15
    cp "$db/schema.version" "$db/backup.version"
    say "backup written to $db/backup.version"
    ;;
  migrate)
    version=${1:?migrate needs VERSION}
    for migration in 0001_add_currency 0002_index_created_at 0003_drop_legacy_flag; do
      say "applying $migration"
      sleep 0.2
    done
    echo "$version" > "$db/schema.version"
    say "schema now at $version"
    ;;
  verify)
    version=${1:?verify needs VERSION}
    current=$(cat "$db/schema.version")
    [ "$current" = "$version" ] || fail "schema is at $current, expected $version"
    say "schema $current verified: 3 tables, 7 indexes, constraints valid"
    ;;
  backfill)
    batch=${1:-500} dry_run=${2:-false}
    [ "$dry_run" = "true" ] && say "dry run: counting rows only"
    total=2000 done_rows=0
    while [ "$done_rows" -lt "$total" ]; do
      done_rows=$((done_rows + batch))
      [ "$done_rows" -gt "$total" ] && done_rows=$total
      say "backfilled $done_rows/$total rows (batch $batch)"
      sleep 0.1
    done
    ;;
  restore)
    [ -f "$db/backup.version" ] || fail "no backup to restore"
    cp "$db/backup.version" "$db/schema.version"
    say "restored schema $(cat "$db/schema.version") from the backup"
    ;;
  *) fail "unknown action $action" ;;
esac
