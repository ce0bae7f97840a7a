// The locations panel: visits by country, each row's share of the period's visits, and
// the country filter that a row sets for the overview and pages.
import { get } from './api.js';
import { h, num, replace } from './dom.js';
import { TablePanel } from './panels.js';
import { R, baseQuery, siteVisits } from './query.js';
import * as state from './state.js';
import { PER_PAGE, countryLabel, countryNames, pager, setBody } from './widgets.js';

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
