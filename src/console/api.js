// The console's only link to the server: the token exchange and the admin API calls.
//
// The access token lives in the `session` variable of this module and nowhere else: never
// in web storage, a database of the browser or a cookie. The client secret is sent once to
// the token endpoint and not kept. A 401 from the admin API (an expired or revoked token)
// ends the session and tells the page through the `signedout` event.

/** Where the requests go, read from config.json. */
let config = { token_endpoint: '/oauth/token', admin_api: '/account' };

/** { token, expiresAt (ms), clientId } while signed in, null otherwise. */
let session = null;
let expiryTimer = 0;

/** Fired on `events` when the session ends: detail.reason says why. */
export const events = new EventTarget();

/** An answer of the server that is not a success, with its JSON error when it had one. */
export class ApiError extends Error {
  constructor(status, body) {
    const description = (body && body.error_description) || `the server answered ${status}`;
    super(description);
    this.status = status;
    this.error = (body && body.error) || '';
    this.description = description;
    this.field = (body && body.field) || '';
  }
}

/** Reads config.json (beside the page). */
export async function loadConfig() {
  const res = await fetch('config.json', { cache: 'no-cache' });
  if (res.ok) config = await res.json();
}

export function signedIn() {
  return session !== null && Date.now() < session.expiresAt;
}

export function clientId() {
  return session ? session.clientId : '';
}

function endSession(reason) {
  const was = session !== null;
  session = null;
  clearTimeout(expiryTimer);
  if (was) events.dispatchEvent(new CustomEvent('signedout', { detail: { reason } }));
}

/** Ends the session (the token is forgotten; it expires on its own at the server). */
export function signOut() {
  endSession('signed-out');
}

async function bodyOf(res) {
  const type = res.headers.get('content-type') || '';
  if (!type.includes('json')) return null;
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/**
 * Exchanges a client id and secret for an access token (client_credentials grant,
 * client_secret_post). Only the token is kept.
 */
export async function signIn(id, secret) {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret });
  const res = await fetch(config.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form,
    cache: 'no-store',
    credentials: 'omit',
  });
  const body = await bodyOf(res);
  if (!res.ok || !body || typeof body.access_token !== 'string') throw new ApiError(res.status, body);
  const lifetime = Number(body.expires_in) > 0 ? Number(body.expires_in) * 1000 : 300000;
  session = { token: body.access_token, expiresAt: Date.now() + lifetime, clientId: id };
  clearTimeout(expiryTimer);
  expiryTimer = setTimeout(() => endSession('expired'), lifetime);
}

/**
 * Calls the admin API: `path` below it, a JSON `body` if any, the ETag an `If-Match`
 * precondition is based on if any. Answers { status, etag, body }; throws ApiError.
 */
export async function call(method, path, { body, ifMatch } = {}) {
  if (!signedIn()) {
    endSession('expired');
    throw new ApiError(401, { error: 'invalid_token', error_description: 'Your session has ended: sign in again.' });
  }
  const headers = { Authorization: `Bearer ${session.token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (ifMatch) headers['If-Match'] = ifMatch;
  const res = await fetch(config.admin_api + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const answer = await bodyOf(res);
  if (res.status === 401) {
    endSession('rejected');
    throw new ApiError(401, answer);
  }
  if (!res.ok) throw new ApiError(res.status, answer);
  return { status: res.status, etag: res.headers.get('etag'), body: answer };
}

/** Every client of the account, following the pages of GET /clients. */
export async function allClients() {
  const clients = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: '1000' });
    if (cursor) query.set('cursor', cursor);
    const page = await call('GET', `/clients?${query}`);
    clients.push(...page.body.clients);
    cursor = page.body.next;
  } while (cursor);
  return clients;
}
