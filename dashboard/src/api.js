// The public API, and nothing else: every call sends X-API-KEY from sessionStorage.
// A 429, or a 503 with Retry-After (the API cannot reach its database for the moment,
// or Postgres cancelled a query that ran past the API's statement_timeout),
// pauses every request until Retry-After has passed (one shared pause, so a page of
// panels backs off together instead of hammering), then a GET is retried. Other
// methods are not retried: a 503 does not say whether a write was done.

const KEY = 'tinytrail.apiKey';
const ROLE = 'tinytrail.role';
const MAX_RETRIES = 3;

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  get role() { return sessionStorage.getItem(ROLE) || 'user'; },
  signIn(key, role) { sessionStorage.setItem(KEY, key); sessionStorage.setItem(ROLE, role); },
  signOut() { sessionStorage.removeItem(KEY); sessionStorage.removeItem(ROLE); },
};

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// Listeners hear about pauses (429, 503) and lost keys (401) so the page can say so.
const listeners = { pause: [], unauthorized: [] };
export function on(event, fn) { listeners[event].push(fn); }
function emit(event, ...args) { for (const fn of listeners[event]) fn(...args); }

let pausedUntil = 0;

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

export function queryString(query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function errorOf(resp) {
  let code = 'HTTP_' + resp.status;
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch { /* not JSON */ }
  const retryAfter = Number.parseInt(resp.headers.get('Retry-After') || '0', 10) || 0;
  return new ApiError(resp.status, code, message, retryAfter);
}

/** An answer that says "come back after Retry-After": 429, or 503 with Retry-After. */
export function comeBackLater(err) {
  return err instanceof ApiError && (err.status === 429 || (err.status === 503 && err.retryAfter > 0));
}

/** fetch with the key and the shared pause; returns the Response (2xx) or throws. */
export async function send(method, path, { query, body, signal, key, retry = true } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    // Until the pause is over, even when another answer lengthened it meanwhile.
    for (let wait = pausedUntil - Date.now(); wait > 0; wait = pausedUntil - Date.now()) {
      await sleep(wait, signal);
    }
    const headers = { 'X-API-KEY': key ?? session.key ?? '' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(path + queryString(query), {
      method, headers, signal, credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (resp.ok) return resp;
    const err = await errorOf(resp);
    if (comeBackLater(err)) {
      const seconds = Math.max(1, err.retryAfter);
      pausedUntil = Math.max(pausedUntil, Date.now() + seconds * 1000);
      emit('pause', seconds, err.status);
      if (retry && method === 'GET' && attempt < MAX_RETRIES) continue;
    }
    if (resp.status === 401 && key === undefined) emit('unauthorized', err);
    throw err;
  }
}

export async function api(method, path, opts = {}) {
  const resp = await send(method, path, opts);
  const body = await resp.json();
  return body.data;
}

export const get = (path, query, signal) => api('GET', path, { query, signal });

/** Download the API's own CSV for `path`+`query` (format=csv) as a file. */
export async function downloadCsv(path, query) {
  const resp = await send('GET', path, { query: { ...query, format: 'csv' } });
  const blob = await resp.blob();
  const cd = resp.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  const name = m ? m[1] : 'tinytrail.csv';
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}

/** A message a person can act on, for an ApiError or a network failure. */
export function explain(err) {
  if (!(err instanceof ApiError)) return `Could not reach TinyTrail (${err.message || err}).`;
  if (err.status === 401) return 'This API key was not accepted (401). Check it and sign in again.';
  if (err.status === 403) return 'This key may not do that (403): it needs the admin role.';
  if (err.status === 429) {
    // The API says which limit it was: the key's requests per window, or (at sign-in)
    // the failed sign-ins from this address.
    return `Too many requests (429): ${err.message}. Try again in ${err.retryAfter || 'a few'} s.`;
  }
  if (comeBackLater(err)) {
    // 503 with Retry-After: Postgres restarting or away, or a query cancelled; passes.
    return `TinyTrail is unavailable for a moment (503): ${err.message}. Try again in ${err.retryAfter} s.`;
  }
  return `${err.message} (${err.status})`;
}
