// State in the URL: view, website, period and filters live in the query string, so a
// view can be bookmarked or shared with someone who has a key. Defaults are left out.

export const DEFAULTS = {
  view: 'reports', site: '', period: '7d', from: '', to: '', compare: '', bots: '',
  group: '', country: '', metric: 'pageviews', path: '', src: 'channel', dev: 'types', event: '',
  steps: [],
};

export function read() {
  const q = new URLSearchParams(location.search);
  const s = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) {
    if (k === 'steps') s.steps = q.getAll('step');
    else if (q.has(k)) s[k] = q.get(k);
  }
  return s;
}

const subscribers = [];
export function subscribe(fn) { subscribers.push(fn); }

export function write(patch, { push = false } = {}) {
  const s = { ...read(), ...patch };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) {
    if (k === 'steps') v.forEach((x) => q.append('step', x));
    else if (v !== '' && v !== DEFAULTS[k]) q.set(k, v);
  }
  const url = `${location.pathname}${q.toString() ? `?${q}` : ''}`;
  if (url !== `${location.pathname}${location.search}`) {
    history[push ? 'pushState' : 'replaceState'](null, '', url);
  }
  for (const fn of subscribers) fn(s, patch);
  return s;
}

window.addEventListener('popstate', () => { for (const fn of subscribers) fn(read(), null); });
