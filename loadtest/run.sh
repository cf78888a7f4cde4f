#!/usr/bin/env bash
# loadtest/run.sh -- wafer's load test on this machine, in one command.
#
# Builds release binaries, provisions its own Redis key prefix and PostgreSQL
# database, starts the WeChat mock and wafer (tiered), seeds sessions through
# real logins, runs the auth load against wafer and the ceiling server (hyper
# + the same Redis script, nothing else) in interleaved rounds, then login and
# mixed loads; then the embedded store against a fixed-reply hyper server,
# the same way. Prints rps, p50/p90/p99, errors, CPU of each process, Redis
# memory per session, and wafer's median ratio to each ceiling. Cleans up
# after itself.
#
# Environment (defaults in brackets):
#   SESSIONS [100000]   sessions seeded    DURATION [15]   seconds per load
#   THREADS [2] CONNECTIONS [64]           wrk shape
#   ROUNDS [3]          rounds of each wafer-vs-reference comparison, interleaved
#                       (wafer, reference, wafer, ...); the median ratio is the result
#   SOAK [0]            seconds of mixed load sampling wafer's RSS (300 = 5 min)
#   VISIT_GRANULARITY [1s]  wafer's WAFER_VISIT_GRANULARITY (tiered runs)
#   REDIS_URL [redis://127.0.0.1:6379]
#   PG_ADMIN_URL [postgres://postgres@127.0.0.1:5432/postgres]
#   RESULTS [target/loadtest/results.txt]  where the summary is also written
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SESSIONS=${SESSIONS:-100000}
DURATION=${DURATION:-15}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}
SOAK=${SOAK:-0}
VISIT_GRANULARITY=${VISIT_GRANULARITY:-1s}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=$ROOT/target/loadtest
RESULTS=${RESULTS:-$WORK/results.txt}
TAG=$(date +%s)
PREFIX="loadtest:$TAG:"
DB="wafer_load_$TAG"
DB_URL="${PG_ADMIN_URL%/*}/$DB"
TOKEN="load-$TAG"
MOCK=127.0.0.1:19100
TIERED=127.0.0.1:18080
EMBEDDED=127.0.0.1:18081
CEILING=127.0.0.1:19300
FIXED=127.0.0.1:19301
export WRK_DIR=$ROOT/loadtest/wrk WAFER_APP_ID=1 WAFER_RUN_TAG=$TAG

die() { echo "loadtest: $*" >&2; exit 1; }
for tool in wrk redis-cli psql curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install wrk redis-tools postgresql-client curl)"
done
redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 || die "Redis does not answer at $REDIS_URL (scripts/test starts it)"
psql "$PG_ADMIN_URL" -qAtc 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL does not answer at $PG_ADMIN_URL"

mkdir -p "$WORK"
: >"$RESULTS"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null || true
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say() { echo "$*" | tee -a "$RESULTS"; }

