// The clients table and everything done to a client: add, edit, activate or deactivate,
// regenerate (with an optional grace period) and delete. Every change names the ETag it is
// based on (If-Match); the API's error, and the field at fault, are shown as it gives them.

import { allClients, call, ApiError } from './api.js';
import { el, byId, show } from './dom.js';

/** The account's roles (from the profile), offered in the form. */
let accountRoles = [];
/** The clients as last read, by id. */
let clients = new Map();
/** The client being edited (null when adding). */
let editing = null;
/** The client a regenerate or delete dialog is about. */
let target = null;
/** Called after every change, to refresh what depends on the clients. */
let changed = () => {};
/** Reports a failure outside a dialog. */
let report = () => {};
/** Says something to the status line. */
let say = () => {};

const dash = '—';

function list(values, empty) {
  return values && values.length ? values.join(', ') : empty;
}

function when(iso) {
  if (!iso) return null;
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return `${t.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function lastUsed(client) {
  if (!('last_used_at' in client)) return el('span', { title: 'This server does not report when a client was last used', text: dash });
  if (client.last_used_at === null) return el('span', { title: 'Never used', text: dash });
  return el('time', { datetime: client.last_used_at, text: when(client.last_used_at) });
}

function row(client) {
  const name = client.name || client.id;
  const active = client.status === 'active';
  const button = (text, label, handler, cls) =>
    el('button', { type: 'button', class: cls, 'aria-label': `${label} ${name}`, onclick: handler, text });
  return el('tr', { 'data-client': client.id },
    el('th', { scope: 'row' }, el('span', { class: 'name', text: name }), el('br'), el('code', { class: 'id', text: client.id })),
    el('td', { text: client.kind }),
    el('td', { text: list(client.roles, dash) }),
    el('td', {}, el('span', { class: `badge ${active ? 'ok' : 'off'}`, text: client.status })),
    el('td', { class: 'wrap', text: client.kind === 'JavaScript' ? list(client.allowed_origins, 'any') : dash }),
    el('td', { class: 'wrap', text: list(client.allowed_ips, 'any') }),
    el('td', {}, client.expires_at ? el('time', { datetime: client.expires_at, text: when(client.expires_at) }) : 'never'),
    el('td', {}, lastUsed(client)),
    el('td', { class: 'row-actions' },
      button('Edit', 'Edit', () => openEdit(client.id)),
      button(active ? 'Deactivate' : 'Activate', active ? 'Deactivate' : 'Activate', () => setStatus(client.id, active ? 'inactive' : 'active')),
      button('Regenerate', 'Regenerate the credential of', () => openRegenerate(client.id)),
      button('Delete', 'Delete', () => openDelete(client.id), 'danger')),
  );
}

/** Reads the clients and draws the table. */
export async function refresh() {
  const read = await allClients();
  clients = new Map(read.map((c) => [c.id, c]));
  const body = byId('clients').tBodies[0];
  body.replaceChildren(...read.map(row));
  if (read.length === 0) body.append(el('tr', {}, el('td', { colspan: 9, text: 'No clients yet.' })));
  return read;
}

/** The clients as last read. */
export function known() {
  return [...clients.values()];
}

// --- the credential shown once -----------------------------------------------------------

function showCredential(view) {
  const panel = byId('credential');
  byId('credential-client').textContent = view.name || view.id;
  const native = view.kind === 'NativeConfidential';
  byId('credential-label').textContent = native ? 'Client secret' : 'API key';
  byId('credential-value').textContent = native ? view.client_secret : view.api_key;
  byId('credential-id').textContent = native ? view.client_id : '';
  show(byId('credential-id-row'), native);
  byId('credential-copied').textContent = '';
  show(panel, true);
  panel.focus();
}

function hideCredential() {
  byId('credential-value').textContent = '';
  byId('credential-id').textContent = '';
  byId('credential-copied').textContent = '';
  show(byId('credential'), false);
}

async function copyCredential() {
  const value = byId('credential-value').textContent;
  try {
    await navigator.clipboard.writeText(value);
    byId('credential-copied').textContent = 'Copied.';
  } catch {
    // No clipboard (an insecure origin, or permission refused): select it for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents(byId('credential-value'));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    byId('credential-copied').textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
  }
}

// --- errors -------------------------------------------------------------------------------

/** Shows `error` in the box `box`, and marks the field it names in `form`. */
export function showError(box, error, form) {
  for (const marked of document.querySelectorAll('[aria-invalid="true"]')) marked.removeAttribute('aria-invalid');
  if (!error) {
    box.replaceChildren();
    show(box, false);
    return;
  }
  const parts = [];
  if (error instanceof ApiError) {
    parts.push(el('strong', { text: `${error.status}${error.error ? ` ${error.error}` : ''}: ` }), error.description);
    if (error.field) parts.push(el('span', { class: 'field-name', text: ` (field: ${error.field})` }));
    if (error.status === 412) parts.push(el('p', { text: 'The table has been read again: check the client and try again.' }));
  } else {
    parts.push(String(error.message || error));
  }
  box.replaceChildren(...parts);
  show(box, true);
  const field = error.field && form ? form.querySelector(`#f-${CSS.escape(error.field)}`) : null;
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.setAttribute('aria-errormessage', box.id);
    (field.matches('fieldset') ? field.querySelector('input') || field : field).focus();
  } else {
    box.focus?.();
  }
}

