// The one way the dashboard makes DOM: `h(tag, props, ...children)`.
// Text (strings, numbers) always becomes text nodes, never markup: nothing in the
// app parses HTML from a string. Bidi controls in text (a path or event name from the
// internet can hold U+202E RIGHT-TO-LEFT OVERRIDE and make "\u202egnp.exe" read as
// "exe.png") are shown as visible markers ("⟨U+202E⟩"), never obeyed; the cells and
// labels holding such strings are also isolated (`<bdi>`, `unicode-bidi: isolate`). Inline `style` attributes are refused (the CSP
// forbids them); sizes that data decide are set through the CSSOM (`el.style.x`).

// LRE RLE PDF LRO RLO, LRI RLI FSI PDI, LRM RLM, ALM.
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;

/** `s` with every bidi control replaced by a visible marker such as "⟨U+202E⟩". */
export function visible(s) {
  return String(s).replace(BIDI, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`);
}

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open', 'readOnly']);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = visible(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style' || k.startsWith('on')) throw new Error(`h(): ${k} is not allowed`);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : document.createTextNode(visible(c)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const NUM = new Intl.NumberFormat('en-US');
const DEC = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

export function num(v) {
  if (v === null || v === undefined) return '—';
  return Number.isInteger(v) ? NUM.format(v) : DEC.format(v);
}

export function duration(sec) {
  if (sec === null || sec === undefined) return '—';
  const s = Math.round(sec);
  const m = Math.floor(s / 60);
  return m ? `${m}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}