wait_http() { # url
  for _ in $(seq 1 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "nothing answers at $1"
}

ticks() { # pids... -> summed utime+stime clock ticks
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

REDIS_PID=$(pgrep -f "redis-server.*:${REDIS_URL##*:}" | head -1 || true)
pg_pids() { pgrep -x postgres | paste -sd, -; }
HZ=$(getconf CLK_TCK)

# load NAME SCRIPT TARGET PIDS... : runs wrk, prints one result line.
load() {
  local name=$1 script=$2 target=$3; shift 3
  local named=("$@") before=() after=() i out line
  # name=pid or name=pid,pid,... (PostgreSQL is several processes)
  for p in "${named[@]}"; do p=${p#*=}; before+=("$(ticks ${p//,/ })"); done
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "http://$target" 2>&1) \
    || die "wrk failed: $out"
  for p in "${named[@]}"; do p=${p#*=}; after+=("$(ticks ${p//,/ })"); done
  line=$(grep '^RESULT' <<<"$out") || die "no RESULT from wrk: $out"
  local cpu=""
  for i in "${!named[@]}"; do
    cpu+=" cpu_${named[$i]%%=*}=$(( (after[i] - before[i]) * 100 / HZ / DURATION ))%"
  done
  say "$name ${line#RESULT }$cpu"
  LAST_RPS=$(sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$line")
  # Failed requests are cheap, so a run with errors measures nothing: the
  # references (ceiling, fixed reply) must answer every request with 200.
  local failed
  failed=$(sed -E 's/.* non2xx=([0-9]+) socket_errors=([0-9]+).*/\1 \2/' <<<"$line")
  if [ "$failed" != "0 0" ]; then
    say "ERROR: $name had failed requests (non2xx, socket errors: $failed); its numbers are not valid"
    FAILED_LOADS+=("$name")
  fi
}
FAILED_LOADS=()

# compare NAME WAFER_TARGET WAFER_PROCS REF_NAME REF_TARGET REF_PROCS: ROUNDS
# interleaved rounds of the auth load against wafer and a reference server.
# Two servers sharing two cores with wrk swing by up to 25% from one 15 s
# load to the next; alternating them and taking the median ratio keeps a slow
# moment of the machine from being read as a difference between them.
# (PROCS are space-separated name=pid lists.) Sets MEDIAN_RATIO, ROUND_RATIOS.
compare() {
  local name=$1 target=$2 procs=$3 ref=$4 ref_target=$5 ref_procs=$6 r a ratios=()
  for r in $(seq 1 "$ROUNDS"); do
    # shellcheck disable=SC2086 # word splitting of the pid lists is intended
    load "$name" loadtest/wrk/auth.lua "$target" $procs
    a=$LAST_RPS
    # shellcheck disable=SC2086
    load "$ref" loadtest/wrk/auth.lua "$ref_target" $ref_procs
    ratios+=("$(awk -v a="$a" -v b="$LAST_RPS" 'BEGIN {printf "%.2f", a / b}')")
  done
  MEDIAN_RATIO=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  ROUND_RATIOS="${ratios[*]}"
}

echo "building release binaries..."
cargo build --release --bins --example ceiling --example seed >/dev/null 2>&1 \
  || cargo build --release --bins --example ceiling --example seed
BIN=$ROOT/target/release
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$DB\"" >/dev/null

"$BIN/wechat-mock" --listen "$MOCK" 2>"$WORK/mock.log" & MOCK_PID=$!; PIDS+=("$MOCK_PID")
wait_http "http://$MOCK/healthz"

start_wafer() { # listen extra-env...
  local listen=$1; shift
  env WAFER_LISTEN="$listen" WAFER_WECHAT_API_BASE="http://$MOCK" WAFER_ADMIN_TOKEN="$TOKEN" \
    WAFER_LOG=warn "$@" "$BIN/wafer" serve 2>>"$WORK/wafer.log" &
  WAFER_PID=$!; PIDS+=("$WAFER_PID")
  wait_http "http://$listen/healthz"
  curl -fs -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"title":"load","appid":"wxload","secret":"load-secret"}' "http://$listen/admin/apps" >/dev/null
}

say "# wafer load test $(date -u +%FT%TZ): $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $SESSIONS sessions, $ROUNDS rounds per comparison"
say "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), WAFER_VISIT_GRANULARITY=$VISIT_GRANULARITY"

# --- tiered -----------------------------------------------------------------
start_wafer "$TIERED" WAFER_REDIS_URL="$REDIS_URL" WAFER_DATABASE_URL="$DB_URL" WAFER_REDIS_PREFIX="$PREFIX" \
  WAFER_VISIT_GRANULARITY="$VISIT_GRANULARITY"
TIERED_PID=$WAFER_PID
mem_before=$(redis-cli -u "$REDIS_URL" info memory | awk -F: '/^used_memory:/ {print $2+0}')
"$BIN/examples/seed" --url "http://$TIERED" --appid wxload --n "$SESSIONS" --tag "seed-$TAG" \
  --out "$WORK/sessions.csv" | tee -a "$RESULTS"
mem_after=$(redis-cli -u "$REDIS_URL" info memory | awk -F: '/^used_memory:/ {print $2+0}')
say "redis_bytes_per_session=$(( (mem_after - mem_before) / SESSIONS )) (user_info ~300 bytes)"
export WAFER_SESSIONS=$WORK/sessions.csv

PROCS=("wafer=$TIERED_PID" "redis=${REDIS_PID:-0}" "mock=$MOCK_PID")
"$ROOT/target/release/examples/ceiling" --listen "$CEILING" --redis "$REDIS_URL" --prefix "$PREFIX" 2>>"$WORK/ceiling.log" &
CEIL_PID=$!; PIDS+=("$CEIL_PID")
sleep 0.5
compare tiered_auth "$TIERED" "${PROCS[*]} postgres=$(pg_pids)" \
  ceiling_auth "$CEILING" "ceiling=$CEIL_PID redis=${REDIS_PID:-0}"
say "tiered_auth_vs_ceiling=$MEDIAN_RATIO (median of rounds: $ROUND_RATIOS)"
kill "$CEIL_PID"
load tiered_login loadtest/wrk/login.lua "$TIERED" "${PROCS[@]}" "postgres=$(pg_pids)"
load tiered_mixed loadtest/wrk/mixed.lua "$TIERED" "${PROCS[@]}" "postgres=$(pg_pids)"
say "wafer_rss_kib=$(rss_kib "$TIERED_PID")"

if [ "$SOAK" -gt 0 ]; then
  say "# soak: mixed load for ${SOAK}s, wafer RSS (KiB) every 30 s"
  rss_series="$(rss_kib "$TIERED_PID")"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SOAK}s" -s loadtest/wrk/mixed.lua "http://$TIERED" >"$WORK/soak.txt" 2>&1 &
  SOAK_PID=$!
  while kill -0 "$SOAK_PID" 2>/dev/null; do sleep 30; rss_series+=" $(rss_kib "$TIERED_PID")"; done
  say "soak_rss_kib=$rss_series"
  say "soak $(grep '^RESULT' "$WORK/soak.txt" | sed 's/^RESULT //')"
fi
kill "$TIERED_PID"

# --- embedded ---------------------------------------------------------------
start_wafer "$EMBEDDED"
EMB_PID=$WAFER_PID
"$BIN/examples/seed" --url "http://$EMBEDDED" --appid wxload --n "$SESSIONS" --tag "emb-$TAG" \
  --out "$WORK/sessions-embedded.csv" | tee -a "$RESULTS"
"$ROOT/target/release/examples/ceiling" --listen "$FIXED" 2>>"$WORK/ceiling.log" &
FIXED_PID=$!; PIDS+=("$FIXED_PID")
sleep 0.5
WAFER_SESSIONS=$WORK/sessions-embedded.csv compare embedded_auth "$EMBEDDED" "wafer=$EMB_PID" \
  fixed_reply "$FIXED" "fixed=$FIXED_PID"
say "embedded_auth_vs_fixed_reply=$MEDIAN_RATIO (median of rounds: $ROUND_RATIOS)"
say "wafer_embedded_rss_kib=$(rss_kib "$EMB_PID")"
kill "$EMB_PID"
echo "results written to $RESULTS"
if ((${#FAILED_LOADS[@]})); then die "loads with failed requests: ${FAILED_LOADS[*]}"; fi