/**
 * A change in a dialog failed: a stale ETag closes the dialog (the table is read again and
 * the page says so); anything else is shown in the dialog, at the field it names.
 */
function failed(error, dialog, box, form) {
  if (error instanceof ApiError && error.status === 412) {
    byId(dialog).close();
    report(error);
  } else {
    showError(box, error, form);
  }
}

async function afterFailure(error) {
  if (error instanceof ApiError && (error.status === 412 || error.status === 404)) {
    try {
      await refresh();
    } catch {
      // Shown by the caller's error already.
    }
  }
}

// --- the client form -----------------------------------------------------------------------

function lines(text) {
  return text.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
}

function grantsOf(text) {
  return lines(text).map((line) => {
    const at = line.lastIndexOf(':');
    const item = at < 0 ? line : line.slice(0, at).trim();
    const actions = at < 0 ? ['read'] : line.slice(at + 1).split(/[ ,]+/).map((a) => a.trim()).filter(Boolean);
    return { item, actions };
  });
}

function grantsText(grants) {
  return (grants || []).map((g) => `${g.item}: ${g.actions.join(', ')}`).join('\n');
}

/** `2026-12-31T23:59` read as UTC, as RFC 3339; empty is null. */
function expiresOf(value) {
  return value ? `${value}:00Z` : null;
}

function expiresInput(iso) {
  if (!iso) return '';
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? '' : t.toISOString().slice(0, 16);
}

function numberOf(input) {
  const v = input.value.trim();
  return v === '' ? null : Number(v);
}

function drawRoles(selected, follow) {
  const box = byId('f-roles-list');
  box.replaceChildren(...accountRoles.map((role) => el('div', { class: 'check' },
    el('input', { type: 'checkbox', id: `f-role-${role}`, value: role, checked: selected.includes(role), disabled: follow }),
    el('label', { for: `f-role-${role}`, text: role }))));
  byId('f-roles-follow').checked = follow;
}

function fillForm(client) {
  const form = byId('client-form');
  form.reset();
  byId('f-name').value = client ? client.name : '';
  byId('f-kind').value = client ? client.kind : 'JavaScript';
  byId('f-kind').disabled = Boolean(client);
  byId('f-status').value = client ? client.status : 'active';
  byId('f-expires_at').value = expiresInput(client && client.expires_at);
  drawRoles(client ? client.roles || [] : accountRoles, !client);
  byId('f-allowed_origins').value = client ? client.allowed_origins.join('\n') : '';
  byId('f-allow_missing_origin').checked = Boolean(client && client.allow_missing_origin);
  byId('f-allowed_ips').value = client ? client.allowed_ips.join('\n') : '';
  const limited = Boolean(client && client.privileges);
  byId('f-privileges-limit').checked = limited;
  byId('f-privileges').value = limited ? client.privileges.join('\n') : '';
  byId('f-grants').value = client ? grantsText(client.grants) : '';
  byId('f-per_second').value = client && client.rate_limit ? client.rate_limit.per_second : '';
  byId('f-burst').value = client && client.rate_limit && client.rate_limit.burst ? client.rate_limit.burst : '';
  for (const box of byId('f-shadow').querySelectorAll('input')) box.checked = Boolean(client && client.shadow.includes(box.value));
}

/** The form as the admin API's NewClient (adding) or ClientPatch (editing) body. */
function formBody() {
  const body = {
    name: byId('f-name').value.trim(),
    status: byId('f-status').value,
    allowed_origins: lines(byId('f-allowed_origins').value),
    allow_missing_origin: byId('f-allow_missing_origin').checked,
    allowed_ips: lines(byId('f-allowed_ips').value),
    expires_at: expiresOf(byId('f-expires_at').value),
    privileges: byId('f-privileges-limit').checked ? lines(byId('f-privileges').value) : null,
    grants: grantsOf(byId('f-grants').value),
    shadow: [...byId('f-shadow').querySelectorAll('input:checked')].map((b) => b.value),
  };
  if (byId('f-roles-follow').checked) body.roles = null;
  else body.roles = [...byId('f-roles-list').querySelectorAll('input:checked')].map((b) => b.value);
  const perSecond = numberOf(byId('f-per_second'));
  const burst = numberOf(byId('f-burst'));
  body.rate_limit = perSecond === null && burst === null ? null : { per_second: perSecond, ...(burst === null ? {} : { burst }) };
  if (!editing) body.kind = byId('f-kind').value;
  return body;
}

