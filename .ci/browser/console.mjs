// Drives the account console (/console/ of the example server) in headless Chromium for
// .ci/console.sh: sign in with the demo NativeConfidential client, add a JavaScript client
// with an allowed origin, read its key from the page, fetch a tile with it (200), deactivate
// it in the page, and the same key is refused (401); then edit, a refused field, regenerate
// with a grace period, delete, the by-API chart and the quota gauge, and a 401 that asks to
// sign in again. Any failure, a script error or a CSP violation exits non-zero.
//
// node console.mjs <server URL> <screenshot dir> <README screenshot path>
// The demo client's id and secret come in CONSOLE_CLIENT_ID and CONSOLE_CLIENT_SECRET.
import { mkdirSync } from 'node:fs';
import { chromium, request } from 'playwright-core';

const [server, shots, readmeShot] = process.argv.slice(2);
const clientId = process.env.CONSOLE_CLIENT_ID;
const clientSecret = process.env.CONSOLE_CLIENT_SECRET;
if (!server || !shots || !clientId || !clientSecret) {
  console.error('usage: CONSOLE_CLIENT_ID=… CONSOLE_CLIENT_SECRET=… node console.mjs <server> <shots> [readme.png]');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const origin = 'https://maps.console-ci.test';

const problems = [];
const check = (ok, what) => {
  if (ok) console.log(`console: ok ${what}`);
  else {
    console.log(`console: FAIL ${what}`);
    problems.push(what);
  }
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error') pageErrors.push(`console error: ${m.text()}`);
});
const http = await request.newContext();
const tile = async (key, from = origin) =>
  (await http.get(`${server}/tiles/0/0/0.png`, { headers: { 'X-Api-Key': key, Origin: from } })).status();
// The credential on screen is masked in every screenshot: the artifacts hold no key.
const shot = (name, options = {}) =>
  page.screenshot({ path: `${shots}/${name}.png`, fullPage: true, mask: [page.locator('#credential-value')], ...options });
const row = (id) => page.locator(`tr[data-client="${id}"]`);

