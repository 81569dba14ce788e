// Drives headless Chromium through the browser cases of .ci/clients.sh: one page per case,
// its result checked and a screenshot of it kept. Exits non-zero on any failure.
//
// node run.mjs <cases.json> <screenshot dir>
// cases.json: [{"name", "url", "expect": {"status", "error", "retry_after", "draws"}}]
import { readFileSync, mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [casesFile, shots] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
});
let failed = 0;
for (const c of cases) {
  const page = await browser.newPage({ viewport: { width: 820, height: 720 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(c.url);
  await page.waitForFunction(() => window.result && window.result.done, null, { timeout: 30000 });
  const r = await page.evaluate(() => window.result);
  await page.screenshot({ path: `${shots}/${c.name}.png`, fullPage: true });
  const e = c.expect;
  const last = r.probes[r.probes.length - 1] || {};
  if (r.failure) problems.push(`the page failed: ${r.failure}`);
  if (last.status !== e.status) problems.push(`fetch got ${last.status}, expected ${e.status}`);
  if (e.error && last.error !== e.error) problems.push(`fetch read error ${last.error}, expected ${e.error}`);
  if (e.retry_after && !(Number(last.retryAfter) > 0)) problems.push(`Retry-After not readable: ${last.retryAfter}`);
  if (e.draws) {
    if (r.maplibre.loaded === 0 || r.maplibre.errors.length) problems.push(`MapLibre drew ${r.maplibre.loaded} tiles with errors ${JSON.stringify(r.maplibre.errors)}`);
    if (r.leaflet.loaded === 0 || r.leaflet.errors.length) problems.push(`Leaflet drew ${r.leaflet.loaded} tiles with ${r.leaflet.errors.length} errors`);
  } else {
    // MapLibre hands the page the status and the body of each refused tile.
    const seen = r.maplibre.errors.filter((x) => x.status === e.status && x.error === e.error);
    if (seen.length === 0) problems.push(`MapLibre saw no ${e.status} ${e.error}: ${JSON.stringify(r.maplibre.errors)}`);
    if (r.maplibre.loaded !== 0) problems.push(`MapLibre drew ${r.maplibre.loaded} refused tiles`);
    if (r.leaflet.loaded !== 0 || r.leaflet.errors.length === 0) problems.push(`Leaflet drew ${r.leaflet.loaded} tiles, ${r.leaflet.errors.length} errors`);
  }
  const summary = `maplibre ${r.maplibre.loaded} tiles / ${r.maplibre.errors.length} errors, leaflet ${r.leaflet.loaded} / ${r.leaflet.errors.length}, fetch ${last.status} ${last.error || ''} retry-after ${last.retryAfter}`;
  if (problems.length) {
    failed++;
    console.log(`browser: FAIL ${c.name} (${summary})`);
    for (const p of problems) console.log(`  ${p}`);
  } else {
    console.log(`browser: ok ${c.name} (${summary})`);
  }
  await page.close();
}
await browser.close();
process.exit(failed ? 1 : 0);
