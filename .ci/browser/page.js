// Loads the example server's tiles with MapLibre GL JS and Leaflet, as a web map on another
// origin would, and records what reaches the page: tiles drawn, and for refusals their
// status, JSON error code and Retry-After. The runner (run.mjs) reads `window.result`.
'use strict';
const q = new URLSearchParams(location.search);
const server = q.get('server');
const key = q.get('key');
const label = q.get('case');
const tiles = `${server}/tiles/{z}/{x}/{y}.png?apikey=${encodeURIComponent(key)}`;
const result = {
  case: label,
  origin: location.origin,
  probes: [],
  maplibre: { loaded: 0, errors: [] },
  leaflet: { loaded: 0, errors: [] },
  done: false,
};
document.getElementById('title').textContent = `case ${label}, page on ${location.origin}`;
document.getElementById('ml-version').textContent = maplibregl.getVersion();
document.getElementById('lf-version').textContent = L.version;

// What an application can read of an answer with fetch: the status, the JSON error code,
// and Retry-After (readable only when the server exposes it to this origin).
async function probe(z, x, y) {
  const url = tiles.replace('{z}', z).replace('{x}', x).replace('{y}', y);
  try {
    const res = await fetch(url);
    const type = res.headers.get('content-type') || '';
    const body = type.includes('json') ? await res.json() : null;
    return {
      status: res.status,
      error: body && body.error,
      retryAfter: res.headers.get('Retry-After'),
      remaining: res.headers.get('RateLimit-Remaining'),
    };
  } catch (e) {
    return { status: 0, error: String(e) };
  }
}

function show() {
  const { probes, ...rest } = result;
  const { errors, ...maplibre } = rest.maplibre;
  const shown = {
    ...rest,
    maplibre: { ...maplibre, errors: errors.length, firstError: errors[0] },
    fetches: probes.length,
    lastFetch: probes[probes.length - 1],
  };
  document.getElementById('out').textContent = JSON.stringify(shown, null, 1);
}

async function main() {
  if (label === 'quota') {
    // Spend the account's daily quota (a tile costs a tenth of a transaction), on tiles
    // of a zoom level the maps do not show, so that none of theirs come from the cache.
    for (let i = 0; i < 30; i++) {
      const p = await probe(5, i, 7);
      result.probes.push(p);
      if (p.status !== 200) break;
    }
  } else {
    result.probes.push(await probe(1, 0, 0));
  }
  show();

  const mlDone = new Promise((resolve) => {
    const map = new maplibregl.Map({
      container: 'ml',
      style: {
        version: 8,
        sources: { base: { type: 'raster', tiles: [tiles], tileSize: 256 } },
        layers: [{ id: 'base', type: 'raster', source: 'base' }],
      },
      center: [0, 0],
      zoom: 0.5,
      fadeDuration: 0,
      attributionControl: false,
      canvasContextAttributes: { preserveDrawingBuffer: true },
    });
    map.on('data', (e) => {
      if (e.dataType === 'source' && e.tile && e.tile.state === 'loaded') result.maplibre.loaded++;
    });
    map.on('error', async (e) => {
      const err = e.error || {};
      // The message holds the tile's URL: its key is not shown (screenshots are artifacts).
      const message = String(err.message).replace(/apikey=[^&\s"]*/g, 'apikey=…');
      const entry = { status: err.status, message };
      result.maplibre.errors.push(entry);
      if (err.body && typeof err.body.text === 'function') {
        try { entry.error = JSON.parse(await err.body.text()).error; } catch (_) { /* not JSON */ }
      }
    });
    map.once('idle', () => resolve());
  });

  const lfDone = new Promise((resolve) => {
    const map = L.map('lf', { attributionControl: false, fadeAnimation: false }).setView([0, 0], 1);
    const layer = L.tileLayer(tiles, { crossOrigin: true, maxZoom: 22 });
    layer.on('tileload', () => result.leaflet.loaded++);
    layer.on('tileerror', (e) => result.leaflet.errors.push({ tile: e.coords && `${e.coords.z}/${e.coords.x}/${e.coords.y}` }));
    layer.on('load', () => resolve());
    layer.addTo(map);
  });

  const timeout = new Promise((resolve) => setTimeout(resolve, 15000));
  await Promise.race([Promise.all([mlDone, lfDone]), timeout]);
  // Let MapLibre's error bodies be read.
  await new Promise((resolve) => setTimeout(resolve, 300));
  result.done = true;
  show();
}

main().catch((e) => { result.failure = String(e); result.done = true; show(); });
window.result = result;
