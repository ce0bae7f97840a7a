// The daily timeseries as a uPlot line chart (canvas), plus the same numbers as a
// table for screen readers and for anyone who wants the figures.
import uPlot from 'uplot';
import { h, num } from './dom.js';

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const DAY = 86400;
// Daily data: ticks on whole days (1 day … 1 year apart), never on hours.
const DAY_INCRS = [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 61 * DAY, 91 * DAY, 182 * DAY, 365 * DAY];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function dayLabel(ts) {
  const d = new Date(ts * 1000);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

const charts = new Set();
const dark = window.matchMedia('(prefers-color-scheme: dark)');
dark.addEventListener('change', () => charts.forEach((c) => c.redrawColors()));

export class LineChart {
  constructor(container) {
    this.container = container;
    this.plot = null;
    this.series = [];
    this.label = '';
    this.ro = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(this.size());
    });
    this.ro.observe(container);
    charts.add(this);
  }

  size() {
    const width = Math.max(260, this.container.clientWidth);
    return { width, height: width < 500 ? 200 : 260 };
  }

  draw(series, label, format = num) {
    this.series = series;
    this.label = label;
    this.format = format;
    this.plot?.destroy();
    const xs = series.map((p) => Date.parse(`${p.date}T00:00:00Z`) / 1000);
    const ys = series.map((p) => p.value);
    const axis = cssVar('--muted');
    const grid = cssVar('--grid');
    const accent = cssVar('--accent');
    const opts = {
      ...this.size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      legend: { show: false },
      cursor: { y: false, points: { size: 7 } },
      // One day (today, yesterday, a 1-day range): uPlot's own x range for a single
      // point starts at it (the point at the left edge); give it the day, half a day
      // each side, so the day sits in the middle under its one tick.
      scales: { x: xs.length === 1 ? { time: true, auto: false, min: xs[0] - DAY / 2, max: xs[0] + DAY / 2 } : { time: true }, y: { range: (_u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, space: 60,
          incrs: DAY_INCRS, values: (_u, splits) => splits.map(dayLabel) },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56,
          values: (_u, vals) => vals.map((v) => format(v)) },
      ],
      series: [{}, { label, stroke: accent, width: 2, fill: `${accent}22`, points: { show: series.length <= 31 } }],
    };
    this.plot = new uPlot(opts, [xs, ys], this.container);
    this.plot.root.setAttribute('role', 'img');
    this.plot.root.setAttribute('aria-label', `${label} per day, chart`);
  }

  redrawColors() {
    if (this.plot) this.draw(this.series, this.label, this.format);
  }
}

/** The series as a table: date, value (same numbers as the chart). */
export function seriesTable(series, label, format = num) {
  return h('details', { class: 'series-data' },
    h('summary', {}, 'Show the numbers'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Date'), h('th', { scope: 'col', class: 'num' }, label))),
      h('tbody', {}, series.map((p) => h('tr', {},
        h('td', { 'data-col': 'date' }, p.date),
        h('td', { 'data-col': 'value', class: 'num' }, format(p.value))))))));
}
