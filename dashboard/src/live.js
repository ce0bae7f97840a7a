// Funnel builder and the realtime panel.
import { get } from './api.js';
import { h, num, replace } from './dom.js';
import { R, baseQuery } from './query.js';
import * as state from './state.js';
import { Panel, csvButton, setBody, table } from './widgets.js';

const MIN_STEPS = 2;
export const MAX_STEPS = 10;

/** 2–10 steps (a path starting with `/`, or an event type / custom event name), drawn
 * as bars whose length is the share of the first step, with each step's conversion. */
export class FunnelPanel extends Panel {
  constructor() {
    super('funnel', 'Funnel', { wide: true });
    this.list = h('ol', { class: 'steps' });
    this.message = h('p', { class: 'field-error', role: 'alert' });
    this.form = h('form', { class: 'funnel-builder', 'aria-label': 'Funnel steps' },
      this.list, this.message,
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'add-step', onclick: () => this.addStep('') }, '+ Add step'),
        h('button', { type: 'submit', class: 'primary' }, 'Show funnel')));
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      const steps = this.values();
      if (steps.length < MIN_STEPS) {
        this.message.textContent = `A funnel needs at least ${MIN_STEPS} steps.`;
        return;
      }
      this.message.textContent = '';
      state.write({ steps }, { push: true });
    });
    this.result = h('div', { class: 'funnel-result' });
    this.tools.append(csvButton(`${R}funnel`, () => this.query()));
    this.body.append(this.form, this.result);
    this.fill(state.read().steps);
  }

  fill(steps) {
    this.list.replaceChildren();
    const values = steps.length ? steps : ['', ''];
    values.forEach((v) => this.addStep(v));
  }

  values() {
    return [...this.list.querySelectorAll('input')].map((i) => i.value.trim()).filter(Boolean);
  }

  addStep(value) {
    const n = this.list.children.length;
    if (n >= MAX_STEPS) {
      this.message.textContent = `A funnel has at most ${MAX_STEPS} steps.`;
      return;
    }
    const input = h('input', {
      type: 'text', name: `step${n + 1}`, value, 'aria-label': `Step ${n + 1}`,
      placeholder: n === 0 ? '/pricing' : n === 1 ? '/signup' : 'signup_complete',
      spellcheck: 'false', autocomplete: 'off',
    });
    const li = h('li', {}, input, h('button', {
      type: 'button', class: 'remove', 'aria-label': `Remove step ${n + 1}`,
      onclick: () => {
        if (this.list.children.length > MIN_STEPS) { li.remove(); this.renumber(); }
      },
    }, '×'));
    this.list.append(li);
    if (value === '' && n >= MIN_STEPS) input.focus();
  }

  renumber() {
    [...this.list.children].forEach((li, i) => {
      li.querySelector('input').setAttribute('aria-label', `Step ${i + 1}`);
      li.querySelector('button').setAttribute('aria-label', `Remove step ${i + 1}`);
    });
  }

  query() {
    const s = state.read();
    return { ...baseQuery(s), 'steps[]': s.steps };
  }

  async load(signal) {
    const s = state.read();
    if (this.values().join('\n') !== s.steps.join('\n')) this.fill(s.steps);
    if (s.steps.length < MIN_STEPS) {
      replace(this.result, h('p', { class: 'note' },
        'Add 2 to 10 steps: a path such as /pricing, or an event such as outbound_link or a custom event name.'));
      return;
    }
    const d = await get(`${R}funnel`, this.query(), signal);
    const first = d.funnel[0]?.sessions || 0;
    replace(this.result, h('ol', { class: 'bars' }, d.funnel.map((row, i) => {
      const fill = h('span', { class: 'fill' });
      fill.style.width = `${first ? (100 * row.sessions) / first : 0}%`; // CSSOM, allowed by the CSP
      return h('li', { 'data-step': String(i + 1) },
        h('span', { class: 'step-label', 'data-col': 'step' }, row.step),
        h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
        h('span', { class: 'figures' },
          h('span', { 'data-col': 'sessions' }, num(row.sessions)), ' visits · ',
          h('span', { 'data-col': 'conversion_rate' }, `${num(row.conversion_rate)}%`),
          i ? ' of the step before' : ''));
    })));
  }
}

/** Active visitors, top pages and events by type of the last 30 minutes, polled every
 * 10 s while the tab is visible (6 requests a minute; none while hidden). */
export class RealtimePanel extends Panel {
  constructor() {
    super('realtime', 'Right now');
    this.timer = null;
    this.updated = h('p', { class: 'note' });
    this.tools.append(csvButton(`${R}realtime`, () => ({ website_id: state.read().site })));
    this.onVisibility = () => this.schedule();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  static INTERVAL = 10_000;

  accepts() { return { group: false, country: false }; }

  // Always shown (it sits at the top); polling follows the tab's visibility, not scrolling.
  show() {
    if (this.visible && this.timer) return;
    this.visible = true;
    this.schedule();
  }

  schedule() {
    clearInterval(this.timer);
    this.timer = null;
    if (!this.visible || document.visibilityState !== 'visible') return;
    this.refresh();
    this.timer = setInterval(() => this.refresh(), RealtimePanel.INTERVAL);
  }

  hide() { /* keeps polling while the tab is visible, wherever it is scrolled */ }

  invalidate() { this.schedule(); }

  stop() {
    clearInterval(this.timer);
    this.visible = false;
    document.removeEventListener('visibilitychange', this.onVisibility);
  }

  async load(signal) {
    const d = await get(`${R}realtime`, { website_id: state.read().site }, signal);
    this.updated.textContent = `Last 30 minutes · updated ${new Date().toLocaleTimeString()}`;
    setBody(this,
      h('p', { class: 'big', 'data-value': String(d.active_visitors) }, num(d.active_visitors),
        h('span', {}, d.active_visitors === 1 ? ' visitor' : ' visitors')),
      this.updated,
      h('div', { 'data-list': 'top_pages' }, h('h3', {}, 'Top pages'),
        table([{ key: 'path', label: 'Path' }, { key: 'visitors', label: 'Visitors', num: true }], d.top_pages,
          { caption: 'Top pages now', empty: 'Nobody right now.' })),
      h('div', { 'data-list': 'events_by_type' }, h('h3', {}, 'Events'),
        table([{ key: 'eventType', label: 'Type' }, { key: 'count', label: 'Count', num: true }], d.events_by_type,
          { caption: 'Events by type now', empty: 'No events right now.' })));
  }
}
