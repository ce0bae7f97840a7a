// Admin only: accounts and users; a new user's API key is shown once.
import { api, explain, get } from './api.js';
import { h, nextId, replace } from './dom.js';
import { copyBox } from './websites.js';
import { table } from './widgets.js';

function labelled(label, control) {
  const id = nextId('a');
  control.id = id;
  return h('div', { class: 'form-row' }, h('label', { for: id }, label), control);
}

export async function adminView(main) {
  const accountsBox = h('div', { 'data-list': 'accounts' });
  const usersBox = h('div', { 'data-list': 'users' });
  const keyBox = h('div', { class: 'notice', role: 'status' });
  const accountMsg = h('p', { class: 'field-error', role: 'alert' });
  const userMsg = h('p', { class: 'field-error', role: 'alert' });
  const accountName = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const userAccount = h('select', { name: 'account_id' });
  const userRole = h('select', { name: 'role' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin'));
  const userEmail = h('input', { name: 'email', type: 'email', autocomplete: 'off' });

  async function load() {
    const [accounts, users] = await Promise.all([get('/api/v1/accounts'), get('/api/v1/users')]);
    const names = Object.fromEntries(accounts.map((a) => [a.id, a.name]));
    replace(accountsBox, table([{ key: 'name', label: 'Name' }, { key: 'id', label: 'Id' },
      { key: 'createdAt', label: 'Created' }], accounts, { caption: 'Accounts' }));
    replace(usersBox, table([{ key: 'email', label: 'Email' }, { key: 'role', label: 'Role' },
      { key: 'accountId', label: 'Account', format: (v) => names[v] || v }, { key: 'id', label: 'Id' }],
    users, { caption: 'Users' }));
    const chosen = userAccount.value;
    replace(userAccount, accounts.map((a) => h('option', { value: a.id, selected: a.id === chosen }, a.name)));
  }

  const accountForm = h('form', { class: 'inline-form' }, labelled('Account name', accountName),
    h('button', { type: 'submit', class: 'primary' }, 'Create account'), accountMsg);
  accountForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    accountMsg.textContent = '';
    try {
      await api('POST', '/api/v1/accounts', { body: { name: accountName.value.trim() } });
      accountName.value = '';
      await load();
    } catch (err) { accountMsg.textContent = explain(err); }
  });

  const userForm = h('form', { class: 'inline-form' }, labelled('Account', userAccount), labelled('Role', userRole),
    labelled('Email (optional label)', userEmail), h('button', { type: 'submit', class: 'primary' }, 'Create user'), userMsg);
  userForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    userMsg.textContent = '';
    keyBox.replaceChildren();
    const body = { account_id: userAccount.value, role: userRole.value };
    if (userEmail.value.trim()) body.email = userEmail.value.trim();
    try {
      const user = await api('POST', '/api/v1/users', { body });
      userEmail.value = '';
      keyBox.append(h('p', {}, `API key of ${user.email || user.id}: shown once, copy it now.`),
        copyBox(user.apiKey, 'New API key'));
      await load();
    } catch (err) { userMsg.textContent = explain(err); }
  });

  main.append(h('h1', {}, 'Accounts and users'),
    h('section', { class: 'panel', 'aria-label': 'Accounts' }, h('h2', {}, 'Accounts'), accountsBox, accountForm),
    h('section', { class: 'panel', 'aria-label': 'Users' }, h('h2', {}, 'Users'), keyBox, usersBox, userForm));
  await load();
}
