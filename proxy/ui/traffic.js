// The Traffic page: the last five minutes from sluice's own counters (/admin/stats),
// refreshed every two seconds: requests/s, p50/p99 and status classes, per route, and
// 429s per tier.

import { call, failure } from './api.js';
import { el, fill, num, table } from './dom.js';
import { lineChart } from './charts.js';

const REFRESH_MS = 2000;
const WINDOW_S = 300;
const CLASSES = ['2xx', '3xx', '4xx', '5xx'];

export function mount(root) {
  const rps = lineChart('Requests/s by route', []);
  const latency = lineChart('Latency, all routes', ['p50', 'p99'], { unit: ' ms' });
  const classes = lineChart('Responses/s by status class', CLASSES);
  const limited = lineChart('429s/s by tier', []);
  const summary = el('div', { id: 'traffic-routes' });
  const message = el('p', { class: 'error', role: 'alert' });
  fill(root, el('h2', {}, 'Traffic'),
    el('p', { class: 'muted' }, `Last ${WINDOW_S / 60} minutes of this instance, from its own counters.`),
    message, summary,
    el('div', { class: 'charts' }, rps.node, latency.node, classes.node, limited.node));

  async function refresh() {
    const r = await call('GET', `/admin/stats?window_s=${WINDOW_S}`);
    if (!r.ok) { message.textContent = failure(r); return; }
    message.textContent = '';
    const { points, totals } = r.data;
    const times = points.map((p) => p.t);
    const now = times.at(-1) ?? Math.floor(Date.now() / 1000);
    const span = [now - WINDOW_S, now];
    const routes = [...new Set(points.flatMap((p) => Object.keys(p.routes)))].sort();
    rps.update(times, routes.map((name) => points.map((p) => p.routes[name]?.rps ?? 0)), routes, span);
    latency.update(times, [points.map((p) => p.all.p50_ms), points.map((p) => p.all.p99_ms)], undefined, span);
    classes.update(times, CLASSES.map((c) => points.map((p) => p.all.status[c])), undefined, span);
    const tiers = [...new Set(points.flatMap((p) => Object.keys(p.limited_by_tier)))].sort();
    limited.update(times, tiers.map((t) => points.map((p) => p.limited_by_tier[t] ?? 0)), tiers, span);

    const seconds = Math.max(1, (times.at(-1) ?? 0) - (times[0] ?? 0) + r.data.interval_s);
    const rows = Object.entries(totals.routes || {}).sort(([a], [b]) => a.localeCompare(b)).map(([name, t]) =>
      el('tr', { 'data-route': name },
        el('td', {}, name),
        el('td', { class: 'num requests' }, t.requests),
        el('td', { class: 'num' }, num(t.requests / seconds, 1)),
        CLASSES.map((c) => el('td', { class: `num s${c}` }, t.status[c])),
        el('td', { class: 'num' }, num(t.p50_ms, 2)),
        el('td', { class: 'num' }, num(t.p99_ms, 2))));
    const limitedRows = Object.entries(totals.limited_by_tier || {}).map(([tier, n]) =>
      el('tr', { 'data-tier': tier }, el('td', {}, tier), el('td', { class: 'num limited' }, n)));
    fill(summary,
      table(['Route', { text: 'Requests', class: 'num' }, { text: 'req/s', class: 'num' },
        ...CLASSES.map((c) => ({ text: c, class: 'num' })), { text: 'p50 ms', class: 'num' }, { text: 'p99 ms', class: 'num' }],
      rows, { id: 'routes-table' }),
      el('h3', {}, '429s by tier'),
      table(['Tier', { text: '429s', class: 'num' }], limitedRows, { id: 'limited-table' }));
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => { clearInterval(timer); [rps, latency, classes, limited].forEach((c) => c.destroy()); };
}
