// k6: the Rinha de Backend 2025 contest's own test (rinha-test/rinha.js in
// zanfranceschi/rinha-de-backend-2025), reproduced rule for rule so its figures can be
// compared with the contest's published results:
// - `payments`: ramping VUs 1 -> MAX_REQUESTS (550) over 60 s, no graceful ramp-down;
//   each iteration POSTs one payment (fresh UUID, 19.90), then sleeps 1 s.
// - `payments_consistency`: one VU for 60 s, from the start: compares the backend's
//   /payments-summary with both processors' admin summaries over [now − 15 s, now − 1.5 s]
//   (the three asked at once), then sleeps 10 s. Inconsistencies = |Σ count differences|.
// - `stage_00`..`stage_05` at 1, 10, 20, 30, 40, 50 s set the processors' delay/failure.
// - teardown: the summaries over the last 70 s, read at once (no wait for a queue to
//   drain); lag = successful POSTs − the backend's counted payments.
// - p99 over every HTTP request of the test with an expected response (the contest reads
//   `http_req_duration{expected_response:true}`), so summary and admin calls count too.
// - score = net × (1 + bonus − fine): net = the backend's totals − fees (each processor's
//   feePerTransaction × the backend's amount for it), bonus = max((11 − p99) × 0.02, 0),
//   fine 35% on any inconsistency; a negative lag disqualifies.
// Every HTTP client has the contest's 1,500 ms timeout. The contest imports big.js and
// jslib over the internet; here amounts are summed in cents instead (exact) and the UUIDs
// come from crypto.getRandomValues.
// bench/k6/payments.sh runs it against `make up` and writes bench/results/30-payments.md.
import http from 'k6/http';
import { sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';

const BACKEND = __ENV.BASE_URL || 'http://127.0.0.1:9999';
const PROCESSORS = {
  default: __ENV.DEFAULT_URL || 'http://127.0.0.1:8001',
  fallback: __ENV.FALLBACK_URL || 'http://127.0.0.1:8002',
};
const TOKEN = __ENV.TOKEN || '123';
const INITIAL_TOKEN = '123';
const MAX_REQUESTS = Number(__ENV.MAX_REQUESTS || 550);
const TIMEOUT = '1500ms';
const JSON_TYPE = { 'Content-Type': 'application/json' };

function stage(startTime, defaultDelay, defaultFailure, fallbackDelay, fallbackFailure) {
  return {
    exec: 'defineStage', startTime, executor: 'constant-vus', vus: 1, duration: '1s',
    tags: {
      defaultDelay: String(defaultDelay), defaultFailure: String(defaultFailure),
      fallbackDelay: String(fallbackDelay), fallbackFailure: String(fallbackFailure),
    },
  };
}

// `contest`: the contest's published schedule. `slow`: the same, except that from 40 s the
// default answers after 9 s — longer than the payments service's 8 s call timeout — while
// the fallback stays fast (not part of the contest; the issue's "delays longer than your
// timeouts" case).
const SCHEDULES = {
  contest: {
    stage_00: stage('1s', 0, false, 0, false),
    stage_01: stage('10s', 100, false, 0, false),
    stage_02: stage('20s', 100, true, 0, false),
    stage_03: stage('30s', 2000, true, 1000, true),
    stage_04: stage('40s', 20, false, 20, false),
    stage_05: stage('50s', 0, false, 5000, false),
  },
  slow: {
    stage_00: stage('1s', 0, false, 0, false),
    stage_01: stage('10s', 100, false, 0, false),
    stage_02: stage('20s', 100, true, 0, false),
    stage_03: stage('30s', 2000, true, 1000, true),
    stage_04: stage('40s', 9000, false, 20, false),
  },
};
const SCHEDULE = __ENV.SCHEDULE || 'contest';
if (!SCHEDULES[SCHEDULE]) throw new Error(`SCHEDULE must be one of ${Object.keys(SCHEDULES).join(', ')}`);

export const options = {
  summaryTrendStats: ['p(50)', 'p(99)', 'max', 'count'],
  scenarios: {
    payments: {
      exec: 'payments', executor: 'ramping-vus', startVUs: 1, gracefulRampDown: '0s',
      stages: [{ target: MAX_REQUESTS, duration: '60s' }],
    },
    payments_consistency: {
      exec: 'checkPaymentsConsistency', executor: 'constant-vus', duration: '60s', vus: 1,
    },
    ...SCHEDULES[SCHEDULE],
  },
};

// Every request of the test with an expected (2xx/3xx) answer, as the contest's p99 reads
// them; and the POSTs alone, to see what the payments path itself costs.
const contestDuration = new Trend('contest_req_ms', true);
const postDuration = new Trend('payment_post_ms', true);
const success = new Counter('transactions_success');
const failure = new Counter('transactions_failure');
const inconsistency = new Counter('payments_inconsistency');
const inconsistentChecks = new Counter('inconsistent_checks');
const checks = new Counter('consistency_checks');
// Written once, in teardown, in cents (exact sums) and counts.
const backendCents = { default: new Counter('default_total_cents'), fallback: new Counter('fallback_total_cents') };
const backendRequests = { default: new Counter('default_total_requests'), fallback: new Counter('fallback_total_requests') };
const feeCents = { default: new Counter('default_fee_cents'), fallback: new Counter('fallback_fee_cents') };
const processorRequests = { default: new Counter('processor_default_requests'), fallback: new Counter('processor_fallback_requests') };

function counted(response) {
  if (response.status >= 200 && response.status < 400) contestDuration.add(response.timings.duration);
  return response;
}

async function request(method, url, body, headers, name) {
  const params = { headers: Object.assign({}, JSON_TYPE, headers || {}), timeout: TIMEOUT, tags: { name } };
  return counted(await http.asyncRequest(method, url, body, params));
}

function processor(which, method, path, body, token) {
  return request(method, `${PROCESSORS[which]}${path}`, body, { 'X-Rinha-Token': token || TOKEN }, `processor ${path}`);
}

function uuid() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const ZERO_PROCESSOR = { totalAmount: 0, totalRequests: 0, feePerTransaction: 0, totalFee: 0 };
const ZERO_BACKEND = { default: { totalAmount: 0, totalRequests: 0 }, fallback: { totalAmount: 0, totalRequests: 0 } };

async function processorSummary(which, from, to) {
  const r = await processor(which, 'GET', `/admin/payments-summary?from=${from}&to=${to}`, null);
  if (r.status === 200) return r.json();
  console.error(`${which} /admin/payments-summary answered ${r.status}`);
  return ZERO_PROCESSOR;
}

async function backendSummary(from, to) {
  const r = await request('GET', `${BACKEND}/payments-summary?from=${from}&to=${to}`, null, {}, 'payments-summary');
  if (r.status === 200) return r.json();
  console.error(`backend /payments-summary answered ${r.status}`);
  return ZERO_BACKEND;
}

async function configure(which, what, value) {
  const r = await processor(which, 'PUT', `/admin/configurations/${what}`, JSON.stringify({ [what]: value }));
  if (r.status !== 200) exec.test.abort(`setting ${what} of ${which} answered ${r.status}`);
}

export async function setup() {
  for (const which of Object.keys(PROCESSORS)) {
    const r = await processor(which, 'PUT', '/admin/configurations/token', JSON.stringify({ token: TOKEN }), INITIAL_TOKEN);
    if (r.status !== 204) exec.test.abort(`setting the token of ${which} answered ${r.status}`);
  }
  for (const which of Object.keys(PROCESSORS)) {
    const r = await processor(which, 'POST', '/admin/purge-payments', null);
    if (r.status !== 200) exec.test.abort(`purging ${which} answered ${r.status}`);
  }
  await request('POST', `${BACKEND}/purge-payments`, null, {}, 'purge-payments');
}

export async function payments() {
  const body = JSON.stringify({ correlationId: uuid(), amount: 19.9 });
  const r = await request('POST', `${BACKEND}/payments`, body, {}, 'payments');
  if ([200, 201, 202, 204].includes(r.status)) {
    success.add(1);
    postDuration.add(r.timings.duration);
  } else {
    failure.add(1);
  }
  sleep(1);
}

export async function checkPaymentsConsistency() {
  const now = Date.now();
  const from = new Date(now - 15000).toISOString();
  const to = new Date(now - 1500).toISOString();
  const [d, f, ours] = await Promise.all([
    processorSummary('default', from, to),
    processorSummary('fallback', from, to),
    backendSummary(from, to),
  ]);
  checks.add(1);
  const n = Math.abs(
    (ours.default.totalRequests - d.totalRequests) + (ours.fallback.totalRequests - f.totalRequests));
  inconsistency.add(n);
  if (n > 0) {
    inconsistentChecks.add(1);
    console.warn(`${n} inconsistencies in [${from}, ${to}]: backend default ${ours.default.totalRequests} ` +
      `fallback ${ours.fallback.totalRequests}; processors ${d.totalRequests} / ${f.totalRequests}`);
  }
  sleep(10);
}

export async function defineStage() {
  const tags = exec.vu.metrics.tags;
  await configure('default', 'delay', parseInt(tags.defaultDelay, 10));
  await configure('fallback', 'delay', parseInt(tags.fallbackDelay, 10));
  await configure('default', 'failure', tags.defaultFailure === 'true');
  await configure('fallback', 'failure', tags.fallbackFailure === 'true');
  sleep(1);
}

const cents = (amount) => Math.round(Number(amount) * 100);

export async function teardown() {
  const to = new Date();
  const from = new Date(to.getTime() - 70 * 1000);
  const [d, f, ours] = await Promise.all([
    processorSummary('default', from.toISOString(), to.toISOString()),
    processorSummary('fallback', from.toISOString(), to.toISOString()),
    backendSummary(from.toISOString(), to.toISOString()),
  ]);
  const theirs = { default: d, fallback: f };
  for (const which of Object.keys(PROCESSORS)) {
    const amount = cents(ours[which].totalAmount);
    backendCents[which].add(amount);
    backendRequests[which].add(ours[which].totalRequests);
    feeCents[which].add(Math.round(amount * Number(theirs[which].feePerTransaction)));
    processorRequests[which].add(theirs[which].totalRequests);
  }
}

export function handleSummary(data) {
  const m = data.metrics;
  const count = (name) => (m[name] ? m[name].values.count : 0);
  const trend = (name, stat) => (m[name] ? m[name].values[stat] : null);
  const p99 = Math.round(trend('contest_req_ms', 'p(99)') * 100) / 100;
  const bonus = Math.max(Math.round((11 - p99) * 0.02 * 100) / 100, 0);
  const fine = count('payments_inconsistency') > 0 ? 0.35 : 0;
  const gross = (count('default_total_cents') + count('fallback_total_cents')) / 100;
  const fees = (count('default_fee_cents') + count('fallback_fee_cents')) / 100;
  const net = gross - fees;
  const counted = count('default_total_requests') + count('fallback_total_requests');
  const lag = count('transactions_success') - counted;
  const out = {
    max_requests: MAX_REQUESTS,
    p99_ms: p99,
    p50_ms: trend('contest_req_ms', 'p(50)'),
    requests: trend('contest_req_ms', 'count'),
    post_p99_ms: trend('payment_post_ms', 'p(99)'),
    post_p50_ms: trend('payment_post_ms', 'p(50)'),
    post_max_ms: trend('payment_post_ms', 'max'),
    success: count('transactions_success'),
    failure: count('transactions_failure'),
    backend_default: count('default_total_requests'),
    backend_fallback: count('fallback_total_requests'),
    processor_default: count('processor_default_requests'),
    processor_fallback: count('processor_fallback_requests'),
    lag,
    slush_fund: lag < 0,
    consistency_checks: count('consistency_checks'),
    inconsistent_checks: count('inconsistent_checks'),
    inconsistencies: count('payments_inconsistency'),
    gross, fees, bonus, fine,
    score: lag < 0 ? 0 : net + net * bonus - net * fine,
  };
  return { stdout: JSON.stringify(out, null, 2) + '\n', [__ENV.SUMMARY_FILE || '/dev/null']: JSON.stringify(out) };
}
