// Shared by the k6 scripts: settings from the environment and the seeded
// sessions as ready auth bodies.
//
//   WAFER_URL       wafer's base URL             [http://127.0.0.1:8080]
//   WAFER_APP_ID    the app's numeric id         [1]
//   WAFER_SESSIONS  file of `uuid,skey` lines    [sessions.csv]
//                   (loadtest/run.sh and `cargo run --release --example seed`
//                   write one, through real logins against the WeChat mock;
//                   an absolute path is safest: k6 resolves a relative one
//                   against loadtest/k6/, where common.js is)
//   WAFER_RUN_TAG   makes this run's login codes (so users) new [time]
//   DURATION        how long each load runs [30s; mixed 60s]
//   VUS             virtual users (connections) [64]
//   K6_SMOKE        1 = a short correctness run (scripts/k6-smoke): the only
//                   thresholds are "every check passes, no request fails,
//                   at least one request"; the latency and rate targets are
//                   for real runs on a quiet machine only
//
// wafer must be started with WAFER_WECHAT_API_BASE pointing at the WeChat
// mock (`wechat-mock --app APPID=SECRET` with the app's appid and secret): it
// answers every code, so logins create users.
import { SharedArray } from 'k6/data';

export const BASE = __ENV.WAFER_URL || 'http://127.0.0.1:8080';
export const APP_ID = __ENV.WAFER_APP_ID || '1';
export const TAG = __ENV.WAFER_RUN_TAG || String(Date.now());
export const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' } };
export const VUS = Number(__ENV.VUS || 64);
export const SMOKE = Boolean(__ENV.K6_SMOKE) && __ENV.K6_SMOKE !== '0';

// The thresholds of a script: its targets, or in a smoke run only what must
// hold at any speed.
export function thresholds(targets) {
  if (SMOKE) {
    return { checks: ['rate==1'], http_req_failed: ['rate==0'], http_reqs: ['count>0'] };
  }
  return targets;
}

// The seeded sessions, loaded once and shared read-only between VUs (no
// per-VU copy). Call it in the init context (top level) of a script that
// sends auths; login.js does not, so it runs without a sessions file.
export function loadSessions() {
  return new SharedArray('sessions', function () {
    return readPairs().map(([uuid, skey]) =>
      JSON.stringify({ app_id: Number(APP_ID), uuid: uuid, skey: skey }),
    );
  });
}

// The seeded sessions as [uuid, skey] pairs (forward auth sends them as
// headers), shared like loadSessions().
export function loadSessionPairs() {
  return new SharedArray('session pairs', readPairs);
}

function readPairs() {
  const path = __ENV.WAFER_SESSIONS || 'sessions.csv';
  const pairs = [];
  for (const line of open(path).split('\n')) {
    const [uuid, skey] = line.trim().split(',');
    if (uuid && skey) {
      pairs.push([uuid, skey]);
    }
  }
  if (pairs.length === 0) {
    throw new Error('no sessions in ' + path);
  }
  return pairs;
}

// A login body for a user no earlier request has used.
export function loginBody(kind, n) {
  return JSON.stringify({ app_id: Number(APP_ID), code: `k6-${kind}-${TAG}-${__VU}-${n}.1` });
}
