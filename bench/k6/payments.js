// k6: the Rinha de Backend 2025 shape through sluice. Ramps to 550 VUs over 60 s; each
// iteration POSTs one payment (fresh UUID, 19.90) with a 1500 ms timeout, then sleeps 1 s.
// Meanwhile one VU changes the processor simulators every 10 s and another compares
// /payments-summary with both processors' admin summaries over a recent window.
// teardown waits for the queue to drain, then checks the whole run once more.
// bench/k6/payments.sh runs it against `make up` and writes bench/results/30-payments.md.
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:9999';
const PROCESSORS = {
  default: __ENV.DEFAULT_URL || 'http://127.0.0.1:8001',
  fallback: __ENV.FALLBACK_URL || 'http://127.0.0.1:8002',
};
// One payments instance, asked directly for its queue counts (not part of the contest API).
const PAYMENTS = __ENV.PAYMENTS_URL || 'http://127.0.0.1:8091';
const TOKEN = { 'X-Rinha-Token': __ENV.RINHA_TOKEN || '123' };
const JSON_HEADERS = { 'Content-Type': 'application/json' };
const MAX_VUS = Number(__ENV.MAX_VUS || 550);
const RAMP_S = Number(__ENV.RAMP_S || 60);
const PHASE_S = RAMP_S / 6;
// The consistency window ends this long ago: every payment requested in it has had its
// processor's answer (the slowest phase is 5 s; calls time out at 8 s).
const WINDOW_LAG_MS = 10000;
const WINDOW_MS = 10000;
const DRAIN_S = Number(__ENV.DRAIN_S || 60);

const latency = new Trend('payment_post_ms', true);
const accepted = new Counter('payments_accepted');
const failedPosts = new Counter('payments_failed_posts');
const checks = new Counter('consistency_checks');
const inconsistencies = new Counter('inconsistencies');
const processed = {
  default: new Counter('processed_default'),
  fallback: new Counter('processed_fallback'),
};
const amountCents = new Counter('processed_amount_cents');
const feeCents = new Counter('processed_fee_cents');
const drainMs = new Trend('drain_ms');

export const options = {
  scenarios: {
    payments: {
      executor: 'ramping-vus', exec: 'pay', startVUs: 1,
      stages: [{ duration: `${RAMP_S}s`, target: MAX_VUS }],
      gracefulRampDown: '2s', gracefulStop: '2s',
    },
    chaos: { executor: 'shared-iterations', exec: 'chaos', vus: 1, iterations: 1, maxDuration: `${RAMP_S + 5}s` },
    checker: {
      executor: 'constant-arrival-rate', exec: 'checkWindow', rate: 1, timeUnit: `${PHASE_S}s`,
      duration: `${RAMP_S - WINDOW_LAG_MS / 1000}s`, startTime: `${(WINDOW_LAG_MS + WINDOW_MS) / 1000}s`,
      preAllocatedVUs: 1,
    },
  },
  setupTimeout: '30s',
  teardownTimeout: `${DRAIN_S + 30}s`,
  summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(99)', 'max'],
};

function uuid() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function configure(name, delay, failure) {
  const base = PROCESSORS[name];
  const headers = Object.assign({}, TOKEN, JSON_HEADERS);
  if (delay !== undefined) {
    http.put(`${base}/admin/configurations/delay`, JSON.stringify({ delay }), { headers, tags: { name: 'admin' } });
  }
  if (failure !== undefined) {
    http.put(`${base}/admin/configurations/failure`, JSON.stringify({ failure }), { headers, tags: { name: 'admin' } });
  }
}

export function setup() {
  for (const name of Object.keys(PROCESSORS)) {
    configure(name, 0, false);
    http.post(`${PROCESSORS[name]}/admin/purge-payments`, null, { headers: TOKEN });
  }
  const r = http.post(`${BASE}/purge-payments`);
  if (r.status !== 200) throw new Error(`purge through the gateway answered ${r.status}: ${r.body}`);
  return { start: new Date(Date.now() - 1000).toISOString() };
}

export function pay() {
  const body = JSON.stringify({ correlationId: uuid(), amount: 19.9 });
  const r = http.post(`${BASE}/payments`, body, { headers: JSON_HEADERS, timeout: '1500ms', tags: { name: 'payments' } });
  latency.add(r.timings.duration);
  if (r.status >= 200 && r.status < 300) accepted.add(1);
  else failedPosts.add(1);
  sleep(1);
}

