// The dashboard shell: sign-in, navigation between the pages (#keys, #upstreams,
// #traffic, #usage), and each page's start and stop (pages that poll stop when left).

import { call, failure, setSession, whenSignedOut } from './api.js';
import * as keys from './keys.js';
import * as upstreams from './upstreams.js';
import * as traffic from './traffic.js';
import * as usage from './usage.js';

const pages = { keys, upstreams, traffic, usage };
const $ = (id) => document.getElementById(id);
let stopPage = () => {};

function showSignIn(message = '') {
  stopPage();
  stopPage = () => {};
  setSession(null);
  $('nav').hidden = true;
  $('page').hidden = true;
  $('page').replaceChildren();
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  $('token').focus();
}

function showPage() {
  const name = (location.hash || '#keys').slice(1);
  const page = pages[name] ? name : 'keys';
  stopPage();
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.page === page);
  }
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  const root = $('page');
  root.hidden = false;
  root.replaceChildren();
  root.dataset.page = page;
  stopPage = pages[page].mount(root) || (() => {});
}

async function signIn(event) {
  event.preventDefault();
  const input = $('token');
  const token = input.value;
  // The token leaves the page with this one request and is not kept anywhere.
  input.value = '';
  const r = await call('POST', '/ui/session', { token });
  if (r.ok) {
    setSession(r.data.csrf);
    showPage();
  } else {
    showSignIn(r.status === 401 ? 'That is not the admin token.' : failure(r));
  }
}

async function signOut() {
  await call('DELETE', '/ui/session');
  showSignIn('Signed out.');
}

async function start() {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', () => { if (!$('nav').hidden) showPage(); });
  whenSignedOut(() => showSignIn('The session has ended; sign in again.'));
  const r = await call('GET', '/ui/session');
  if (r.ok) {
    setSession(r.data.csrf);
    showPage();
  } else {
    showSignIn(r.status === 403 ? failure(r) : '');
  }
}

start();
