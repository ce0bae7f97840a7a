// The report panels. Each one asks one endpoint of the public API for the query the
// toolbar describes and draws exactly what the API answered.
import { get, queryString } from './api.js';
import { LineChart, seriesTable } from './chart.js';
import { duration, h, num, replace } from './dom.js';
import * as state from './state.js';
import { PER_PAGE, Panel, countryLabel, countryNames, csvButton, pager, setBody, table, tabs } from './widgets.js';

const R = '/api/v1/reports/';

/** The common parameters of the contract for state `s`; `group` says whether the
 * report accepts content_group (custom-events, devices, sources and locations refuse
 * it), `country` whether it accepts country (only summary and pages do). */
export function baseQuery(s, { group = true, country = false } = {}) {
  const q = { website_id: s.site };
  if (s.period === 'custom') {
    q.start_date = s.from;
    q.end_date = s.to;
  } else {
    q.period = s.period;
  }
  if (s.bots === '1') q.include_bots = 'true';
  if (group && s.group) q.content_group = s.group;
  if (country && s.country) q.country = s.country;
  return q;
}

const pct = (v) => (v === null || v === undefined ? '—' : `${num(v)}%`);

// The site's visits for the period (no group, no country): what the locations panel's
// shares are shares of. The summary panel's own answer is reused when it asked for
// exactly that, so the share costs a request only when a filter is on.
let total = { key: null, visits: null };
const totalKey = (s) => queryString(baseQuery(s, { group: false }));
function keepTotal(key, promise) {
  promise.catch(() => {}); // an aborted request: whoever waits asks again
  total = { key, visits: promise };
}
async function siteVisits(s, signal) {
  const key = totalKey(s);
  if (total.key === key) {
    try {
      return await total.visits;
    } catch { /* that request was aborted or failed: ask again */ }
  }
  const p = get(`${R}summary`, baseQuery(s, { group: false }), signal).then((d) => d.metrics.visits.value);
  keepTotal(key, p);
  return p;
}

// --- top-line metrics ------------------------------------------------------------

const METRICS = [
  ['visits', 'Visits', num, false],
  ['unique_visitors', 'Unique visitors', num, false],
  ['pageviews', 'Pageviews', num, false],
  ['bounce_rate', 'Bounce rate', pct, true],
  ['avg_session_duration_sec', 'Visit duration', duration, false],
];

export class SummaryPanel extends Panel {
  constructor() {
    super('summary', 'Overview', { wide: true });
    this.tools.append(csvButton(`${R}summary`, () => this.query()));
  }

  // The API has no summary for a country within a content group (400): with both
  // chosen, the overview shows the group for all countries and says so.
  accepts(s) { return { group: true, country: !s.group }; }

  unfiltered(s) {
    return s.group && s.country
      ? `All countries: the overview cannot combine a country with a content group; it shows ${s.group} from everywhere.`
      : super.unfiltered(s);
  }

  query() {
    const s = state.read();
    return { ...baseQuery(s, { country: !s.group }), compare: s.compare || undefined };
  }

  async load(signal) {
    const s = state.read();
    const pending = get(`${R}summary`, this.query(), signal);
    if (!s.group && !s.country) keepTotal(totalKey(s), pending.then((d) => d.metrics.visits.value));
    const d = await pending;
    const cards = METRICS.map(([key, label, fmt, lowerIsBetter]) => {
      const m = d.metrics[key] || {};
      let change = null;
      if ('change_pct' in m) {
        const c = m.change_pct;
        const dir = c === null ? 'none' : c > 0 ? 'up' : c < 0 ? 'down' : 'flat';
        const good = c === null || c === 0 ? '' : (c > 0) !== lowerIsBetter ? ' good' : ' bad';
        const arrow = { up: '▲', down: '▼', flat: '■', none: '' }[dir];
        change = h('p', { class: `change ${dir}${good}`, 'data-change': c === null ? '' : String(c) },
          c === null ? 'no earlier data' : `${arrow} ${num(Math.abs(c))}%`,
          h('span', { class: 'previous' }, ` vs ${fmt(m.previous)}`));
      }
      return h('div', { class: 'metric', 'data-metric': key },
        h('p', { class: 'label' }, label),
        h('p', { class: 'value', 'data-value': String(m.value) }, fmt(m.value)),
        change);
    });
    setBody(this, h('div', { class: 'metrics' }, cards),
      d.comparison ? h('p', { class: 'note comparison' }, `Compared with ${d.comparison}`) : null,
      h('p', { class: 'note period' }, `${d.period.start} to ${d.period.end} (UTC)`));
  }
}

