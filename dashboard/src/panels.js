// The report panels. Each one asks one endpoint of the public API for the query the
// toolbar describes and draws exactly what the API answered. The locations panel is in
// locations.js; the query and the site's visits total in query.js.
import { get } from './api.js';
import { LineChart, seriesTable } from './chart.js';
import { duration, h, num, replace } from './dom.js';
import { R, baseQuery, keepTotal, totalKey } from './query.js';
import * as state from './state.js';
import { PER_PAGE, Panel, csvButton, pager, setBody, table, tabs } from './widgets.js';

const pct = (v) => (v === null || v === undefined ? '—' : `${num(v)}%`);

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

export class TablePanel extends Panel {
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
