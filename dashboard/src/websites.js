// Websites: list, create, edit, delete (with confirmation), install snippet.
// The API's 400 messages name the field they are about ("domain must be…",
// "content_groups[0].pattern…", "excluded_ips[2]…"): they are shown at that field.
import { ApiError, api, explain } from './api.js';
import { h, nextId, replace } from './dom.js';
import * as state from './state.js';

const FIELDS = [['domain', 'domain'], ['content_groups', 'groups'], ['excluded_ips', 'ips']];

function fieldOf(message) {
  const hit = FIELDS.find(([prefix]) => message.startsWith(prefix));
  return hit ? hit[1] : null;
}

/** "Name: /pattern" per line <-> [{name, pattern}]. A line is split at its first ':'
 * followed by a '/' (spaces between allowed): patterns start with '/' and may hold ':'
 * ("/v1:batch/*"), names may hold ':' but not ": /". Without one, at the first ':' (the
 * API then names what is wrong with the pattern). */
function groupsToText(groups) { return groups.map((g) => `${g.name}: ${g.pattern}`).join('\n'); }
function textToGroups(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
    const m = /^(.*?)\s*:\s*(\/.*)$/.exec(line);
    if (m) return { name: m[1].trim(), pattern: m[2].trim() };
    const i = line.indexOf(':');
    return i < 0 ? { name: line, pattern: '' } : { name: line.slice(0, i).trim(), pattern: line.slice(i + 1).trim() };
  });
}
function textToList(text) { return text.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean); }

export function snippet(id) {
  return `<script defer data-id="${id}" src="${location.origin}/js/tracker.js"></script>`;
}

export function copyBox(text, label) {
  const code = h('code', { class: 'copy-text' }, text);
  const done = h('span', { class: 'note', role: 'status' });
  const btn = h('button', { type: 'button', class: 'copy' }, 'Copy');
  btn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      done.textContent = 'Copied.';
    } catch {
      const r = document.createRange();
      r.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(r);
      done.textContent = 'Selected: press Ctrl+C to copy.';
    }
  });
  return h('div', { class: 'copy-box', 'aria-label': label, role: 'group' }, code, btn, done);
}

function websiteForm(site, onDone, onCancel) {
  const ids = { domain: nextId('f'), groups: nextId('f'), ips: nextId('f') };
  const inputs = {
    domain: h('input', { id: ids.domain, name: 'domain', required: true, value: site?.domain || '', autocomplete: 'off', spellcheck: 'false', placeholder: 'example.com' }),
    groups: h('textarea', { id: ids.groups, name: 'content_groups', rows: 3, spellcheck: 'false', placeholder: 'Blog: /blog/*' }),
    ips: h('textarea', { id: ids.ips, name: 'excluded_ips', rows: 2, spellcheck: 'false', placeholder: '203.0.113.7\n10.0.0.0/8' }),
  };
  inputs.groups.value = groupsToText(site?.contentGroups || []);
  inputs.ips.value = (site?.excludedIps || []).join('\n');
  const errors = { domain: h('p', { class: 'field-error', id: `${ids.domain}-e` }),
    groups: h('p', { class: 'field-error', id: `${ids.groups}-e` }),
    ips: h('p', { class: 'field-error', id: `${ids.ips}-e` }) };
  Object.entries(inputs).forEach(([k, el]) => el.setAttribute('aria-describedby', `${ids[k]}-e`));
  const formError = h('p', { class: 'field-error', role: 'alert' });
  const row = (k, label, hint) => h('div', { class: 'form-row', 'data-field': k },
    h('label', { for: ids[k] }, label), hint ? h('p', { class: 'hint' }, hint) : null, inputs[k], errors[k]);
  const form = h('form', { class: 'website-form', novalidate: true },
    row('domain', 'Domain'),
    row('groups', 'Content groups', 'One per line: Name: /path/glob* (first match wins; a name may not hold “: /”)'),
    row('ips', 'Excluded IP addresses', 'Addresses or CIDR ranges, one per line'),
    formError,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, site ? 'Save' : 'Add website'),
      onCancel ? h('button', { type: 'button', onclick: onCancel }, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    Object.values(errors).forEach((el) => { el.textContent = ''; });
    Object.values(inputs).forEach((el) => el.removeAttribute('aria-invalid'));
    formError.textContent = '';
    const body = { domain: inputs.domain.value.trim(), content_groups: textToGroups(inputs.groups.value),
      excluded_ips: textToList(inputs.ips.value) };
    try {
      const saved = site ? await api('PATCH', `/api/v1/websites/${site.id}`, { body })
        : await api('POST', '/api/v1/websites', { body });
      onDone(saved);
    } catch (err) {
      const k = err instanceof ApiError && err.status === 400 ? fieldOf(err.message) : null;
      if (k) {
        replace(errors[k], err.message);
        inputs[k].setAttribute('aria-invalid', 'true');
        inputs[k].focus();
      } else {
        replace(formError, explain(err));
      }
    }
  });
  return form;
}

