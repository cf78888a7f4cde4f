// Shared by the k6 scripts: settings from the environment and the seeded
// sessions as ready auth bodies.
//
//   WAFER_URL       wafer's base URL             [http://127.0.0.1:8080]
//   WAFER_APP_ID    the app's numeric id         [1]
//   WAFER_SESSIONS  file of `uuid,skey` lines    [sessions.csv]
//                   (loadtest/run.sh and `cargo run --release --example seed`
//                   write one, through real logins against the WeChat mock)
//   WAFER_RUN_TAG   makes this run's login codes (so users) new [time]
//
// wafer must be started with WAFER_WECHAT_API_BASE pointing at the WeChat
// mock (`wechat-mock`): it answers every code, so logins create users.
import { SharedArray } from 'k6/data';

export const BASE = __ENV.WAFER_URL || 'http://127.0.0.1:8080';
export const APP_ID = __ENV.WAFER_APP_ID || '1';
export const TAG = __ENV.WAFER_RUN_TAG || String(Date.now());
export const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' } };

// Loaded once and shared read-only between VUs (no per-VU copy).
export const sessions = new SharedArray('sessions', function () {
  const path = __ENV.WAFER_SESSIONS || 'sessions.csv';
  const bodies = [];
  for (const line of open(path).split('\n')) {
    const [uuid, skey] = line.trim().split(',');
    if (uuid && skey) {
      bodies.push(JSON.stringify({ app_id: Number(APP_ID), uuid: uuid, skey: skey }));
    }
  }
  if (bodies.length === 0) {
    throw new Error('no sessions in ' + path);
  }
  return bodies;
});

// A login body for a user no earlier request has used.
export function loginBody(kind, n) {
  return JSON.stringify({ app_id: Number(APP_ID), code: `k6-${kind}-${TAG}-${__VU}-${n}.1` });
}
