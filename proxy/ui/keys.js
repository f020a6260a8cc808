// The Keys page: list and search, create (the secret shown once), rotate, disable or
// enable, revoke (after a confirmation), and change a key's tier or its own limits.

import { call, failure } from './api.js';
import { el, fill, table } from './dom.js';

let tiers = {};

function limitsText(k) {
  if (typeof k.rate_per_s === 'number') return `own: ${k.rate_per_s}/s, burst ${k.burst}`;
  const t = tiers[k.tier];
  return t ? `tier: ${t.rate_per_s}/s, burst ${t.burst}` : 'tier';
}

function badge(status) {
  const kind = { active: 'good', disabled: 'warn', revoked: 'bad' }[status] || 'warn';
  return el('span', { class: `badge ${kind}` }, status);
}

function tierSelect(selected) {
  return el('select', { name: 'tier' },
    Object.keys(tiers).map((t) => el('option', { value: t, selected: t === selected }, t)));
}

/** `rate_per_s` + `burst` from a form: both given, or both empty (null: the tier's). */
function ownLimits(form) {
  const rate = form.elements.rate_per_s.value.trim();
  const burst = form.elements.burst.value.trim();
  if (rate === '' && burst === '') return { rate_per_s: null, burst: null };
  return { rate_per_s: Number(rate), burst: Number(burst) };
}

export function mount(root) {
  const message = el('p', { class: 'error', role: 'alert', id: 'keys-message' });
  const secretBox = el('div', { id: 'new-secret' });
  const search = el('input', { type: 'search', id: 'key-search', placeholder: 'Search name, id or tier' });
  const list = el('div', { id: 'key-list' });
  let all = [];

  const createForm = el('form', { class: 'inline', id: 'create-key' },
    el('label', {}, 'Name', el('input', { name: 'name', required: true, maxlength: 200 })),
    el('label', {}, 'Tier', el('select', { name: 'tier' })),
    el('label', {}, 'Own rate/s', el('input', { name: 'rate_per_s', type: 'number', min: '0', step: 'any', placeholder: 'tier' })),
    el('label', {}, 'Own burst', el('input', { name: 'burst', type: 'number', min: '1', step: '1', placeholder: 'tier' })),
    el('button', { type: 'submit', class: 'primary' }, 'Create key'));

  function showSecret(record, verb) {
    const code = el('code', { id: 'secret-value' }, record.key);
    const copy = el('button', {
      type: 'button',
      onclick: async () => {
        try { await navigator.clipboard.writeText(record.key); copy.textContent = 'Copied'; } catch (e) { copy.textContent = 'Select and copy it'; }
      },
    }, 'Copy');
    fill(secretBox, el('div', { class: 'secret' },
      el('p', {}, `Key ${verb} for “`, record.name, '”. This secret is shown once; store it now.'),
      code, ' ', copy,
      el('button', { type: 'button', onclick: () => fill(secretBox) }, 'Done')));
  }

  async function act(r, after) {
    if (r.ok) { message.textContent = ''; if (after) after(r.data); await load(); } else { message.textContent = failure(r); }
  }

  function editor(k, row) {
    const form = el('form', { class: 'inline', 'data-edit': k.id },
      el('label', {}, 'Tier', tierSelect(k.tier)),
      el('label', {}, 'Own rate/s', el('input', { name: 'rate_per_s', type: 'number', step: 'any', value: k.rate_per_s ?? '', placeholder: 'tier' })),
      el('label', {}, 'Own burst', el('input', { name: 'burst', type: 'number', step: '1', value: k.burst ?? '', placeholder: 'tier' })),
      el('button', { type: 'submit', class: 'primary' }, 'Save'),
      el('button', { type: 'button', onclick: () => render() }, 'Cancel'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { tier: form.elements.tier.value, ...ownLimits(form) };
      await act(await call('PATCH', `/admin/keys/${encodeURIComponent(k.id)}`, body));
    });
    row.after(el('tr', { class: 'editor' }, el('td', { colspan: 6 }, form)));
  }

  function row(k) {
    const id = encodeURIComponent(k.id);
    const live = k.status !== 'revoked';
    const tr = el('tr', { 'data-key': k.id });
    const actions = live ? [
      el('button', { type: 'button', onclick: () => editor(k, tr) }, 'Limits'),
      el('button', { type: 'button', onclick: async () => act(await call('POST', `/admin/keys/${id}/rotate`), (d) => showSecret(d, 'rotated')) }, 'Rotate'),
      el('button', { type: 'button', onclick: async () => act(await call('PATCH', `/admin/keys/${id}`, { disabled: k.status === 'active' })) }, k.status === 'active' ? 'Disable' : 'Enable'),
      el('button', {
        type: 'button', class: 'danger',
        onclick: async () => {
          if (!window.confirm(`Revoke “${k.name}”? Requests with it are refused from now on, and this cannot be undone.`)) return;
          await act(await call('DELETE', `/admin/keys/${id}`));
        },
      }, 'Revoke'),
    ] : [];
    tr.append(
      el('td', { class: 'key-name' }, k.name),
      el('td', {}, el('code', {}, k.id)),
      el('td', {}, k.tier),
      el('td', {}, limitsText(k)),
      el('td', {}, badge(k.status)),
      el('td', {}, actions));
    return tr;
  }

  function render() {
    const q = search.value.trim().toLowerCase();
    const shown = all.filter((k) => !q || [k.name, k.id, k.tier].some((f) => String(f).toLowerCase().includes(q)));
    fill(list,
      el('p', { class: 'muted' }, `${shown.length} of ${all.length} keys`),
      table(['Name', 'Id', 'Tier', 'Limits', 'Status', ''], shown.map(row), { id: 'keys-table' }));
  }

  async function load() {
    const r = await call('GET', '/admin/keys');
    if (!r.ok) { message.textContent = failure(r); return; }
    all = r.data.keys.slice().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    render();
  }

  createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: createForm.elements.name.value, tier: createForm.elements.tier.value };
    const own = ownLimits(createForm);
    if (own.rate_per_s !== null) Object.assign(body, own);
    await act(await call('POST', '/admin/keys', body), (d) => { showSecret(d, 'created'); createForm.reset(); });
  });
  search.addEventListener('input', render);

  fill(root, el('h2', {}, 'Keys'), createForm, secretBox, message, search, list);
  (async () => {
    const t = await call('GET', '/admin/tiers');
    if (t.ok) tiers = t.data.tiers;
    fill(createForm.elements.tier, Object.keys(tiers).map((name) => el('option', { value: name }, name)));
    await load();
  })();
  return () => {};
}

