// The reports view: a toolbar (website, period, compare, bots, content group) whose
// choices live in the URL, and the panels. A change reloads only the panels it
// concerns, and only those on screen (the others when they scroll into view).
import { explain } from './api.js';
import { h, replace } from './dom.js';
import { FunnelPanel, MAX_STEPS, RealtimePanel } from './live.js';
import { LocationsPanel, countryList, countryNames } from './locations.js';
import {
  DevicesPanel, EventsPanel, FlowPanel, PagesPanel, SourcesPanel, SummaryPanel, TimeseriesPanel,
} from './panels.js';
import * as state from './state.js';
import { lazy } from './widgets.js';

const PERIODS = [
  ['today', 'Today'], ['yesterday', 'Yesterday'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'],
  ['90d', 'Last 90 days'], ['12m', 'Last 12 months'], ['ytd', 'Year to date'], ['all', 'All time'],
  ['custom', 'Custom range…'],
];
const COMPARES = [['', 'No comparison'], ['previous_period', 'Previous period'], ['yoy', 'Year over year']];

// Which panels a changed state key concerns ('*' = all of them; 'period' = all but
// realtime, which takes only website_id: the last 30 minutes whatever the toolbar says).
const CONCERNS = {
  site: '*', period: 'period', from: 'period', to: 'period', bots: 'period', group: 'period',
  country: ['summary', 'pages'], compare: ['summary'], metric: ['timeseries'], path: ['timeseries'],
  src: ['sources'], event: ['events'], steps: ['funnel'],
};

function field(label, control) {
  return h('label', { class: 'field' }, h('span', {}, label), control);
}

function toolbar(s, sites) {
  const site = sites.find((w) => w.id === s.site);
  const siteSel = h('select', { name: 'site' },
    sites.map((w) => h('option', { value: w.id, selected: w.id === s.site }, w.domain)));
  siteSel.addEventListener('change', () => state.write({ site: siteSel.value, group: '', path: '' }, { push: true }));

  const period = h('select', { name: 'period' },
    PERIODS.map(([v, label]) => h('option', { value: v, selected: v === s.period }, label)));
  const from = h('input', { type: 'date', name: 'from', value: s.from, 'aria-label': 'From (UTC)' });
  const to = h('input', { type: 'date', name: 'to', value: s.to, 'aria-label': 'To (UTC)' });
  const rangeMsg = h('span', { class: 'field-error', role: 'alert' });
  const range = h('form', { class: 'range', hidden: s.period !== 'custom' }, from, h('span', {}, '–'), to,
    h('button', { type: 'submit' }, 'Apply'), rangeMsg);
  range.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!from.value || !to.value) { rangeMsg.textContent = 'Pick both dates.'; return; }
    if (from.value > to.value) { rangeMsg.textContent = 'The start must not be after the end.'; return; }
    rangeMsg.textContent = '';
    state.write({ period: 'custom', from: from.value, to: to.value }, { push: true });
  });
  period.addEventListener('change', () => {
    if (period.value === 'custom') {
      range.hidden = false;
      from.focus();
    } else {
      range.hidden = true;
      state.write({ period: period.value, from: '', to: '' }, { push: true });
    }
  });

  const compare = h('select', { name: 'compare' },
    COMPARES.map(([v, label]) => h('option', { value: v, selected: v === s.compare }, label)));
  compare.addEventListener('change', () => state.write({ compare: compare.value }, { push: true }));

  const bots = h('input', { type: 'checkbox', name: 'bots', checked: s.bots === '1' });
  bots.addEventListener('change', () => state.write({ bots: bots.checked ? '1' : '' }, { push: true }));

  const groups = site?.contentGroups || [];
  const group = h('select', { name: 'group', disabled: !groups.length },
    h('option', { value: '' }, groups.length ? 'All pages' : 'No content groups'),
    groups.map((g) => h('option', { value: g.name, selected: g.name === s.group }, g.name)));
  group.addEventListener('change', () => state.write({ group: group.value }, { push: true }));

  return h('form', { class: 'toolbar', 'aria-label': 'Report filters', onsubmit: (e) => e.preventDefault() },
    field('Website', siteSel), field('Period', period), range, field('Compare', compare),
    field('Content group', group), countryField(s),
    h('label', { class: 'check' }, bots, h('span', {}, 'Include bots')));
}

/** The country filter: an ISO code (or a name the locations report has shown, offered
 * in a list), upper-cased; empty or *Clear* for every country. */
