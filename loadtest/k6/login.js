// /mina/login with a new user per request: a code exchange at the WeChat
// mock plus the write-through to PostgreSQL.
//   k6 run loadtest/k6/login.js
import http from 'k6/http';
import { check } from 'k6';
import { BASE, JSON_HEADERS, VUS, loginBody, thresholds } from './common.js';

export const options = {
  scenarios: {
    login: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || '30s' },
  },
  thresholds: thresholds({
    http_req_failed: ['rate==0'],
    // Target: >= 5,000 logins/s on 2 cores with the tiered store.
    'http_reqs{route:login}': ['rate>=5000'],
    'http_req_duration{route:login}': ['p(99)<50'],
    checks: ['rate==1'],
  }),
};

export default function () {
  const res = http.post(`${BASE}/mina/login`, loginBody('login', __ITER), {
    ...JSON_HEADERS,
    tags: { route: 'login' },
  });
  check(res, {
    'login ok': (r) => r.status === 200,
    'has a session': (r) => r.status === 200 && r.json('data.skey') !== undefined,
  });
}
