#!/usr/bin/env bash
# loadtest/faults.sh -- a fault drill: logins and auths under load while
# Redis is killed and restarted empty, PostgreSQL goes away and comes back,
# wafer is killed with -9 and stopped with SIGTERM, and idle connections
# flood it; then, under auth load, Redis stays away for minutes, and a
# Redis Cluster gains a primary and moves slots to it. After each fault, every login wafer acknowledged is checked once
# (examples/check_sessions): a refused one is a lost session. Prints one
# line per fault: logins acknowledged and failed, sessions checked, lost,
# and failed otherwise (5xx while a store was away).
#
# Runs on its own Redis (a private redis-server on a free port, no
# persistence, so a restart is empty), its own database on the local
# PostgreSQL, reached through a TCP relay the drill cuts to take PostgreSQL
# "away" (connections refused and reset, as when it stops), and release
# binaries (BUILD=0 to use target/release as it is).
#
# The last two steps report, beside the checks: ended sessions accepted
# (must be 0), visits lost (sessions kept alive only by auths during the
# outage, on an app whose sessions last 60 s idle, refused afterwards: must
# be 0), wafer's RSS through the outage, and auths that failed.
#
# Environment: SESSIONS [2000] logins per fault; OUTAGE [180] seconds of
# Redis away under load; RESHARD [1] (0 skips the cluster step);
# PG_ADMIN_URL [postgres://postgres@127.0.0.1:5432/postgres]; BUILD [1];
# RESULTS [target/loadtest/faults.txt].
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SESSIONS=${SESSIONS:-2000}
OUTAGE=${OUTAGE:-180}
RESHARD=${RESHARD:-1}
BUILD=${BUILD:-1}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=$ROOT/target/loadtest/faults
RESULTS=${RESULTS:-$ROOT/target/loadtest/faults.txt}
BIN=$ROOT/target/release
TAG=$(date +%s)
DB="wafer_faults_$TAG"
mkdir -p "$WORK"
: >"$RESULTS"

