// 95% auth, 4% login, 1% logout. Logouts end sessions this VU's own logins
// created, so the seeded sessions stay valid for the auths.
//   k6 run -e WAFER_SESSIONS=$PWD/sessions.csv loadtest/k6/mixed.js
import http from 'k6/http';
import { check } from 'k6';
import {
  BASE,
  JSON_HEADERS,
  APP_ID,
  VUS,
  loadSessions,
  loginBody,
  thresholds,
} from './common.js';

const sessions = loadSessions();

export const options = {
  scenarios: {
    mixed: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || '60s' },
  },
  thresholds: thresholds({
    http_req_failed: ['rate==0'],
    'http_req_duration{route:auth}': ['p(99)<3'],
    'http_req_duration{route:login}': ['p(99)<50'],
    checks: ['rate==1'],
  }),
};

// Per VU: sessions this VU created and may log out.
const own = [];

export default function () {
  const roll = Math.random() * 100;
  if (roll < 4) {
    const res = http.post(`${BASE}/mina/login`, loginBody('mixed', __ITER), {
      ...JSON_HEADERS,
      tags: { route: 'login' },
    });
    if (check(res, { 'login ok': (r) => r.status === 200 })) {
      const d = res.json('data');
      own.push(JSON.stringify({ app_id: Number(APP_ID), uuid: d.uuid, skey: d.skey }));
    }
  } else if (roll < 5 && own.length > 0) {
    const res = http.post(`${BASE}/mina/logout`, own.pop(), {
      ...JSON_HEADERS,
      tags: { route: 'logout' },
    });
    check(res, { 'logout ok': (r) => r.status === 200 });
  } else {
    const body = sessions[(__VU * 7919 + __ITER) % sessions.length];
    const res = http.post(`${BASE}/mina/auth`, body, { ...JSON_HEADERS, tags: { route: 'auth' } });
    check(res, { 'auth ok': (r) => r.status === 200 });
  }
}
