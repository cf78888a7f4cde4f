// Forward auth, GET /mina/auth with the credentials in headers (what a
// gateway sends), over the seeded sessions.
//   k6 run -e WAFER_SESSIONS=$PWD/sessions.csv loadtest/k6/forward.js
import http from 'k6/http';
import { check } from 'k6';
import { APP_ID, BASE, VUS, loadSessionPairs, thresholds } from './common.js';

const sessions = loadSessionPairs();

export const options = {
  scenarios: {
    forward: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || '30s' },
  },
  thresholds: thresholds({
    http_req_failed: ['rate==0'],
    // The same target as POST /mina/auth: it is the same check.
    'http_req_duration{route:forward}': ['p(99)<3'],
    checks: ['rate==1'],
  }),
};

export default function () {
  const [uuid, skey] = sessions[(__VU * 7919 + __ITER) % sessions.length];
  const res = http.get(`${BASE}/mina/auth`, {
    headers: { 'X-WX-Id': uuid, 'X-WX-Skey': skey, 'X-WX-App': APP_ID },
    tags: { route: 'forward' },
  });
  check(res, {
    'forward ok': (r) => r.status === 200 && Boolean(r.headers['X-Wafer-Open-Id']),
  });
}