die() { echo "faults: $*" >&2; exit 1; }
say() { echo "$*" | tee -a "$RESULTS"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for t in redis-server redis-cli psql curl python3 wrk; do command -v "$t" >/dev/null || die "$t is missing"; done

if [ "$BUILD" = 1 ]; then
  echo "building release binaries..."
  cargo build --release --bin wafer --bin wechat-mock --example seed --example check_sessions >/dev/null 2>&1 ||
    cargo build --release --bin wafer --bin wechat-mock --example seed --example check_sessions
fi
for b in wafer wechat-mock examples/seed examples/check_sessions; do [ -x "$BIN/$b" ] || die "no $BIN/$b"; done

REDIS_PORT=$(free_port); MOCK_PORT=$(free_port); RELAY_PORT=$(free_port); WAFER_PORT=$(free_port)
PG_HOSTPORT=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(f'{p.hostname or \"127.0.0.1\"}:{p.port or 5432}')" "$PG_ADMIN_URL")
DB_URL="postgres://postgres@127.0.0.1:$RELAY_PORT/$DB"
URL="http://127.0.0.1:$WAFER_PORT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}" ${WAFER_PID:-} ${REDIS_PID:-} ${RELAY_PID:-}; do kill -9 "$p" 2>/dev/null || true; done
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

start_redis() {
  redis-server --port "$REDIS_PORT" --save '' --appendonly no --hash-max-listpack-value 512 >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  die "redis did not start"
}
# A TCP relay to PostgreSQL: killing it is PostgreSQL going away.
start_relay() {
  python3 - "$RELAY_PORT" "$PG_HOSTPORT" >"$WORK/relay.log" 2>&1 <<'PY' &
import asyncio, sys
port = int(sys.argv[1]); host, pg = sys.argv[2].rsplit(":", 1)
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def serve(r, w):
    try:
        ur, uw = await asyncio.open_connection(host, int(pg))
    except Exception:
        w.close(); return
    await asyncio.gather(pipe(r, uw), pipe(ur, w))
async def main():
    s = await asyncio.start_server(serve, "127.0.0.1", port)
    async with s: await s.serve_forever()
asyncio.run(main())
PY
  RELAY_PID=$!
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$RELAY_PORT") 2>/dev/null && return; sleep 0.1; done
  die "the relay did not start"
}
start_wafer() {
  WAFER_LISTEN=127.0.0.1:$WAFER_PORT WAFER_REDIS_URL=redis://127.0.0.1:$REDIS_PORT WAFER_DATABASE_URL=$DB_URL \
    WAFER_WECHAT_API_BASE=http://127.0.0.1:$MOCK_PORT WAFER_ADMIN_TOKEN=faults WAFER_LOG=warn \
    "$BIN/wafer" serve 2>>"$WORK/wafer.log" &
  WAFER_PID=$!
  wait_up "$URL"
}
wait_up() { # url
  for _ in $(seq 1 100); do curl -fs "$1/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  die "wafer did not start at $1 (see $WORK/wafer*.log)"
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# auth_load URL APP SECONDS FILE: wrk over FILE's sessions in the
# background; its output goes to $WORK/wrk-<APP>.out.
auth_load() {
  WRK_DIR=$ROOT/loadtest/wrk WAFER_APP_ID=$2 WAFER_SESSIONS=$4 \
    wrk -t2 -c32 -d"$3s" -s "$ROOT/loadtest/wrk/auth.lua" "$1" >"$WORK/wrk-$2.out" 2>&1 &
  WRK_PID=$!
}
# wrk_summary APP: requests, and those not answered 2xx.
wrk_summary() {
  local total bad
  total=$(awk '/requests in/ {print $1}' "$WORK/wrk-$1.out")
  bad=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk-$1.out")
  echo "auths=${total:-?} non_2xx=${bad:-0} $(grep -E 'Socket errors' "$WORK/wrk-$1.out" || true)"
}
# ended_accepted URL APP FILE: how many of FILE's (ended) sessions wafer
# accepts.
ended_accepted() {
  "$BIN/examples/check_sessions" --url "$1" --app-id "$2" --file "$3" --expect refused 2>&1 | tail -n 1
}
# seed NAME: logins in the background; acknowledged ones go to NAME.csv.
seed() {
  "$BIN/examples/seed" --url "$URL" --appid wxfaults --n "$SESSIONS" --tag "$1-$TAG" --concurrency 32 \
    --out "$WORK/$1.csv" >"$WORK/$1.seed" 2>&1 &
  SEED_PID=$!
}
# report NAME: waits for the logins, checks every acknowledged session once.
report() {
  wait "$SEED_PID" || true
  local acked failed check
  acked=$(wc -l <"$WORK/$1.csv")
  failed=$((SESSIONS - acked))
  check=$("$BIN/examples/check_sessions" --url "$URL" --file "$WORK/$1.csv" 2>&1 | tail -n 1) || true
  say "$1: logins acknowledged=$acked failed=$failed; $check"
}

psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$DB\"" >/dev/null
# The mock knows the drill's apps (created below with secret "s").
"$BIN/wechat-mock" --listen "127.0.0.1:$MOCK_PORT" --app wxfaults=s,wxoutage=s,wxreshard=s \
  2>"$WORK/mock.log" & PIDS+=($!)
start_redis
start_relay
start_wafer
curl -fs -H 'Authorization: Bearer faults' -H 'Content-Type: application/json' \
  -d '{"title":"faults","appid":"wxfaults","secret":"s"}' "$URL/admin/apps" >/dev/null
say "# wafer fault drill $(date -u +%FT%TZ): commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $SESSIONS logins per fault"

# 1. Redis killed mid-logins, restarted empty.
seed redis_killed
sleep 1; kill -9 "$REDIS_PID"; sleep 1; start_redis
report redis_killed
# FLUSHALL: every session must come back from PostgreSQL.
redis-cli -p "$REDIS_PORT" flushall >/dev/null
"$BIN/examples/check_sessions" --url "$URL" --file "$WORK/redis_killed.csv" | tail -n 1 | sed 's/^/after FLUSHALL: /' | tee -a "$RESULTS" || true

# 1b. The near cache: sessions wafer holds in process are ended (logged out
# with Redis up; revoked with Redis killed), and must be refused from then on,
# while Redis is away and after it restarts empty; the others stay valid.
head -n 300 "$WORK/redis_killed.csv" >"$WORK/near.all"
sed -n '1,100p' "$WORK/near.all" >"$WORK/near.logout"
sed -n '101,200p' "$WORK/near.all" >"$WORK/near.revoke"
sed -n '201,300p' "$WORK/near.all" >"$WORK/near.keep"
for _ in 1 2; do "$BIN/examples/check_sessions" --url "$URL" --file "$WORK/near.all" >/dev/null; done
while IFS=, read -r uuid skey; do
  curl -fs -H 'Content-Type: application/json' \
    -d "{\"app_id\":1,\"uuid\":\"$uuid\",\"skey\":\"$skey\"}" "$URL/mina/logout" >/dev/null
done <"$WORK/near.logout"
near_check() { # label file expectation
  local out
  out=$("$BIN/examples/check_sessions" --url "$URL" --file "$2" --expect "$3" 2>&1 | tail -n 1) || true
  say "near_cache $1: $out"
}
near_check "logged out, Redis up" "$WORK/near.logout" refused
kill -9 "$REDIS_PID"; sleep 0.5
while IFS=, read -r uuid _; do
  curl -fs -X DELETE -H 'Authorization: Bearer faults' "$URL/admin/sessions/$uuid" >/dev/null || true
done <"$WORK/near.revoke"
near_check "revoked while Redis is down" "$WORK/near.revoke" refused
near_check "logged out, Redis down" "$WORK/near.logout" refused
start_redis; sleep 1
near_check "revoked, after Redis restarted empty" "$WORK/near.revoke" refused
near_check "logged out, after Redis restarted empty" "$WORK/near.logout" refused
near_check "untouched, after Redis restarted empty" "$WORK/near.keep" valid
say "near_cache flushes: $(curl -fs "$URL/metrics" | awk '/^wafer_near_cache_flushes_total/ {printf "%s ", $0}')"

# 2. PostgreSQL away for 3 s mid-logins (auth goes on from Redis).
seed postgres_away
sleep 1; kill -9 "$RELAY_PID"; sleep 3; start_relay
report postgres_away

# 3. wafer killed with -9 mid-logins, restarted.
seed wafer_kill9
sleep 1; kill -9 "$WAFER_PID"; sleep 0.5; start_wafer
report wafer_kill9

# 4. wafer stopped with SIGTERM mid-logins (it drains), restarted.
seed wafer_sigterm
sleep 1; kill -TERM "$WAFER_PID"; wait "$WAFER_PID" 2>/dev/null || true; start_wafer
report wafer_sigterm

# 5. 3,000 idle connections held open while logins and checks run.
python3 - "$WAFER_PORT" >"$WORK/idle.log" 2>&1 <<'PY' &
import socket, sys, time
held = []
for _ in range(3000):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        break
print(f"held {len(held)} idle connections", flush=True)
time.sleep(20)
PY
IDLE_PID=$!; PIDS+=("$IDLE_PID")
for _ in $(seq 1 100); do [ -s "$WORK/idle.log" ] && break; sleep 0.1; done
seed idle_flood
report idle_flood
say "idle_flood: $(head -n 1 "$WORK/idle.log")"
kill "$IDLE_PID" 2>/dev/null || true

# 6. Redis away for OUTAGE seconds under auth load, on an app whose sessions
# last 60 s idle: they stay alive only through visits wafer records while
# Redis is away (PostgreSQL) and after it comes back empty. Sessions logged
# out before and revoked during the outage must stay refused.
curl -fs -H 'Authorization: Bearer faults' -H 'Content-Type: application/json' \
  -d '{"title":"outage","appid":"wxoutage","secret":"s","session_duration":60}' "$URL/admin/apps" >"$WORK/outage.app"
OUTAGE_APP=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <"$WORK/outage.app")
"$BIN/examples/seed" --url "$URL" --appid wxoutage --app-id "$OUTAGE_APP" --n "$SESSIONS" --tag "outage-$TAG" \
  --concurrency 32 --out "$WORK/outage.all" >"$WORK/outage.seed" 2>&1 || die "outage: seeding failed"
sed -n '1,100p' "$WORK/outage.all" >"$WORK/outage.logout"
sed -n '101,200p' "$WORK/outage.all" >"$WORK/outage.revoke"
sed -n '201,$p' "$WORK/outage.all" >"$WORK/outage.keep"
while IFS=, read -r uuid skey; do
  curl -fs -H 'Content-Type: application/json' \
    -d "{\"app_id\":$OUTAGE_APP,\"uuid\":\"$uuid\",\"skey\":\"$skey\"}" "$URL/mina/logout" >/dev/null
done <"$WORK/outage.logout"
auth_load "$URL" "$OUTAGE_APP" $((OUTAGE + 30)) "$WORK/outage.keep"
sleep 10
rss_before=$(rss_mb "$WAFER_PID")
kill -9 "$REDIS_PID"
rss_trace="$rss_before"
while IFS=, read -r uuid _; do
  curl -fs -X DELETE -H 'Authorization: Bearer faults' "$URL/admin/sessions/$uuid" >/dev/null || true
done <"$WORK/outage.revoke"
cat "$WORK/outage.logout" "$WORK/outage.revoke" >"$WORK/outage.ended"
mid=$(ended_accepted "$URL" "$OUTAGE_APP" "$WORK/outage.ended") || true
waited=0
while [ "$waited" -lt "$OUTAGE" ]; do
  step=$((OUTAGE - waited < 30 ? OUTAGE - waited : 30))
  sleep "$step"; waited=$((waited + step))
  rss_trace="$rss_trace $(rss_mb "$WAFER_PID")"
done
start_redis
wait "$WRK_PID" || true
sleep 2
after=$(ended_accepted "$URL" "$OUTAGE_APP" "$WORK/outage.ended") || true
kept=$("$BIN/examples/check_sessions" --url "$URL" --app-id "$OUTAGE_APP" --file "$WORK/outage.keep" 2>&1 | tail -n 1) || true
say "redis_away ${OUTAGE}s under load: $(wrk_summary "$OUTAGE_APP")"
say "redis_away ended sessions, Redis away: $mid"
say "redis_away ended sessions, Redis back empty: $after"
say "redis_away visits (sessions of 60 s kept alive only by auths during the outage): $kept"
say "redis_away wafer RSS MB, before and every 30 s of the outage: $rss_trace; after: $(rss_mb "$WAFER_PID")"

# 7. A Redis Cluster gains a primary and moves slots to it while instance B
# answers auths; then sessions on the moved slots are revoked or logged out
# through instance A: B must refuse every one (its copies came from the new
# primary, whose changes it must hear), and accept the rest.
if [ "$RESHARD" = 1 ]; then
  CL_DIR=$WORK/cluster; rm -rf "$CL_DIR"; mkdir -p "$CL_DIR"
  # cl_node: starts a cluster node on a free port, sets NODE_PORT (a port
  # found free can be taken before redis-server binds it: another is tried).
  cl_node() {
    local port _try
    for _try in 1 2 3; do
      port=$(free_port)
      (cd "$CL_DIR" && redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 2000 --save '' --appendonly no \
        --hash-max-listpack-value 512 >"$CL_DIR/$port.log" 2>&1 &
        echo $! >"$CL_DIR/$port.pid")
      PIDS+=("$(cat "$CL_DIR/$port.pid")")
      for _ in $(seq 1 100); do
        if redis-cli -p "$port" ping >/dev/null 2>&1; then NODE_PORT=$port; return; fi
        sleep 0.1
      done
    done
    die "no cluster node started (see $CL_DIR/*.log)"
  }
  CL_PORTS=()
  for _ in 1 2 3; do cl_node; CL_PORTS+=("$NODE_PORT"); done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CL_PORTS[@]}") --cluster-replicas 0 --cluster-yes \
    >"$CL_DIR/create.log" 2>&1 || die "cluster create failed (see $CL_DIR/create.log)"
  for _ in $(seq 1 100); do
    redis-cli -p "${CL_PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
  done
  CL_URL="redis-cluster://127.0.0.1:${CL_PORTS[0]}?node=127.0.0.1:${CL_PORTS[1]}&node=127.0.0.1:${CL_PORTS[2]}"
  CL_DB="${DB}_cluster"
  psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$CL_DB\"" >/dev/null
  cleanup_cluster_db() { psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$CL_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; }
  trap 'cleanup_cluster_db; cleanup' EXIT
  CL_DB_URL="postgres://postgres@$PG_HOSTPORT/$CL_DB"
  A_PORT=$(free_port); B_PORT=$(free_port)
  for port in "$A_PORT" "$B_PORT"; do
    WAFER_LISTEN=127.0.0.1:$port WAFER_REDIS_URL=$CL_URL WAFER_DATABASE_URL=$CL_DB_URL \
      WAFER_WECHAT_API_BASE=http://127.0.0.1:$MOCK_PORT WAFER_ADMIN_TOKEN=faults WAFER_LOG=warn \
      "$BIN/wafer" serve 2>>"$WORK/wafer-cluster-$port.log" &
    PIDS+=($!)
    wait_up "http://127.0.0.1:$port"
  done
  A=http://127.0.0.1:$A_PORT; B=http://127.0.0.1:$B_PORT
  curl -fs -H 'Authorization: Bearer faults' -H 'Content-Type: application/json' \
    -d '{"title":"reshard","appid":"wxreshard","secret":"s"}' "$A/admin/apps" >/dev/null
  sleep 1.5 # B learns the app
  "$BIN/examples/seed" --url "$A" --appid wxreshard --n "$SESSIONS" --tag "reshard-$TAG" \
    --concurrency 32 --out "$WORK/reshard.all" >"$WORK/reshard.seed" 2>&1 || die "reshard: seeding failed"
  auth_load "$B" 1 40 "$WORK/reshard.all"
  sleep 5
  cl_node; NEW_PORT=$NODE_PORT
  redis-cli --cluster add-node "127.0.0.1:$NEW_PORT" "127.0.0.1:${CL_PORTS[0]}" >"$CL_DIR/add.log" 2>&1 ||
    die "add-node failed (see $CL_DIR/add.log)"
  sleep 3 # every node knows the new one
  from=$(redis-cli -p "${CL_PORTS[0]}" cluster myid); to=$(redis-cli -p "$NEW_PORT" cluster myid)
  redis-cli --cluster reshard "127.0.0.1:${CL_PORTS[0]}" --cluster-from "$from" --cluster-to "$to" \
    --cluster-slots 3000 --cluster-yes >"$CL_DIR/reshard.log" 2>&1 || die "reshard failed (see $CL_DIR/reshard.log)"
  wait "$WRK_PID" || true
  # The sessions now on the new primary; B holds them (two auths each).
  : >"$WORK/reshard.moved"
  while IFS=, read -r uuid skey; do
    [ "$(redis-cli -p "$NEW_PORT" exists "wafer:s:{$uuid}" 2>/dev/null)" = 1 ] && echo "$uuid,$skey" >>"$WORK/reshard.moved"
  done <"$WORK/reshard.all"
  for _ in 1 2; do "$BIN/examples/check_sessions" --url "$B" --file "$WORK/reshard.moved" >/dev/null 2>&1 || true; done
  moved=$(wc -l <"$WORK/reshard.moved")
  half=$((moved / 2))
  sed -n "1,${half}p" "$WORK/reshard.moved" >"$WORK/reshard.ended"
  sed -n "$((half + 1)),\$p" "$WORK/reshard.moved" >"$WORK/reshard.kept"
  n=0
  while IFS=, read -r uuid skey; do
    n=$((n + 1))
    if [ $((n % 2)) = 0 ]; then
      curl -fs -X DELETE -H 'Authorization: Bearer faults' "$A/admin/sessions/$uuid" >/dev/null || true
    else
      curl -fs -H 'Content-Type: application/json' \
        -d "{\"app_id\":1,\"uuid\":\"$uuid\",\"skey\":\"$skey\"}" "$A/mina/logout" >/dev/null || true
    fi
  done <"$WORK/reshard.ended"
  sleep 0.1
  say "reshard under load (3000 slots to a new primary): $(wrk_summary 1)"
  say "reshard: $moved sessions moved; ended through A, on B: $(ended_accepted "$B" 1 "$WORK/reshard.ended")"
  say "reshard: the rest of the moved, on B: $("$BIN/examples/check_sessions" --url "$B" --file "$WORK/reshard.kept" 2>&1 | tail -n 1)"
  say "reshard: B's near cache: $(curl -fs "$B/metrics" | awk '/^wafer_near_cache_(flushes_total|hits_total\{answer="accepted")/ && $NF != 0 {printf "%s ", $0}')"
fi

# Everything acknowledged in the whole drill, once more at the end.
# (less the sessions step 1b ended on purpose)
cat "$WORK"/*.csv | grep -vxFf <(cat "$WORK/near.logout" "$WORK/near.revoke") >"$WORK/all.sessions" || true
"$BIN/examples/check_sessions" --url "$URL" --file "$WORK/all.sessions" | tail -n 1 | sed 's/^/all faults, at the end: /' | tee -a "$RESULTS" || true
echo "results written to $RESULTS"
