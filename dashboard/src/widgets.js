// Panels, tables, pagers and tabs shared by the report panels.
import { ApiError, comeBackLater, downloadCsv, explain } from './api.js';
import { h, nextId, num, replace } from './dom.js';

export const PER_PAGE = 10;
const MAX_WAIT = 300; // seconds: the longest a waiting panel (503) waits to ask again

/** Country names the API has given (locations), by code: for labels and suggestions. */
export const countryNames = new Map();
export const countryLabel = (code) => (countryNames.get(code) ? `${countryNames.get(code)} (${code})` : code);
const DEBOUNCE = 300;

/**
 * A report panel. `load(signal)` fetches and draws; the panel loads when it first
 * scrolls near the viewport and again after `invalidate()` (lazy: panels below the
 * fold cost no request until someone looks at them). `data-state` says
 * loading / ready / error, which the browser tests wait on.
 */
export class Panel {
  constructor(id, title, { wide = false, tools = [] } = {}) {
    const headingId = nextId('h');
    this.id = id;
    this.heading = h('h2', { id: headingId }, title);
    this.tools = h('div', { class: 'tools' }, tools);
    this.status = h('p', { class: 'panel-status', role: 'status' });
    // Says which toolbar filters apply here and which this report cannot apply (noteFor()).
    this.filterNote = h('p', { class: 'note filter-note', hidden: true });
    this.body = h('div', { class: 'panel-body' });
    this.el = h('section', {
      class: `panel${wide ? ' wide' : ''}`, id: `panel-${id}`, 'data-panel': id,
      'data-state': 'idle', 'aria-labelledby': headingId, 'aria-busy': 'false',
    }, h('header', {}, this.heading, this.tools), this.status, this.filterNote, this.body);
    this.visible = false;
    this.stale = true;
    this.controller = null;
    this.generation = 0;
  }

  load() { return Promise.resolve(); }

  /** Which of the toolbar's filters this panel's report accepts (the API answers 400
   * to the others, so the panel asks without them and says so). */
  accepts() { return { group: true, country: false }; }

  /** The note for state `s`: '' when every chosen filter applies. */
  unfiltered(s) {
    const a = this.accepts(s);
    const group = s.group && !a.group;
    const country = s.country && !a.country;
    if (group && country) {
      return 'All pages and all countries: this report is not kept per content group or per country.';
    }
    if (group) return 'All pages: this report is not kept per content group.';
    if (country) return 'All countries: this report is not kept per country.';
    return '';
  }

  /** Redraws the note at once (no request): called on every change of the state. */
  noteFor(s) {
    const a = this.accepts(s);
    const text = [s.country && a.country ? `Only visits from ${countryLabel(s.country)}.` : '',
      this.unfiltered(s)].filter(Boolean).join(' ');
    this.filterNote.textContent = text;
    this.filterNote.hidden = !text;
  }

  /** Reload soon: changes within DEBOUNCE ms (a few clicks in a row) cost one request. */
  invalidate() {
    this.stale = true;
    if (!this.visible) {
      this.el.dataset.state = 'stale';
      return;
    }
    this.el.dataset.state = 'loading';
    clearTimeout(this.pending);
    this.pending = setTimeout(() => { if (this.stale) this.refresh(); }, DEBOUNCE);
  }

  show() {
    this.visible = true;
    if (this.stale) this.refresh();
  }

  hide() { this.visible = false; }

  async refresh() {
    clearTimeout(this.pending);
    this.stale = false;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.generation += 1;
    const gen = this.generation;
    this.el.dataset.state = 'loading';
    this.el.setAttribute('aria-busy', 'true');
    this.status.textContent = '';
    try {
      await this.load(controller.signal);
      if (gen !== this.generation) return;
      this.el.dataset.state = 'ready';
      this.waits = 0;
    } catch (err) {
      if (controller.signal.aborted || gen !== this.generation) return;
      if (err.status === 503 && comeBackLater(err)) {
        // The API cannot reach its database for the moment, or cancelled a query that ran
        // too long, and the shared pause and its retries did not outlast it: no error; the
        // panel asks again after Retry-After, doubled each time it is refused again (at
        // most 5 minutes), so that a report too heavy for the database is not re-run
        // every few seconds for as long as the page is open.
        this.waits = (this.waits || 0) + 1;
        const seconds = Math.min(MAX_WAIT, err.retryAfter * 2 ** (this.waits - 1));
        this.el.dataset.state = 'waiting';
        replace(this.status, `Unavailable for a moment (503): asking again in ${seconds} s.`);
        this.status.className = 'panel-status waiting';
        this.stale = true;
        this.pending = setTimeout(() => { if (this.visible && this.stale) this.refresh(); },
          seconds * 1000);
        return;
      }
      this.el.dataset.state = 'error';
      replace(this.status, explain(err));
      this.status.className = 'panel-status error';
      if (!(err instanceof ApiError)) console.warn(err);
    } finally {
      if (gen === this.generation) this.el.setAttribute('aria-busy', 'false');
    }
  }
}

/** Watches panels and calls `show()` when one comes within 300 px of the viewport. */
export function lazy(panels) {
  const byEl = new Map(panels.map((p) => [p.el, p]));
  const io = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const p = byEl.get(e.target);
      if (e.isIntersecting && p) p.show();
      else if (p) p.hide();
    }
  }, { rootMargin: '300px 0px' });
  panels.forEach((p) => io.observe(p.el));
  return io;
}

/**
 * A data table. `columns`: [{key, label, num?, format?}]. Every cell is text.
 * Rows are `<tr>`s whose cells carry `data-col` (the API's field name).
 */
export function table(columns, rows, { caption, empty = 'No data for this period.' } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : '' }, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => {
      const v = r[c.key];
      const text = c.format ? c.format(v, r) : (c.num ? num(v) : (v ?? '—'));
      return h('td', { 'data-col': c.key, class: c.num ? 'num' : '' }, String(text));
    }))))));
}

/** Previous / next buttons; `hasNext` is a guess (a full page) as the API gives no total. */
export function pager(page, hasNext, go) {
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', class: 'prev', disabled: page <= 1, onclick: () => go(page - 1) }, '‹ Previous'),
    h('span', { class: 'page-no' }, `Page ${page}`),
    h('button', { type: 'button', class: 'next', disabled: !hasNext, onclick: () => go(page + 1) }, 'Next ›'));
}

/** Segmented buttons (aria-pressed); `onpick(value)` when another is chosen. */
export function tabs(label, options, current, onpick) {
  return h('div', { class: 'tabs', role: 'group', 'aria-label': label }, options.map(([value, text]) =>
    h('button', {
      type: 'button', 'data-tab': value, 'aria-pressed': String(value === current),
      onclick: () => { if (value !== current) onpick(value); },
    }, text)));
}

/** A button that downloads the API's own CSV for `path` and `query()`; a failed
 * download is said beside it (role=alert), not only in a tooltip. */
export function csvButton(path, query, label = 'CSV') {
  const btn = h('button', { type: 'button', class: 'csv', title: 'Download the API’s CSV' }, label);
  const msg = h('span', { class: 'field-error csv-error', role: 'alert' });
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    msg.textContent = '';
    btn.classList.remove('failed');
    try {
      await downloadCsv(path, query());
    } catch (err) {
      replace(msg, `CSV download failed: ${explain(err)}`);
      btn.classList.add('failed');
    } finally {
      btn.disabled = false;
    }
  });
  return h('span', { class: 'csv-tool' }, btn, msg);
}

export function setBody(panel, ...children) { replace(panel.body, ...children); }
