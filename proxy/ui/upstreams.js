// The Upstreams page: every group and peer with its health, breaker state and error
// rate over the last minute, refreshed every two seconds.

import { call, failure } from './api.js';
import { el, fill, table } from './dom.js';

const REFRESH_MS = 2000;

function health(healthy) {
  return el('span', { class: `badge ${healthy ? 'good' : 'bad'}` }, healthy ? 'healthy' : 'unhealthy');
}

function breaker(state) {
  const kind = { closed: 'good', open: 'bad', half_open: 'warn' }[state] || 'warn';
  return el('span', { class: `badge ${kind}` }, state);
}

export function mount(root) {
  const body = el('div', { id: 'upstream-list' });
  const updated = el('p', { class: 'muted' });
  fill(root, el('h2', {}, 'Upstreams'), updated, body);
  async function refresh() {
    const r = await call('GET', '/admin/upstreams');
    if (!r.ok) { fill(body, el('p', { class: 'error' }, failure(r))); return; }
    const groups = Object.entries(r.data.upstreams);
    fill(body, groups.map(([name, g]) => el('div', { class: 'group', 'data-group': name },
      el('h3', {}, name),
      table(['Peer', 'Health', 'Breaker', { text: 'Attempts (1 min)', class: 'num' }, { text: 'Errors (1 min)', class: 'num' }, { text: 'Error rate', class: 'num' }],
        g.peers.map((p) => el('tr', { 'data-peer': p.peer },
          el('td', {}, el('code', {}, p.peer)),
          el('td', {}, health(p.healthy)),
          el('td', {}, breaker(p.breaker)),
          el('td', { class: 'num' }, p.recent.attempts),
          el('td', { class: 'num' }, p.recent.failures),
          el('td', { class: 'num' }, p.recent.error_rate === null ? '–' : `${(p.recent.error_rate * 100).toFixed(1)} %`)))))));
    updated.textContent = `generation ${r.data.generation}, updated ${new Date().toLocaleTimeString()}`;
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