try {
  // --- the page and its headers
  const answer = await page.goto(`${server}/console/`);
  const csp = answer.headers()['content-security-policy'] || '';
  check(answer.status() === 200 && csp.startsWith("default-src 'self'") && csp.includes("frame-ancestors 'none'"),
    `the page is served with its CSP (${answer.status()}, ${csp})`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });

  // --- a wrong secret is refused and says so
  await page.fill('#client-id', clientId);
  await page.fill('#client-secret', 'gis_secret_wrong');
  await page.click('#sign-in-button');
  await page.waitForSelector('#sign-in-error:not([hidden])');
  check(/refused/i.test(await page.textContent('#sign-in-error')), 'a wrong secret is refused with the server\'s words');
  check(await page.inputValue('#client-secret') === '', 'the secret field is emptied once sent');

  // --- sign in
  await page.fill('#client-id', clientId);
  await page.fill('#client-secret', clientSecret);
  await page.click('#sign-in-button');
  await page.waitForSelector('#app:not([hidden])', { timeout: 15000 });
  await page.waitForSelector('#clients tbody tr[data-client]');
  const stored = await page.evaluate(() => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
    html: document.documentElement.outerHTML,
  }));
  check(stored.local === 0 && stored.session === 0 && stored.cookie === '' && (await context.cookies()).length === 0,
    'nothing is kept in storage or cookies');
  check(!stored.html.includes(clientSecret), 'the secret is nowhere in the page');
  const demoRows = await page.locator('#clients tbody tr[data-client]').count();
  check(demoRows >= 2, `the demo account's clients are listed (${demoRows})`);
  check((await page.textContent('#clients thead')).includes('Last used'), 'the table has a Last used column');

  // --- a refused field is shown with the API's message and the field's name
  await page.click('#add-client');
  await page.fill('#f-name', 'Refused');
  await page.fill('#f-allowed_ips', 'not-an-ip-rule');
  await page.click('#client-save');
  await page.waitForSelector('#client-error:not([hidden])');
  const refusal = await page.textContent('#client-error');
  check(refusal.includes('allowed_ips') && refusal.includes('400'), `an invalid IP rule is refused naming the field (${refusal.trim()})`);
  check(await page.getAttribute('#f-allowed_ips', 'aria-invalid') === 'true', 'the field at fault is marked invalid');
  await shot('refused-field');

  // --- add a JavaScript client with an allowed origin; read its key once
  await page.fill('#f-name', 'CI web map');
  await page.fill('#f-allowed_ips', '');
  await page.selectOption('#f-kind', 'JavaScript');
  await page.fill('#f-allowed_origins', origin);
  await page.click('#client-save');
  await page.waitForSelector('#credential:not([hidden])');
  const key = (await page.textContent('#credential-value')).trim();
  check(key.length > 20, 'the new key is shown');
  check((await page.textContent('#credential')).includes('only a digest'), 'the page says only digests are stored');
  await shot('created');
  const created = page.locator('#clients tbody tr', { hasText: 'CI web map' });
  await created.waitFor();
  const id = await created.getAttribute('data-client');
  check((await created.textContent()).includes(origin), 'the new client shows its allowed origin');

  // --- the key works from its origin, not from another
  check(await tile(key) === 200, 'a tile with the new key from its origin is 200');
  check(await tile(key, 'https://elsewhere.example') === 403, 'the same key from another origin is 403');
  for (let i = 0; i < 4; i++) await tile(key);

  // --- copying, then hiding the key: it is gone from the page
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server });
  await page.click('#credential-copy');
  await page.waitForFunction(() => document.getElementById('credential-copied').textContent !== '');
  await page.click('#credential-done');
  check(!(await page.content()).includes(key), 'once hidden, the key is nowhere in the page');

  // --- deactivate in the page: the same key is refused
  await row(id).getByRole('button', { name: 'Deactivate CI web map' }).click();
  await row(id).locator('.badge', { hasText: 'inactive' }).waitFor();
  check(await tile(key) === 401, 'after deactivating it in the page, the same key is 401');

  // --- edit (If-Match from the table), activate again
  await row(id).getByRole('button', { name: 'Edit CI web map' }).click();
  await page.fill('#f-name', 'CI web map, renamed');
  await page.fill('#f-per_second', '5');
  await page.click('#client-save');
  await page.locator('#clients tbody tr', { hasText: 'CI web map, renamed' }).waitFor();
  await row(id).getByRole('button', { name: 'Activate CI web map, renamed' }).click();
  await row(id).locator('.badge', { hasText: /^active$/ }).waitFor();
  check(await tile(key) === 200, 'edited and activated again, the key works');

  // --- a stale ETag is refused (412) with the API's words, and the table is read again
  const token = (await (await http.post(`${server}/oauth/token`, {
    form: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret },
  })).json()).access_token;
  const auth = { Authorization: `Bearer ${token}` };
  const current = await http.get(`${server}/account/clients/${id}`, { headers: auth });
  const elsewhere = await http.patch(`${server}/account/clients/${id}`, {
    headers: { ...auth, 'If-Match': current.headers().etag, 'Content-Type': 'application/json' },
    data: { name: 'CI web map, renamed elsewhere' },
  });
  check(elsewhere.status() === 200, 'the client is changed elsewhere meanwhile');
  await row(id).getByRole('button', { name: 'Deactivate CI web map, renamed' }).click();
  await page.waitForSelector('#error:not([hidden])');
  const stale = await page.textContent('#error');
  check(stale.includes('412'), `a change based on a stale ETag is refused with the API's words (${stale.trim()})`);
  await page.locator('#clients tbody tr', { hasText: 'CI web map, renamed elsewhere' }).waitFor();
  check(await tile(key) === 200, 'the refused change changed nothing');
  await shot('stale-etag');

  // --- regenerate with a grace period: a new key, shown once; the old one keeps working
  await row(id).getByRole('button', { name: 'Regenerate the credential of CI web map, renamed elsewhere' }).click();
  await page.fill('#f-grace_seconds', '600');
  await page.click('#regenerate-dialog button[type="submit"]');
  await page.waitForSelector('#credential:not([hidden])');
  const newKey = (await page.textContent('#credential-value')).trim();
  check(newKey !== key && newKey.length > 20, 'regenerating shows a new key');
  check(await tile(newKey) === 200 && await tile(key) === 200, 'the new key works, and the old one in its grace period');
  await page.click('#credential-done');

  // --- the server's own usage by API and last use: the tiles above were WorldStreets
  await page.waitForSelector('#chart-drawing svg rect');
  await page.waitForFunction(() => document.getElementById('chart-caption').textContent.endsWith('by API'));
  const realLegend = await page.textContent('#chart-legend');
  check(realLegend.includes('WorldStreets'), `the server's usage is charted by API (${realLegend.trim()})`);
  const thisYear = String(new Date().getUTCFullYear());
  const usedCell = await row(id).locator('time').first();
  check((await usedCell.count()) === 1 && (await usedCell.textContent()).includes(thisYear),
    'the client shows when it was last used, as the server recorded it');

  // --- the README's screenshot: the clients and today's usage
  await shot('console');
  if (readmeShot) await shot('readme', { path: readmeShot, fullPage: false });

  // --- several APIs, and the quota gauges of an account near its quotas
  await page.route('**/account/usage?*', async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    const today = body.to;
    body.days = [
      { date: today, client_id: id, requests: 30, transactions: 30, refusals: {}, shadowed: {},
        apis: { WorldStreets: { requests: 20, transactions: 20 }, Geocoder: { requests: 10, transactions: 10 } },
        origins: [], networks: [] },
    ];
    await route.fulfill({ response: res, json: body });
  });
  await page.route('**/account/quota', (route) => route.fulfill({
    json: { limit: 1000, used: 420, remaining: 580, reset: '2030-01-01T00:00:00Z',
      monthly: { limit: 20000, used: 19000, remaining: 1000, reset: '2030-02-01T00:00:00Z' } },
  }));
  await page.route('**/account/clients?*', async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    for (const c of body.clients) c.last_used_at = c.id === id ? '2030-01-01T12:34:00Z' : null;
    await route.fulfill({ response: res, json: body });
  });
  await row(id).getByRole('button', { name: 'Deactivate CI web map, renamed elsewhere' }).click();
  // The table and the chart are read again after the change: wait for the answers above.
  await page.waitForFunction(() => document.getElementById('chart-legend').textContent.includes('Geocoder')
    && document.getElementById('quota-gauges').textContent.includes('42 %')
    && document.getElementById('clients').textContent.includes('2030-01-01 12:34 UTC'), null, { timeout: 10000 })
    .catch(() => {});
  const legend = await page.textContent('#chart-legend');
  check(legend.includes('WorldStreets') && legend.includes('Geocoder'), `with apis the chart is by API (${legend.trim()})`);
  const gauges = await page.locator('#quota-gauges .gauge-svg').count();
  check(gauges === 2 && (await page.textContent('#quota-gauges')).includes('42 %'), 'the daily and monthly quota gauges are drawn');
  check((await row(id).textContent()).includes('2030-01-01 12:34 UTC'), 'last_used_at is shown when the server gives it');
  await shot('by-api');
  await page.unrouteAll();

  // --- a NativeConfidential client: its id and secret are shown once, and they work
  await page.click('#add-client');
  await page.fill('#f-name', 'CI desktop');
  await page.selectOption('#f-kind', 'NativeConfidential');
  await page.click('#f-roles-follow');
  await page.uncheck('#f-role-User');
  await page.click('#client-save');
  await page.waitForSelector('#credential:not([hidden])');
  const nativeId = (await page.textContent('#credential-id')).trim();
  const nativeSecret = (await page.textContent('#credential-value')).trim();
  check((await page.textContent('#credential-label')) === 'Client secret' && nativeId !== '', 'a new NativeConfidential client shows its client id and secret');
  const exchanged = await http.post(`${server}/oauth/token`, {
    form: { grant_type: 'client_credentials', client_id: nativeId, client_secret: nativeSecret },
  });
  check(exchanged.status() === 200, 'the secret shown is exchanged for a token');
  await page.click('#credential-done');
  const desktop = row(nativeId);
  check((await desktop.textContent()).includes('Evaluator') && !(await desktop.locator('td').nth(1).textContent()).includes('User'),
    'its roles are the ones chosen');
  await desktop.getByRole('button', { name: 'Delete CI desktop' }).click();
  await page.click('#delete-dialog button[type="submit"]');
  await desktop.waitFor({ state: 'detached' });

  // --- delete, with If-Match
  await row(id).getByRole('button', { name: 'Delete CI web map, renamed elsewhere' }).click();
  await page.click('#delete-dialog button[type="submit"]');
  await row(id).waitFor({ state: 'detached' });
  check(await tile(newKey) === 401, 'deleted in the page, its key is 401');

  // --- a 401 from the admin API (an expired token) asks to sign in again
  await page.route('**/account/**', (route) => route.fulfill({
    status: 401, json: { error: 'invalid_token', error_description: 'the access token has expired' },
  }));
  await page.locator('#clients tbody tr[data-client]').first().getByRole('button', { name: /^Edit / }).click();
  await page.click('#client-save');
  await page.waitForSelector('#sign-in:not([hidden])');
  check(/sign in again/i.test(await page.textContent('#sign-in-reason')), 'a 401 asks to sign in again');
  check(await page.locator('#clients tbody tr').count() === 0, 'signed out, the table is emptied');
  await shot('signed-out');
} catch (e) {
  problems.push(`the run stopped: ${e.message}`);
  console.log(`console: FAIL ${e.stack}`);
  await shot('failure').catch(() => {});
}
for (const p of pageErrors) {
  // Chromium logs the refusals the run asks for (the wrong secret, the invalid field, the
  // stale ETag, the expired token) as failed loads; nothing else may be logged.
  if (/Failed to load resource: .*status of (400|401|412)\b/.test(p)) continue;
  problems.push(p);
  console.log(`console: FAIL ${p}`);
}
await http.dispose();
await browser.close();
if (problems.length) {
  console.log(`console: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log('console: all checks passed');