function countryField(s) {
  const input = h('input', {
    type: 'text', name: 'country', value: s.country, list: 'country-list', placeholder: 'All',
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'country-msg',
  });
  const msg = h('span', { id: 'country-msg', class: 'field-error', role: 'alert' });
  const clear = h('button', {
    type: 'button', class: 'clear-country', hidden: !s.country, 'aria-label': 'Clear the country filter',
    onclick: () => state.write({ country: '' }, { push: true }),
  }, '×');
  input.addEventListener('change', () => {
    const v = input.value.trim();
    const byName = [...countryNames].find(([, name]) => name && name.toLowerCase() === v.toLowerCase());
    const code = /^[A-Za-z]{2}$/.test(v) ? v.toUpperCase() : byName ? byName[0] : null;
    if (v && !code) {
      msg.textContent = 'A two-letter country code, such as DE.';
      input.setAttribute('aria-invalid', 'true');
      return;
    }
    msg.textContent = '';
    input.removeAttribute('aria-invalid');
    state.write({ country: code || '' }, { push: true });
  });
  const wrap = h('div', { class: 'field country' },
    h('label', { for: 'country-input' }, 'Country'),
    h('span', { class: 'with-clear' }, input, clear), msg);
  input.id = 'country-input';
  // Kept in step with the URL when a locations row or Back changes the filter.
  wrap.sync = (next) => {
    if (document.activeElement !== input) input.value = next.country;
    clear.hidden = !next.country;
  };
  return wrap;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A shared or hand-edited link made sane before anything is asked: an unknown period
 * is dropped (the default shown), a custom range needs two dates in order, a funnel
 * has at most 10 steps. The URL is rewritten (replaceState); returns what was changed,
 * in words, for a visible note. */
function normalise() {
  const s = state.read();
  const patch = {};
  const notes = [];
  const fallback = PERIODS.find(([v]) => v === state.DEFAULTS.period)[1];
  if (!PERIODS.some(([v]) => v === s.period)) {
    Object.assign(patch, { period: state.DEFAULTS.period, from: '', to: '' });
    notes.push(['This link’s period “', h('bdi', {}, s.period), `” is unknown: showing ${fallback}.`]);
  } else if (s.period === 'custom') {
    if (!DATE.test(s.from) || !DATE.test(s.to) || s.from > s.to) {
      Object.assign(patch, { period: state.DEFAULTS.period, from: '', to: '' });
      notes.push(`This link’s custom range needs a start and an end date: showing ${fallback}.`);
    }
  } else if (s.from || s.to) {
    Object.assign(patch, { from: '', to: '' });
  }
  if (s.steps.length > MAX_STEPS) {
    patch.steps = s.steps.slice(0, MAX_STEPS);
    notes.push(`This link has ${s.steps.length} funnel steps: a funnel has at most ${MAX_STEPS}, the first ${MAX_STEPS} are shown.`);
  }
  if (Object.keys(patch).length) state.write(patch);
  return notes;
}

/**
 * `sitesReady` resolves to the websites list. When the URL names a website (a bookmark,
 * a reload) the panels start at once, beside the list's request, not after it.
 * `onNoSites()` is called when the key has no website at all.
 */
export function reportsView(main, sitesReady, onNoSites) {
  const notes = normalise(); // before the panels read the state
  let sites = [];
  const bar = h('div', { class: 'toolbar-wrap' }, h('p', { class: 'loading' }, 'Loading websites…'));
  const summary = new SummaryPanel();
  const realtime = new RealtimePanel();
  const panels = [summary, new TimeseriesPanel(), realtime, new PagesPanel(), new LocationsPanel(),
    new SourcesPanel(), new DevicesPanel(), new EventsPanel(), new FlowPanel(), new FunnelPanel()];
  panels.forEach((p) => p.noteFor(state.read()));
  // A country's name, once the locations report has given it, goes into every note.
  panels.find((p) => p.id === 'locations').onNames = () => panels.forEach((p) => p.noteFor(state.read()));
  const linkNote = h('p', { class: 'notice link-note', role: 'status' });
  main.append(h('h1', { class: 'sr-only' }, 'Reports'), linkNote, bar, countryList,
    h('div', { class: 'grid' }, panels.map((p) => p.el)));
  let io = null;
  const start = () => {
    io = lazy(panels);
    realtime.show();
  };
  // A link's content group is checked against the website first (an unknown one would
  // show that group's empty figures while the toolbar says "All pages").
  if (state.read().site && !state.read().group) start();
  sitesReady.then((list) => {
    sites = list;
    if (!list.length) {
      onNoSites();
      return;
    }
    let s = state.read();
    if (!list.some((w) => w.id === s.site)) {
      if (s.site) notes.push('This link’s website is not one of yours: showing your first website.');
      s = state.write({ site: list[0].id });
    }
    const site = list.find((w) => w.id === s.site);
    if (s.group && !(site.contentGroups || []).some((g) => g.name === s.group)) {
      notes.push([`${site.domain} has no content group “`, h('bdi', {}, s.group), '”: showing all pages.']);
      s = state.write({ group: '' });
    }
    if (notes.length) replace(linkNote, notes.map((n) => [n, ' ']));
    bar.replaceChildren(toolbar(s, sites));
    if (!io) start();
  }).catch((err) => {
    bar.replaceChildren(h('p', { class: 'field-error view-error', role: 'alert' }, explain(err)));
  });

  const byId = Object.fromEntries(panels.map((p) => [p.id, p]));
  let prev = state.read();
  // `patch` is null after Back/Forward: then the toolbar is redrawn from the URL too.
  const onState = (next, patch) => {
    if (next.view !== 'reports') return;
    const changed = Object.keys(CONCERNS).filter((k) => String(next[k]) !== String(prev[k]));
    const devChanged = next.dev !== prev.dev;
    const countryChanged = next.country !== prev.country;
    prev = next;
    if (sites.length && (patch === null || (patch && 'site' in patch))) {
      bar.replaceChildren(toolbar(next, sites));
    } else {
      bar.querySelector('.field.country')?.sync(next);
    }
    panels.forEach((p) => p.noteFor(next));
    const ids = new Set();
    for (const k of changed) {
      const c = CONCERNS[k];
      const all = panels.map((p) => p.id);
      (c === '*' ? all : c === 'period' ? all.filter((id) => id !== 'realtime') : c)
        .forEach((id) => ids.add(id));
    }
    for (const p of panels) {
      if (ids.has(p.id)) p.invalidate();
    }
    if (countryChanged && !ids.has('locations')) byId.locations.draw(); // the highlighted row
    if (devChanged && !ids.has('devices')) {
      const d = byId.devices;
      d.page = 1;
      if (d.data) d.draw();
      else d.invalidate();
    }
  };
  return {
    onState,
    dispose: () => {
      io?.disconnect();
      realtime.stop();
      panels.forEach((p) => { clearTimeout(p.pending); p.controller?.abort(); });
    },
  };
}
