// The console page: signing in and out, and drawing the account once signed in.

import * as api from './api.js';
import * as clients from './clients.js';
import * as usage from './usage.js';
import { byId, show } from './dom.js';

const REASONS = {
  expired: 'Your session has expired: sign in again.',
  rejected: 'The server no longer accepts this session (the token expired or was revoked): sign in again.',
  'signed-out': 'You are signed out.',
};

function say(text) {
  byId('status').textContent = text;
}

/** Shows a failure in the page's error box; null hides it. */
function report(error) {
  const box = byId('error');
  if (!error) {
    show(box, false);
    return;
  }
  clients.showError(box, error, null);
}

async function load() {
  try {
    const read = await clients.refresh();
    await usage.refresh(read);
    report(null);
  } catch (error) {
    if (api.signedIn()) report(error);
  }
}

async function start(profile) {
  byId('who').textContent = `${profile.name} (${profile.account_id}) · signed in as ${profile.client_id}`;
  show(byId('who'), true);
  show(byId('sign-out'), true);
  show(byId('sign-in'), false);
  show(byId('app'), true);
  clients.setUp(profile.roles, { changed: load, report, say });
  say('Signed in.');
  await load();
}

function stop(reason) {
  clients.forget();
  usage.forget();
  report(null);
  say('');
  show(byId('app'), false);
  show(byId('who'), false);
  show(byId('sign-out'), false);
  show(byId('sign-in'), true);
  const notice = byId('sign-in-reason');
  notice.textContent = REASONS[reason] || REASONS['signed-out'];
  show(notice, true);
  byId('client-id').focus();
}

async function signIn(event) {
  event.preventDefault();
  const idInput = byId('client-id');
  const secretInput = byId('client-secret');
  const error = byId('sign-in-error');
  const id = idInput.value.trim();
  const secret = secretInput.value;
  // The secret leaves the form at once: it is sent once and kept nowhere.
  secretInput.value = '';
  show(error, false);
  if (!id || !secret) {
    error.textContent = 'Give the client id and the client secret.';
    show(error, true);
    (id ? secretInput : idInput).focus();
    return;
  }
  const button = byId('sign-in-button');
  button.disabled = true;
  try {
    await api.signIn(id, secret);
    const profile = await api.call('GET', '/profile');
    show(byId('sign-in-reason'), false);
    await start(profile.body);
  } catch (e) {
    api.signOut();
    error.textContent = e.status === 400 || e.status === 401
      ? `Sign-in refused: ${e.description}`
      : `Sign-in failed: ${e.message}`;
    show(error, true);
    secretInput.focus();
  } finally {
    button.disabled = false;
  }
}

async function main() {
  clients.wire();
  byId('sign-in-form').addEventListener('submit', signIn);
  byId('sign-out').addEventListener('click', () => api.signOut());
  api.events.addEventListener('signedout', (e) => stop(e.detail.reason));
  try {
    await api.loadConfig();
  } catch {
    // The defaults stand.
  }
  document.body.dataset.ready = 'true';
}

main();
