// The query a report panel sends (the contract's common parameters for the toolbar's
// state) and the site's visits for the period, shared by the summary and locations panels.
import { get, queryString } from './api.js';

export const R = '/api/v1/reports/';

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

// The site's visits for the period (no group, no country): what the locations panel's
// shares are shares of. The summary panel's own answer is reused when it asked for
// exactly that, so the share costs a request only when a filter is on.
let total = { key: null, visits: null };
export const totalKey = (s) => queryString(baseQuery(s, { group: false }));
export function keepTotal(key, promise) {
  promise.catch(() => {}); // an aborted request: whoever waits asks again
  total = { key, visits: promise };
}
export async function siteVisits(s, signal) {
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
