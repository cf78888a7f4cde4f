// /mina/auth over the seeded sessions: the hot path.
//   k6 run -e WAFER_SESSIONS=$PWD/sessions.csv loadtest/k6/auth.js
import http from 'k6/http';
import { check } from 'k6';
import { BASE, JSON_HEADERS, VUS, loadSessions, thresholds } from './common.js';

const sessions = loadSessions();

export const options = {
  scenarios: {
    auth: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || '30s' },
  },
  thresholds: thresholds({
    http_req_failed: ['rate==0'],
    // Target: p99 <= 3 ms at 64 connections (and >= 0.9 x the ceiling
    // server's rate, which loadtest/run.sh measures on the same machine).
    'http_req_duration{route:auth}': ['p(99)<3'],
    checks: ['rate==1'],
  }),
};

export default function () {
  const body = sessions[(__VU * 7919 + __ITER) % sessions.length];
  const res = http.post(`${BASE}/mina/auth`, body, {
    ...JSON_HEADERS,
    tags: { route: 'auth' },
  });
  check(res, { 'auth ok': (r) => r.status === 200 });
}
