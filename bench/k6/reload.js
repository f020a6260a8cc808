// k6: steady GETs through a sluice whose config is reloaded every second during the
// second half of the run (bench/k6/reload.sh does the reloading). Reports failed
// requests (must be 0) and p99 without vs during reloads.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:19999';
const PHASE_S = Number(__ENV.PHASE_S || 15);
const VUS = Number(__ENV.VUS || 20);

export const options = {
  scenarios: {
    steady: { executor: 'constant-vus', vus: VUS, duration: `${PHASE_S}s`, startTime: '0s' },
    reloading: { executor: 'constant-vus', vus: VUS, duration: `${PHASE_S}s`, startTime: `${PHASE_S}s` },
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    'http_req_failed{scenario:steady}': ['rate==0'],
    'http_req_failed{scenario:reloading}': ['rate==0'],
    'http_req_duration{scenario:steady}': ['p(99)>=0'],
    'http_req_duration{scenario:reloading}': ['p(99)>=0'],
  },
};

export default function () {
  const res = http.get(`${BASE}/todos?limit=10`, { timeout: '5s' });
  check(res, { 'status 200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  const m = data.metrics;
  const pick = (name) => (m[name] ? m[name].values : {});
  const out = {
    steady: { p99_ms: pick('http_req_duration{scenario:steady}')['p(99)'],
              failed_rate: pick('http_req_failed{scenario:steady}').rate },
    reloading: { p99_ms: pick('http_req_duration{scenario:reloading}')['p(99)'],
                 failed_rate: pick('http_req_failed{scenario:reloading}').rate },
    requests: pick('http_reqs').count,
    failed: pick('http_req_failed').passes,
  };
  return { stdout: JSON.stringify(out) + '\n', [__ENV.SUMMARY_FILE || '/dev/null']: JSON.stringify(out) };
}
