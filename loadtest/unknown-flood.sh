#!/usr/bin/env bash
# loadtest/unknown-flood.sh -- what a flood of unknown session ids costs
# PostgreSQL: a tiered wafer (release build) on its own database and Redis
# prefix, wrk sending auths for random uuids (loadtest/wrk/unknown.lua),
# and PostgreSQL's own counters (pg_stat_database.xact_commit of wafer's
# database: one per statement wafer runs outside a transaction) sampled
# around the flood. Each round floods a wafer with the read-through budget
# off (the reference: what every miss cost before it) and one at the
# default settings, one after the other on the same database. Prints
# requests/s, their statuses, and PostgreSQL statements/s.
#
# Environment: DURATION [10], CONNECTIONS [64], ROUNDS [2], BIN [target/release/wafer]
# (cargo build --release first), REDIS_URL, PG_ADMIN_URL as loadtest/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-2}
BIN=${BIN:-target/release/wafer}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
TAG=$(date +%s)
DB="wafer_flood_$TAG"
DB_URL="${PG_ADMIN_URL%/*}/$DB"
ADDR=127.0.0.1:18090
die() { echo "unknown-flood: $*" >&2; exit 1; }
for t in wrk psql curl; do command -v "$t" >/dev/null || die "$t is missing"; done
[ -x "$BIN" ] || die "no $BIN (cargo build --release --bin wafer)"
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$DB\"" >/dev/null
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "flood:$TAG:*" | xargs -r redis-cli -u "$REDIS_URL" unlink >/dev/null || true
}
trap cleanup EXIT
# start_wafer LIMIT: a wafer with WAFER_READ_THROUGH_LIMIT=LIMIT ("" = the
# default), app 1 created.
start_wafer() {
  if [ -n "${PID:-}" ]; then kill "$PID"; wait "$PID" 2>/dev/null || true; fi
  env ${1:+WAFER_READ_THROUGH_LIMIT=$1} WAFER_LISTEN=$ADDR WAFER_REDIS_URL=$REDIS_URL WAFER_DATABASE_URL=$DB_URL \
    WAFER_REDIS_PREFIX="flood:$TAG:" WAFER_ADMIN_TOKEN=flood WAFER_LOG=warn "$BIN" serve 2>>/tmp/unknown-flood-wafer.log &
  PID=$!
  for _ in $(seq 1 100); do curl -fs "http://$ADDR/healthz" >/dev/null && break; sleep 0.1; done
  curl -fs -H 'Authorization: Bearer flood' -H 'Content-Type: application/json' \
    -d '{"title":"flood","appid":"wxflood","secret":"s"}' "http://$ADDR/admin/apps" >/dev/null || true
}
commits() { psql "$PG_ADMIN_URL" -XAtc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$DB'"; }
# flood NAME: the flood against the running wafer; one line of results.
flood() {
  sleep 1
  local before after started ended out
  before=$(commits)
  started=$(date +%s.%N)
  out=$(WRK_DIR=loadtest/wrk WAFER_APP_ID=1 wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/wrk/unknown.lua "http://$ADDR")
  ended=$(date +%s.%N)
  # pg_stat_database is updated when a backend reports (about every 0.5 s).
  sleep 1.5
  after=$(commits)
  echo "$1 $(grep '^RESULT' <<<"$out" | sed 's/^RESULT //') $(awk -v b="$before" -v a="$after" -v s="$started" -v e="$ended" \
    'BEGIN { printf "postgres_statements_per_s=%.0f", (a - b) / (e - s) }')"
  curl -fs "http://$ADDR/metrics" | grep -E '^wafer_requests_total\{route="/mina/auth"' | grep -v ' 0$' | sed 's/^/  /' || true
}
echo "# unknown-flood $(date -u +%FT%TZ): commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), wrk -t2 -c$CONNECTIONS -d${DURATION}s, rounds interleaved"
for round in $(seq 1 "$ROUNDS"); do
  start_wafer 0
  flood "round $round: no budget (the reference: every miss reads PostgreSQL)"
  start_wafer ""
  flood "round $round: default budget"
done
