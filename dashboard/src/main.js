// Entry point: sign-in, the shell (navigation, sign-out, 429/503 pause notice) and the
// three views. Everything shown comes from the public API with the key in sessionStorage.
import { adminView } from './admin.js';
import { ApiError, explain, get, on, send, session } from './api.js';
import { h, replace } from './dom.js';
import { reportsView } from './reports.js';
import * as state from './state.js';
import { websitesView } from './websites.js';

const app = document.getElementById('app');
let current = null; // the mounted view ({onState, dispose})
let sites = null;
const banner = h('p', { class: 'banner', role: 'status', hidden: true });
let bannerTimer = null;

on('pause', (seconds, status) => {
  banner.hidden = false;
  banner.textContent = status === 503
    ? `TinyTrail is unavailable for a moment (503): asking again in ${seconds} s.`
    : `Rate limit reached: waiting ${seconds} s before asking the API again.`;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { banner.hidden = true; }, seconds * 1000 + 500);
});
on('unauthorized', () => signIn('Your API key is no longer accepted (401). Sign in again.'));

function signIn(message = '') {
  current?.dispose?.();
  current = null;
  sites = null;
  session.signOut();
  const input = h('input', { id: 'key', name: 'key', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'tt_…' });
  const msg = h('p', { class: 'field-error', role: 'alert' }, message);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'signin panel', 'aria-labelledby': 'signin-h' },
    h('h1', { id: 'signin-h' }, 'TinyTrail'),
    h('p', {}, 'Sign in with your API key. It is kept in this tab only (sessionStorage) and sent as X-API-KEY.'),
    h('label', { for: 'key' }, 'API key'), input, msg, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    msg.textContent = '';
    button.disabled = true;
    try {
      const found = (await (await send('GET', '/api/v1/websites', { key, retry: false })).json()).data;
      let role = 'admin';
      try {
        await send('GET', '/api/v1/accounts', { key, retry: false });
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 403) throw err;
        role = 'user';
      }
      session.signIn(key, role);
      sites = found;
      boot();
    } catch (err) {
      msg.textContent = explain(err);
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  replace(app, h('main', { id: 'main', class: 'center' }, form));
  input.focus();
}

function nav(s) {
  const link = (view, label) => h('a', {
    href: `?view=${view}`, 'aria-current': s.view === view ? 'page' : false,
    onclick: (e) => { e.preventDefault(); state.write({ view }, { push: true }); },
  }, label);
  return h('header', { class: 'top' },
    h('a', { class: 'brand', href: './', onclick: (e) => { e.preventDefault(); state.write({ view: 'reports' }, { push: true }); } }, 'TinyTrail'),
    h('nav', { 'aria-label': 'Main' }, link('reports', 'Reports'), link('websites', 'Websites'),
      session.role === 'admin' ? link('admin', 'Admin') : null),
    h('button', { type: 'button', class: 'signout', onclick: () => signIn('Signed out.') }, 'Sign out'));
}

async function loadSites() {
  sites = await get('/api/v1/websites');
  return sites;
}

async function render(s) {
  if (s.view === 'admin' && session.role !== 'admin') {
    state.write({ view: state.DEFAULTS.view }); // a user key: no admin view, not in the URL either
    return;
  }
  current?.dispose?.();
  current = null;
  const main = h('main', { id: 'main', tabindex: '-1' });
  replace(app, nav(s), banner, main);
  // A new view: keyboard focus moves to its content (the next Tab reaches its first
  // control; Shift+Tab the navigation), as after a page load.
  main.focus({ preventScroll: true });
  const showWebsites = (notice) => {
    main.replaceChildren();
    const view = websitesView(main, sites, async () => { await loadSites(); view.update(sites); });
    if (notice) main.prepend(h('p', { class: 'notice' }, notice));
  };
  try {
    if (s.view === 'admin') {
      await adminView(main);
    } else if (s.view === 'websites') {
      if (!sites) await loadSites();
      showWebsites();
    } else {
      const ready = sites ? Promise.resolve(sites) : loadSites();
      current = reportsView(main, ready, () => {
        current?.dispose();
        current = null;
        showWebsites('Add a website to see its reports.');
      });
    }
  } catch (err) {
    main.prepend(h('p', { class: 'field-error view-error', role: 'alert' }, explain(err)));
  }
}

let shownView = null;
state.subscribe((s, patch) => {
  if (!session.key) return;
  if (s.view !== shownView || (patch && 'view' in patch)) {
    shownView = s.view;
    render(s);
  } else {
    current?.onState?.(s, patch);
  }
});

function boot() {
  const s = state.read();
  shownView = s.view;
  render(s);
}

if (session.key) boot();
else signIn();