// Every PHASE_S: default 100 ms; default failing; default 2 s + fallback 1 s failing;
// both 20 ms; fallback 5 s; both 100 ms. Both are restored at the end.
export function chaos() {
  const phases = [
    () => { configure('default', 100, false); configure('fallback', 100, false); },
    () => { configure('default', 100, true); },
    () => { configure('default', 2000, false); configure('fallback', 1000, true); },
    () => { configure('default', 20, false); configure('fallback', 20, false); },
    () => { configure('fallback', 5000, false); },
    () => { configure('default', 100, false); configure('fallback', 100, false); },
  ];
  for (const phase of phases) {
    phase();
    sleep(PHASE_S);
  }
  configure('default', 0, false);
  configure('fallback', 0, false);
}

function ours(query) {
  const r = http.get(`${BASE}/payments-summary${query}`, { tags: { name: 'summary' } });
  return r.status === 200 ? r.json() : null;
}

function theirs(name, query) {
  const r = http.get(`${PROCESSORS[name]}/admin/payments-summary${query}`, { headers: TOKEN, tags: { name: 'admin' } });
  return r.status === 200 ? r.json() : null;
}

// Compares our summary with the processors' for `query`; returns the processors' totals.
function compare(query, label) {
  checks.add(1);
  const mine = ours(query);
  const result = {};
  let consistent = mine !== null;
  for (const name of Object.keys(PROCESSORS)) {
    const t = theirs(name, query);
    result[name] = t;
    if (t === null || mine === null) { consistent = false; continue; }
    const m = mine[name];
    if (m.totalRequests !== t.totalRequests || Math.abs(m.totalAmount - t.totalAmount) > 0.001) {
      consistent = false;
      console.warn(`${label}: ${name} ours ${JSON.stringify(m)} vs processor ${JSON.stringify(t)}`);
    }
  }
  if (!consistent) inconsistencies.add(1);
  return result;
}

export function checkWindow() {
  const to = new Date(Date.now() - WINDOW_LAG_MS);
  const from = new Date(to.getTime() - WINDOW_MS);
  compare(`?from=${from.toISOString()}&to=${to.toISOString()}`, `window ${from.toISOString()}`);
}

export function teardown(data) {
  configure('default', 0, false);
  configure('fallback', 0, false);
  const began = Date.now();
  while (Date.now() - began < DRAIN_S * 1000) {
    const r = http.get(`${PAYMENTS}/queue-stats`, { tags: { name: 'admin' } });
    if (r.status === 200) {
      const s = r.json();
      if (s.queued === 0 && s.processing === 0) break;
    }
    sleep(0.5);
  }
  drainMs.add(Date.now() - began);
  const query = `?from=${data.start}&to=${new Date(Date.now() + 1000).toISOString()}`;
  const totals = compare(query, 'whole run');
  for (const name of Object.keys(PROCESSORS)) {
    const t = totals[name];
    if (!t) continue;
    processed[name].add(t.totalRequests);
    amountCents.add(Math.round(t.totalAmount * 100));
    feeCents.add(Math.round(t.totalFee * 100));
  }
}

export function handleSummary(data) {
  const m = data.metrics;
  const count = (name) => (m[name] ? m[name].values.count : 0);
  const p99 = m.payment_post_ms ? m.payment_post_ms.values['p(99)'] : null;
  const acceptedN = count('payments_accepted');
  const processedN = count('processed_default') + count('processed_fallback');
  const gross = count('processed_amount_cents') / 100;
  const fees = count('processed_fee_cents') / 100;
  const bonus = p99 === null ? 0 : Math.max((11 - p99) * 0.02, 0);
  const fined = count('inconsistencies') > 0;
  const score = (gross - fees) * (1 + bonus) * (fined ? 0.65 : 1);
  const out = {
    p99_ms: p99,
    p50_ms: m.payment_post_ms ? m.payment_post_ms.values['p(50)'] : null,
    max_ms: m.payment_post_ms ? m.payment_post_ms.values.max : null,
    accepted: acceptedN,
    failed_posts: count('payments_failed_posts'),
    processed_default: count('processed_default'),
    processed_fallback: count('processed_fallback'),
    processed_share: acceptedN ? processedN / acceptedN : 0,
    consistency_checks: count('consistency_checks'),
    inconsistencies: count('inconsistencies'),
    gross, fees, bonus, score,
    drain_ms: m.drain_ms ? m.drain_ms.values.max : null,
  };
  return { stdout: JSON.stringify(out, null, 2) + '\n', [__ENV.SUMMARY_FILE || '/dev/null']: JSON.stringify(out) };
}
