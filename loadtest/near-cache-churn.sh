#!/usr/bin/env bash
# loadtest/near-cache-churn.sh -- the near cache must never be slower than
# no near cache, even where it cannot pay: a load that only churns it.
#
# 150,000 sessions in uniform turn against a cache bounded to 16 MiB (about
# 14,000 copies: a hit ratio near 0.1) with slides every 5 s, this build with
# the near cache on against the same build with it off, in interleaved
# rounds (loadtest/run.sh with NOT_WORSE=1). Fails (exit 1) unless the cache
# serves at least the rate of off (median of the rounds' ratios) with a p99
# at equal load no worse, within the harness' spread (NOT_WORSE_SLACK, 3%:
# an A/A run of two identical instances came out at 0.98). Not part of the CI suite: it measures, and
# this machine is shared; run it alone, after a change to the near cache.
#
#   loadtest/near-cache-churn.sh            (about 14 minutes)
#
# Environment: SESSIONS [150000], ROUNDS [4: the two swap places every
# round, so each goes first as often], BUILD [1]; the rest as
# loadtest/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export SESSIONS=${SESSIONS:-150000} ROUNDS=${ROUNDS:-4}
export ONLY=auth WITH_K6=0 REVOCATIONS=${REVOCATIONS:-1000}
export WAFER_NEAR_CACHE_BYTES=16MiB WAFER_NEAR_CACHE_SLIDE=5s
export BASELINE=target/release BASELINE_ENV=WAFER_NEAR_CACHE=false NOT_WORSE=1
exec loadtest/run.sh