// --- timeseries --------------------------------------------------------------------

const SERIES = [
  ['pageviews', 'Pageviews', num], ['visits', 'Visits', num],
  ['unique_pageviews', 'Unique pageviews', num], ['bounce_rate', 'Bounce rate', pct],
  ['avg_session_duration', 'Visit duration', duration],
  ['landing_page_entries', 'Landing page entries', num], ['exit_page_exits', 'Exit page exits', num],
];

export class TimeseriesPanel extends Panel {
  constructor() {
    super('timeseries', 'Per day', { wide: true });
    const s = state.read();
    this.metric = h('select', { 'aria-label': 'Metric', name: 'metric' },
      SERIES.map(([v, label]) => h('option', { value: v, selected: v === s.metric }, label)));
    this.metric.addEventListener('change', () => state.write({ metric: this.metric.value }, { push: true }));
    this.path = h('input', {
      type: 'search', name: 'path', placeholder: 'Filter by path, e.g. /pricing', 'aria-label': 'Path filter',
      value: s.path, spellcheck: 'false', autocomplete: 'off',
    });
    const form = h('form', { class: 'inline', role: 'search' }, this.path,
      h('button', { type: 'submit' }, 'Apply'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = this.path.value.trim();
      state.write({ path: v && !v.startsWith('/') ? `/${v}` : v }, { push: true });
    });
    this.tools.append(this.metric, form, csvButton(`${R}timeseries`, () => this.query()));
    this.chartBox = h('div', { class: 'chart' });
    this.table = h('div');
    this.caption = h('p', { class: 'note' });
    this.body.append(this.caption, this.chartBox, this.table);
    this.chart = null;
  }

  query() {
    const s = state.read();
    return { ...baseQuery(s), metric: s.metric, path: s.path || undefined };
  }

  async load(signal) {
    const s = state.read();
    this.metric.value = s.metric;
    this.path.value = s.path;
    const d = await get(`${R}timeseries`, this.query(), signal);
    const [, label, fmt] = SERIES.find(([v]) => v === d.metric) || SERIES[0];
    replace(this.caption, label, d.path && d.path !== '*' ? [' of ', h('bdi', {}, d.path)] : null,
      `, ${d.period.start} to ${d.period.end}`);
    this.chart = this.chart || new LineChart(this.chartBox);
    this.chart.draw(d.series, label, fmt);
    replace(this.table, seriesTable(d.series, label, fmt));
  }
}

// --- paginated tables -----------------------------------------------------------------

class TablePanel extends Panel {
  constructor(id, title, endpoint, opts = {}) {
    super(id, title, opts);
    this.endpoint = endpoint;
    this.page = 1;
    this.tools.append(csvButton(`${R}${endpoint}`, () => this.query()));
  }

  invalidate() {
    this.page = 1;
    super.invalidate();
  }

  go(page) {
    this.page = page;
    this.refresh();
  }

  query() { return { ...baseQuery(state.read()), page: this.page, per_page: PER_PAGE }; }
}

export class PagesPanel extends TablePanel {
  constructor() { super('pages', 'Pages', 'pages'); }

  accepts() { return { group: true, country: true }; }

  query() {
    return { ...baseQuery(state.read(), { country: true }), page: this.page, per_page: PER_PAGE };
  }

  async load(signal) {
    const d = await get(`${R}pages`, this.query(), signal);
    setBody(this, table([
      { key: 'path', label: 'Path' }, { key: 'contentGroup', label: 'Group' },
      { key: 'pageviews', label: 'Views', num: true }, { key: 'uniquePageviews', label: 'Unique', num: true },
    ], d.rows, { caption: 'Pages' }), pager(d.page, d.rows.length === d.per_page, (p) => this.go(p)));
  }
}

const SOURCE_COLUMNS = {
  channel: [{ key: 'channel', label: 'Channel' }],
  domain: [{ key: 'referrer', label: 'Referrer' }],
  utm: [{ key: 'utmSource', label: 'Source' }, { key: 'utmMedium', label: 'Medium' },
    { key: 'utmCampaign', label: 'Campaign' }],
};

export class SourcesPanel extends TablePanel {
  constructor() { super('sources', 'Sources', 'sources'); }

  accepts() { return { group: false, country: false }; }

  query() {
    const s = state.read();
    return { ...baseQuery(s, { group: false }), group_by: s.src, page: this.page, per_page: PER_PAGE };
  }

