// k6: GETs at a fixed arrival rate (so hedged and unhedged runs carry the same load),
// reporting p50/p99. bench/run.sh runs it against /demo/plain and /demo/hedged while one
// demo peer delays 10% of its requests by 300 ms.
import http from 'k6/http';

const URL = __ENV.URL || 'http://127.0.0.1:9999/demo/hedged/x';
const RATE = Number(__ENV.RATE || 500);
const DURATION = __ENV.DURATION || '10s';

export const options = {
  scenarios: {
    fixed: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
      preAllocatedVUs: 50, maxVUs: 400,
    },
  },
  summaryTrendStats: ['p(50)', 'p(99)'],
};

export default function () {
  http.get(URL, { timeout: '5s' });
}

export function handleSummary(data) {
  const d = data.metrics.http_req_duration.values;
  const out = { p50: d['p(50)'], p99: d['p(99)'], reqs: data.metrics.http_reqs.values.count,
                failed: data.metrics.http_req_failed.values.passes };
  return { stdout: JSON.stringify(out) + '\n' };
}