function openAdd() {
  editing = null;
  fillForm(null);
  byId('client-dialog-title').textContent = 'Add a client';
  byId('client-save').textContent = 'Add';
  showError(byId('client-error'), null);
  byId('client-dialog').showModal();
  byId('f-name').focus();
}

function openEdit(id) {
  const client = clients.get(id);
  if (!client) return;
  editing = client;
  fillForm(client);
  byId('client-dialog-title').textContent = `Edit ${client.name || client.id}`;
  byId('client-save').textContent = 'Save';
  showError(byId('client-error'), null);
  byId('client-dialog').showModal();
  byId('f-name').focus();
}

async function saveClient(event) {
  event.preventDefault();
  const form = byId('client-form');
  const box = byId('client-error');
  if (!byId('f-name').value.trim()) {
    showError(box, { message: 'A client needs a name.', field: 'name' }, form);
    return;
  }
  try {
    if (editing) {
      const answer = await call('PATCH', `/clients/${encodeURIComponent(editing.id)}`, { body: formBody(), ifMatch: editing.etag });
      byId('client-dialog').close();
      say(`Saved ${answer.body.name}.`);
    } else {
      const answer = await call('POST', '/clients', { body: formBody() });
      byId('client-dialog').close();
      say(`Added ${answer.body.name}: copy its ${answer.body.kind === 'JavaScript' ? 'key' : 'secret'} now.`);
      showCredential(answer.body);
    }
    await changed();
  } catch (error) {
    failed(error, 'client-dialog', box, form);
    await afterFailure(error);
  }
}

async function setStatus(id, status) {
  const client = clients.get(id);
  if (!client) return;
  try {
    await call('PATCH', `/clients/${encodeURIComponent(id)}`, { body: { status }, ifMatch: client.etag });
    say(`${client.name || id} is ${status} now.`);
    await changed();
  } catch (error) {
    report(error);
    await afterFailure(error);
  }
}

function openRegenerate(id) {
  target = clients.get(id);
  if (!target) return;
  byId('regenerate-client').textContent = target.name || target.id;
  byId('regenerate-form').reset();
  showError(byId('regenerate-error'), null);
  byId('regenerate-dialog').showModal();
  byId('f-grace_seconds').focus();
}

async function regenerate(event) {
  event.preventDefault();
  const grace = numberOf(byId('f-grace_seconds'));
  try {
    const answer = await call('POST', `/clients/${encodeURIComponent(target.id)}/regenerate`, {
      body: grace === null ? {} : { grace_seconds: grace },
      ifMatch: target.etag,
    });
    byId('regenerate-dialog').close();
    say(`Regenerated the credential of ${answer.body.name}: copy it now.`);
    showCredential(answer.body);
    await changed();
  } catch (error) {
    failed(error, 'regenerate-dialog', byId('regenerate-error'), byId('regenerate-form'));
    await afterFailure(error);
  }
}

function openDelete(id) {
  target = clients.get(id);
  if (!target) return;
  byId('delete-client').textContent = target.name || target.id;
  showError(byId('delete-error'), null);
  byId('delete-dialog').showModal();
}

async function remove(event) {
  event.preventDefault();
  try {
    await call('DELETE', `/clients/${encodeURIComponent(target.id)}`, { ifMatch: target.etag });
    byId('delete-dialog').close();
    say(`Deleted ${target.name || target.id}.`);
    await changed();
  } catch (error) {
    failed(error, 'delete-dialog', byId('delete-error'), null);
    await afterFailure(error);
  }
}

/** Wires the table's controls; `roles` are the account's, `hooks` the page's. */
export function setUp(roles, hooks) {
  accountRoles = roles;
  changed = hooks.changed;
  report = hooks.report;
  say = hooks.say;
}

/** Called once: the listeners of the static controls. */
export function wire() {
  byId('add-client').addEventListener('click', openAdd);
  byId('client-form').addEventListener('submit', saveClient);
  byId('regenerate-form').addEventListener('submit', regenerate);
  byId('delete-form').addEventListener('submit', remove);
  byId('credential-copy').addEventListener('click', copyCredential);
  byId('credential-done').addEventListener('click', hideCredential);
  byId('f-roles-follow').addEventListener('change', (e) => {
    for (const box of byId('f-roles-list').querySelectorAll('input')) {
      box.disabled = e.target.checked;
      if (e.target.checked) box.checked = true;
    }
  });
  for (const close of document.querySelectorAll('dialog [data-close]')) {
    close.addEventListener('click', () => close.closest('dialog').close());
  }
}

/** Forgets everything read (signing out). */
export function forget() {
  clients = new Map();
  editing = null;
  target = null;
  hideCredential();
  byId('clients').tBodies[0].replaceChildren();
  for (const dialog of document.querySelectorAll('dialog')) dialog.close();
}