export function websitesView(main, sites, reload) {
  const list = h('div', { 'data-list': 'websites' });
  const notice = h('div', { class: 'notice', role: 'status' });

  function draw() {
    if (!sites.length) {
      replace(list, h('p', { class: 'empty' }, 'No websites yet: add one below.'));
      return;
    }
    replace(list, h('ul', { class: 'sites' }, sites.map((w) => {
      const li = h('li', { 'data-site': w.id });
      const show = () => replace(li,
        h('div', { class: 'site-head' },
          h('h3', {}, w.domain),
          h('div', { class: 'row' },
            h('a', { href: `?site=${encodeURIComponent(w.id)}`, class: 'button',
              onclick: (e) => { e.preventDefault(); state.write({ view: 'reports', site: w.id, group: '', path: '' }, { push: true }); } }, 'Reports'),
            h('button', { type: 'button', class: 'edit', onclick: edit }, 'Edit'),
            h('button', { type: 'button', class: 'delete danger', onclick: confirmDelete }, 'Delete'))),
        h('p', { class: 'meta' }, `Id ${w.id} · ${w.contentGroups.length} content groups · ${w.excludedIps.length} excluded addresses`),
        copyBox(snippet(w.id), `Install snippet for ${w.domain}`));
      const edit = () => replace(li, h('h3', {}, `Edit ${w.domain}`), websiteForm(w, async (saved) => {
        notice.textContent = `Saved ${saved.domain}.`;
        await reload();
      }, show));
      const confirmDelete = () => {
        const yes = h('button', { type: 'button', class: 'danger confirm', onclick: async () => {
          try {
            await api('DELETE', `/api/v1/websites/${w.id}`);
            notice.textContent = `Deleted ${w.domain}.`;
            await reload();
          } catch (err) {
            notice.textContent = explain(err);
          }
        } }, 'Yes, delete');
        const cancel = h('button', { type: 'button', class: 'cancel', onclick: show }, 'Cancel');
        replace(li, h('div', { class: 'confirm-box', role: 'alertdialog', 'aria-label': 'Confirm deletion' },
          h('p', {}, `Delete ${w.domain} and all its events and reports? This cannot be undone.`),
          h('div', { class: 'row' }, yes, cancel)));
        cancel.focus(); // the safe choice: Enter right after "Delete" must not delete
      };
      show();
      return li;
    })));
  }

  const create = h('section', { class: 'panel', 'aria-label': 'Add a website' }, h('h2', {}, 'Add a website'),
    websiteForm(null, async (saved) => {
      notice.replaceChildren(h('p', {}, `Added ${saved.domain}. Put this in the <head> of its pages:`),
        copyBox(snippet(saved.id), `Install snippet for ${saved.domain}`));
      await reload();
    }));
  main.append(h('h1', {}, 'Websites'), notice, h('section', { class: 'panel' }, list), create);
  draw();
  return { update(next) { sites = next; draw(); } };
}
