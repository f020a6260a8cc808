// The Usage page: per route and per key over time, from the analytics service (read
// through /admin/usage/*): requests, errors, rate-limited and latency, for a chosen range.

import { call, failure } from './api.js';
import { el, fill, num, table } from './dom.js';
import { lineChart } from './charts.js';

/** Ranges offered, in seconds, with the step that keeps a chart to a few hundred points. */
const RANGES = [
  ['Last 15 minutes', 900, 60], ['Last hour', 3600, 60], ['Last 6 hours', 21600, 300],
  ['Last 24 hours', 86400, 900], ['Last 7 days', 604800, 3600],
];

export function mount(root) {
  const range = el('select', { name: 'range', id: 'usage-range' },
    RANGES.map(([label, seconds], i) => el('option', { value: seconds, selected: i === 1 }, label)));
  const route = el('select', { name: 'route', id: 'usage-route' }, el('option', { value: '' }, 'All routes'));
  const key = el('select', { name: 'key', id: 'usage-key' }, el('option', { value: '' }, 'All keys'));
  const refresh = el('button', { type: 'button', id: 'usage-refresh' }, 'Refresh');
  const message = el('p', { class: 'error', role: 'alert', id: 'usage-message' });
  const totals = el('div', { id: 'usage-totals' });
  const counts = lineChart('Requests, errors and 429s per step', ['requests', 'errors', 'limited']);
  const latency = lineChart('Latency', ['p50', 'p95', 'p99'], { unit: ' ms' });
  const routes = el('div', { id: 'usage-routes' });
  fill(root, el('h2', {}, 'Usage'),
    el('form', { class: 'inline', id: 'usage-form' },
      el('label', {}, 'Range', range), el('label', {}, 'Route', route), el('label', {}, 'Key', key), refresh),
    message, totals, el('div', { class: 'charts' }, counts.node, latency.node), el('h3', {}, 'By route'), routes);

  async function options() {
    const k = await call('GET', '/admin/keys');
    if (k.ok) {
      fill(key, el('option', { value: '' }, 'All keys'),
        k.data.keys.map((r) => el('option', { value: r.id }, `${r.name} (${r.id})`)));
    }
  }

  async function load() {
    const [, seconds, step] = RANGES.find(([, s]) => String(s) === range.value) || RANGES[1];
    const to = Math.floor(Date.now() / 1000);
    const from = to - seconds;
    const q = new URLSearchParams({ from, to, step });
    if (route.value) q.set('route', route.value);
    if (key.value) q.set('key', key.value);
    const [series, byRoute] = await Promise.all([
      call('GET', `/admin/usage/timeseries?${q}`),
      call('GET', `/admin/usage/routes?from=${from}&to=${to}`),
    ]);
    if (!series.ok) { message.textContent = failure(series); return; }
    message.textContent = '';
    const points = series.data.points;
    const times = points.map((p) => Date.parse(p.t) / 1000);
    const span = [from, to];
    counts.update(times, ['requests', 'errors', 'limited'].map((f) => points.map((p) => p[f])), undefined, span);
    latency.update(times, ['p50', 'p95', 'p99'].map((f) => points.map((p) => p.latency_ms[f])), undefined, span);
    const sum = (f) => points.reduce((n, p) => n + p[f], 0);
    fill(totals, el('p', { id: 'usage-sum' },
      'In this range: ', el('strong', { class: 'requests' }, sum('requests')), ' requests, ',
      el('strong', { class: 'errors' }, sum('errors')), ' errors, ',
      el('strong', { class: 'limited' }, sum('limited')), ' rate-limited.'));
    if (byRoute.ok) {
      const list = byRoute.data.routes;
      const chosen = route.value;
      fill(route, el('option', { value: '' }, 'All routes'),
        list.map((r) => el('option', { value: r.route, selected: r.route === chosen }, r.route)));
      fill(routes, table(['Route', { text: 'Requests', class: 'num' }, { text: 'Errors', class: 'num' },
        { text: '429s', class: 'num' }, { text: 'p50 ms', class: 'num' }, { text: 'p99 ms', class: 'num' }],
      list.map((r) => el('tr', { 'data-route': r.route }, el('td', {}, r.route),
        el('td', { class: 'num requests' }, r.requests), el('td', { class: 'num' }, r.errors),
        el('td', { class: 'num' }, r.limited), el('td', { class: 'num' }, num(r.latency_ms.p50, 2)),
        el('td', { class: 'num' }, num(r.latency_ms.p99, 2)))), { id: 'usage-routes-table' }));
    }
  }
  for (const input of [range, route, key]) input.addEventListener('change', load);
  refresh.addEventListener('click', load);
  options().then(load);
  return () => { counts.destroy(); latency.destroy(); };
}