  async load(signal) {
    const s = state.read();
    const d = await get(`${R}sources`, this.query(), signal);
    setBody(this,
      tabs('Group sources by', [['channel', 'Channel'], ['domain', 'Domain'], ['utm', 'UTM']], s.src,
        (v) => state.write({ src: v }, { push: true })),
      table([...SOURCE_COLUMNS[s.src], { key: 'visits', label: 'Visits', num: true }], d.rows,
        { caption: 'Sources' }),
      pager(d.page, d.rows.length === d.per_page, (p) => this.go(p)));
  }
}

const DEVICE_TABS = {
  types: ['device_types', 'deviceType', 'Type'], browsers: ['browsers', 'browserFamily', 'Browser'],
  os: ['os_families', 'osFamily', 'OS'], screens: ['screen_resolutions', 'bucket', 'Screen width'],
};

export class DevicesPanel extends Panel {
  constructor() {
    super('devices', 'Devices');
    this.data = null;
    this.page = 1;
    this.tools.append(csvButton(`${R}devices`, () => baseQuery(state.read(), { group: false }), 'CSV (types)'));
  }

  accepts() { return { group: false, country: false }; }

  invalidate() {
    this.data = null;
    this.page = 1;
    super.invalidate();
  }

  async load(signal) {
    if (!this.data) this.data = await get(`${R}devices`, baseQuery(state.read(), { group: false }), signal);
    this.draw();
  }

  /** The API answers all four lists at once: tabs and pages need no request. */
  draw() {
    const s = state.read();
    const [list, key, label] = DEVICE_TABS[s.dev] || DEVICE_TABS.types;
    const rows = this.data[list] || [];
    const shown = rows.slice((this.page - 1) * PER_PAGE, this.page * PER_PAGE);
    setBody(this,
      tabs('Device breakdown', [['types', 'Types'], ['browsers', 'Browsers'], ['os', 'OS'], ['screens', 'Screens']],
        s.dev, (v) => { this.page = 1; state.write({ dev: v }, { push: true }); }),
      table([{ key, label }, { key: 'visits', label: 'Visits', num: true }], shown, { caption: 'Devices' }),
      pager(this.page, rows.length > this.page * PER_PAGE, (p) => { this.page = p; this.draw(); }));
  }
}

export class FlowPanel extends TablePanel {
  // Across both columns: two lists side by side (and an even count of narrow panels).
  constructor() { super('flow', 'Landing and exit pages', 'flow', { wide: true }); }

  async load(signal) {
    const d = await get(`${R}flow`, this.query(), signal);
    const more = d.landing_pages.length === PER_PAGE || d.exit_pages.length === PER_PAGE;
    setBody(this, h('div', { class: 'split' },
      h('div', { 'data-list': 'landing' }, h('h3', {}, 'Landing pages'),
        table([{ key: 'path', label: 'Path' }, { key: 'entries', label: 'Entries', num: true }],
          d.landing_pages, { caption: 'Landing pages' })),
      h('div', { 'data-list': 'exit' }, h('h3', {}, 'Exit pages'),
        table([{ key: 'path', label: 'Path' }, { key: 'exits', label: 'Exits', num: true }],
          d.exit_pages, { caption: 'Exit pages' }))),
    pager(this.page, more, (p) => this.go(p)));
  }
}

export class EventsPanel extends TablePanel {
  constructor() {
    super('events', 'Custom events', 'custom-events');
    this.name = h('input', {
      type: 'search', name: 'event', placeholder: 'Event name', 'aria-label': 'Event name filter',
      value: state.read().event, spellcheck: 'false', autocomplete: 'off',
    });
    const form = h('form', { class: 'inline', role: 'search' }, this.name, h('button', { type: 'submit' }, 'Filter'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      state.write({ event: this.name.value.trim() }, { push: true });
    });
    this.tools.prepend(form);
  }

  accepts() { return { group: false, country: false }; }

  query() {
    const s = state.read();
    return { ...baseQuery(s, { group: false }), event_name: s.event || undefined, page: this.page, per_page: PER_PAGE };
  }

  async load(signal) {
    const s = state.read();
    this.name.value = s.event;
    const d = await get(`${R}custom-events`, this.query(), signal);
    setBody(this,
      table([{ key: 'name', label: 'Event' }, { key: 'count', label: 'Count', num: true }], d.rows,
        { caption: 'Custom events', empty: s.event ? ['No “', h('bdi', {}, s.event), '” events in this period.'] : undefined }),
      pager(d.page, d.rows.length === d.per_page, (p) => this.go(p)));
  }
}

