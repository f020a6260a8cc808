// Calls to the admin API with the session cookie. State-changing calls carry the
// session's CSRF token, which this page got from /ui/session and keeps only in memory.

let csrf = null;
let onSignedOut = () => {};

/** Remembers the CSRF token of the current session (null: signed out). */
export function setSession(token) { csrf = token; }

/** What to do when a call finds the session gone. */
export function whenSignedOut(handler) { onSignedOut = handler; }

/** `{status, ok, data}` of one call; `data` is the parsed JSON body, if any. */
export async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['x-csrf-token'] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    return { status: 0, ok: false, data: { error: 'network', message: 'sluice did not answer' } };
  }
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401 && path.startsWith('/admin/')) onSignedOut();
  return { status: response.status, ok: response.ok, data };
}

/** The message of a failed call, for the page. */
export function failure(r) {
  const d = r.data || {};
  return `${r.status || 'no answer'}: ${d.message || d.error || 'request failed'}`;
}