// --- locations ----------------------------------------------------------------------

export { countryNames };
export const countryList = h('datalist', { id: 'country-list' });

/** Learns the names in `rows`; true when one was new. */
function rememberCountries(rows) {
  let added = false;
  for (const r of rows) {
    if (r.country && !countryNames.has(r.country)) {
      countryNames.set(r.country, r.countryName);
      added = true;
    }
  }
  if (added) {
    replace(countryList, [...countryNames].sort((a, b) => a[0].localeCompare(b[0]))
      .map(([code, name]) => h('option', { value: code, label: name ? `${name} (${code})` : code })));
  }
  return added;
}

/** The share of `visits` in `all`, one decimal, as the test computes it. */
export function share(visits, all) {
  return all ? `${((100 * visits) / all).toFixed(1)}%` : '—';
}

/** Visits by country (GET /api/v1/reports/locations), with each row's share of the
 * period's visits (the summary's, which the rows add up to). A row sets or clears the
 * country filter of the overview and pages. The data is IP Geolocation by DB-IP (CC BY
 * 4.0), whose licence asks for the attribution shown under the table. */
export class LocationsPanel extends TablePanel {
  constructor() {
    super('locations', 'Locations', 'locations');
    this.data = null;
    this.total = null;
    this.onNames = () => this.noteFor(state.read()); // the reports view redraws every note
    this.el.append(h('p', { class: 'attribution' },
      h('a', { href: 'https://db-ip.com', rel: 'noopener', target: '_blank' }, 'IP Geolocation by DB-IP')));
  }

  accepts() { return { group: false, country: false }; }

  unfiltered(s) {
    const notes = [];
    if (s.group) notes.push('All pages: this report is not kept per content group.');
    if (s.country) notes.push(`Every country; the overview and pages show ${countryLabel(s.country)} only.`);
    return notes.join(' ');
  }

  invalidate() {
    this.data = null;
    super.invalidate();
  }

  go(page) {
    this.data = null;
    super.go(page);
  }

  query() {
    return { ...baseQuery(state.read(), { group: false }), page: this.page, per_page: PER_PAGE };
  }

  async load(signal) {
    const s = state.read();
    const [d, visits] = await Promise.all([get(`${R}locations`, this.query(), signal), siteVisits(s, signal)]);
    this.data = d;
    this.total = visits;
    if (rememberCountries(d.rows)) this.onNames();
    this.draw();
  }

  /** Redraws from the last answer (a change of the country filter asks for nothing). */
  draw() {
    const d = this.data;
    if (!d) return;
    const s = state.read();
    const pick = (code) => state.write({ country: code === s.country ? '' : code }, { push: true });
    const rows = d.rows.map((r) => {
      const selected = r.country !== null && r.country === s.country;
      const name = r.country === null ? 'Not known' : (r.countryName ?? '—');
      const label = r.country === null ? name
        : h('button', {
          type: 'button', class: 'linkish', 'aria-pressed': String(selected),
          title: selected ? 'Show every country again' : `Show only visitors from ${r.countryName ?? r.country}`,
        }, name);
      const bar = h('span', { class: 'share-bar', 'aria-hidden': 'true' }, h('span', { class: 'fill' }));
      bar.firstChild.style.width = `${this.total ? (100 * r.visits) / this.total : 0}%`; // CSSOM
      const tr = h('tr', { class: selected ? 'selected' : (r.country ? 'pick' : '') },
        h('td', { 'data-col': 'countryName' }, label),
        h('td', { 'data-col': 'country' }, r.country ?? '—'),
        h('td', { 'data-col': 'visits', class: 'num' }, num(r.visits)),
        h('td', { 'data-col': 'share', class: 'num' },
          h('span', { class: 'share-cell' }, bar, share(r.visits, this.total))));
      if (r.country !== null) tr.addEventListener('click', () => pick(r.country));
      return tr;
    });
    setBody(this, d.rows.length ? h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'sr-only' }, 'Visits by country'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Country'), h('th', { scope: 'col' }, 'Code'),
        h('th', { scope: 'col', class: 'num' }, 'Visits'), h('th', { scope: 'col', class: 'num' }, 'Share'))),
      h('tbody', {}, rows)))
      : h('p', { class: 'empty' }, 'No data for this period.'),
    pager(d.page, d.rows.length === d.per_page, (p) => this.go(p)));
  }
}
