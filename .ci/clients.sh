#!/usr/bin/env bash
# Real clients against the example server: GDAL (WMS and TMS drivers) and headless Chromium
# with MapLibre GL JS and Leaflet from npm. What is missing is installed (Debian packages
# with apt-get, npm packages from the lock file in .ci/browser/); a client that cannot run
# fails the run, never skips it. Screenshots of the browser cases and the GDAL outputs are
# kept in target/ci-clients/ (the CI artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/ci-clients
mkdir -p "$out"
fail() { echo "clients: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------
missing=()
command -v gdalinfo >/dev/null && command -v gdal_translate >/dev/null || missing+=(gdal-bin)
command -v "${CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
    echo "clients: installing ${missing[*]} from the distribution's packages"
    [ "$(id -u)" = 0 ] || fail "${missing[*]} missing and not root: cannot install with apt-get"
    command -v apt-get >/dev/null || fail "${missing[*]} missing and no apt-get to install them"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export CHROMIUM="$(command -v "${CHROMIUM:-chromium}")" || fail "chromium is not installed"
gdalinfo --version >/dev/null || fail "gdalinfo does not run"

# The npm packages, installed from the lock file into target/ (no CDN at run time: the test
# page is served with them from a local server).
cp .ci/browser/package.json .ci/browser/package-lock.json .ci/browser/page.html \
    .ci/browser/page.js .ci/browser/run.mjs "$out/"
if ! cmp -s "$out/package-lock.json" "$out/node_modules/.package-lock.json.installed" 2>/dev/null; then
    echo "clients: npm ci (maplibre-gl, leaflet, playwright-core)"
    (cd "$out" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) \
        || fail "npm ci failed"
    cp "$out/package-lock.json" "$out/node_modules/.package-lock.json.installed"
fi

# --- the example server --------------------------------------------------------------
cargo build --quiet --example gis_server
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port)
page_port=$(free_port)
server="http://127.0.0.1:$port"
allowed_origin="http://127.0.0.1:$page_port"
# The same page from a second origin the web client does not allow.
refused_origin="http://localhost:$page_port"

cat >"$out/clients.json" <<JSON
{
  "accounts": [
    {"id": "ci", "name": "CI", "roles": ["User", "Evaluator", "Subscriber"], "daily_quota": 100000},
    {"id": "spent", "name": "One transaction a day", "roles": ["Evaluator"], "daily_quota": 1}
  ],
  "clients": [
    {"id": "desktop", "account": "ci", "name": "Desktop GIS", "kind": "NativeConfidential",
     "grants": [{"item": "parcels", "actions": ["read"]}]},
    {"id": "desktop-nogrant", "account": "ci", "name": "Desktop GIS, no grants", "kind": "NativeConfidential"},
    {"id": "tms", "account": "ci", "name": "TMS client", "kind": "JavaScript"},
    {"id": "web", "account": "ci", "name": "Web map", "kind": "JavaScript",
     "allowed_origins": ["$allowed_origin"]},
    {"id": "web-spent", "account": "spent", "name": "Web map, quota spent", "kind": "JavaScript"}
  ]
}
JSON

creds=$(mktemp)
"${CARGO_TARGET_DIR:-target}"/debug/examples/gis_server --addr "127.0.0.1:$port" \
    --clients "$out/clients.json" >"$creds" 2>"$out/server.log" &
pid=$!
# Its request log would hold the pages' URLs, API keys included: it is not kept.
python3 -m http.server "$page_port" --bind 127.0.0.1 --directory "$out" >/dev/null 2>&1 &
page_pid=$!
keys=()
# The artifacts keep no credential: the generated keys are blotted out of them at exit.
finish() {
    kill "$pid" "$page_pid" 2>/dev/null || true
    rm -f "$creds" "$out/cases.json"
    for k in "${keys[@]}"; do
        sed -i "s/$k/REDACTED/g" "$out"/*.xml "$out"/*.log "$out"/*.txt 2>/dev/null || true
    done
}
trap finish EXIT

for _ in $(seq 1 100); do
    curl -fsS "$server/health" >/dev/null 2>&1 && curl -fsS "$allowed_origin/page.html" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$server/health" >/dev/null || fail "the example server did not start"
curl -fsS "$allowed_origin/page.html" >/dev/null || fail "the page server did not start"

cred() { python3 -c 'import json,sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("client") == sys.argv[2]: print(o[sys.argv[3]]); break' "$creds" "$1" "$2"; }
token() {
    local secret
    secret=$(cred "$1" client_secret)
    curl -fsS -u "$1:$secret" -d grant_type=client_credentials "$server/oauth/token" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
desktop_token=$(token desktop)
nogrant_token=$(token desktop-nogrant)
tms_key=$(cred tms api_key)
web_key=$(cred web api_key)
spent_key=$(cred web-spent api_key)
[ -n "$desktop_token" ] && [ -n "$nogrant_token" ] && [ -n "$tms_key" ] && [ -n "$web_key" ] &&
    [ -n "$spent_key" ] || fail "missing credentials from the example server"
keys=("$tms_key" "$web_key" "$spent_key")

# --- GDAL ------------------------------------------------------------------------------
capabilities="WMS:$server/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities"
GDAL_HTTP_HEADERS="Authorization: Bearer $desktop_token" gdalinfo "$capabilities" \
    >"$out/gdalinfo-capabilities.txt" 2>&1 || fail "gdalinfo on GetCapabilities failed: $(cat "$out/gdalinfo-capabilities.txt")"
for layer in streets imagery parcels; do
    grep -q "LAYERS=$layer&" "$out/gdalinfo-capabilities.txt" ||
        fail "gdalinfo does not list layer $layer for the client granted parcels"
done
GDAL_HTTP_HEADERS="Authorization: Bearer $nogrant_token" gdalinfo "$capabilities" \
    >"$out/gdalinfo-capabilities-nogrant.txt" 2>&1 || fail "gdalinfo on GetCapabilities (no grant) failed"
grep -q "LAYERS=streets&" "$out/gdalinfo-capabilities-nogrant.txt" || fail "streets is not listed without grants"
! grep -q "LAYERS=parcels" "$out/gdalinfo-capabilities-nogrant.txt" || fail "parcels is listed to a client without its grant"
if gdalinfo "$capabilities" >"$out/gdalinfo-no-token.txt" 2>&1; then
    fail "gdalinfo opened the WMS without a credential"
fi
echo "clients: gdalinfo lists streets, imagery and parcels with the grant, not parcels without it"

# A 512x512 GetMap in EPSG:4326, whose 1.3.0 axis order is latitude first.
cat >"$out/wms.xml" <<XML
<GDAL_WMS>
  <Service name="WMS">
    <Version>1.3.0</Version>
    <ServerUrl>$server/wms?</ServerUrl>
    <Layers>streets,parcels</Layers>
    <CRS>EPSG:4326</CRS>
    <BBoxOrder>yxYX</BBoxOrder>
    <ImageFormat>image/png</ImageFormat>
  </Service>
  <DataWindow>
    <UpperLeftX>-180</UpperLeftX><UpperLeftY>90</UpperLeftY>
    <LowerRightX>180</LowerRightX><LowerRightY>-90</LowerRightY>
    <SizeX>512</SizeX><SizeY>512</SizeY>
  </DataWindow>
  <BlockSizeX>512</BlockSizeX><BlockSizeY>512</BlockSizeY>
  <BandsCount>4</BandsCount>
</GDAL_WMS>
XML
rm -f "$out/getmap.png"
GDAL_HTTP_HEADERS="Authorization: Bearer $desktop_token" CPL_DEBUG=ON \
    gdal_translate -q "$out/wms.xml" "$out/getmap.png" >"$out/gdal-getmap.log" 2>&1 ||
    fail "gdal_translate GetMap failed: $(grep -v '^HTTP: \|^GDAL' "$out/gdal-getmap.log" | head -5)"
grep -q 'width=512&height=512' "$out/gdal-getmap.log" || fail "GDAL did not send one 512x512 GetMap"
gdalinfo "$out/getmap.png" | grep -q 'Size is 512, 512' || fail "the GetMap PNG is not 512x512"
if GDAL_HTTP_HEADERS="Authorization: Bearer $nogrant_token" \
    gdal_translate -q "$out/wms.xml" "$out/getmap-nogrant.png" >"$out/gdal-getmap-nogrant.log" 2>&1; then
    fail "gdal_translate drew parcels without the grant"
fi
grep -q 'insufficient_scope' "$out/gdal-getmap-nogrant.log" ||
    fail "GDAL does not show the OGC exception of a refused layer: $(head -3 "$out/gdal-getmap-nogrant.log")"
echo "clients: gdal_translate fetched a 512x512 GetMap; without the grant GDAL shows insufficient_scope"

# A TMS tile through <GDAL_WMS>, the key in the URL.
cat >"$out/tms.xml" <<XML
<GDAL_WMS>
  <Service name="TMS">
    <ServerUrl>$server/tiles/\${z}/\${x}/\${y}.png?apikey=$tms_key</ServerUrl>
  </Service>
  <DataWindow>
    <UpperLeftX>-20037508.34</UpperLeftX><UpperLeftY>20037508.34</UpperLeftY>
    <LowerRightX>20037508.34</LowerRightX><LowerRightY>-20037508.34</LowerRightY>
    <TileLevel>3</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY>
    <YOrigin>top</YOrigin>
  </DataWindow>
  <Projection>EPSG:3857</Projection>
  <BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>
  <BandsCount>3</BandsCount>
</GDAL_WMS>
XML
rm -f "$out/tms-tile.png"
CPL_DEBUG=ON gdal_translate -q -srcwin 512 768 256 256 "$out/tms.xml" "$out/tms-tile.png" \
    >"$out/gdal-tms.log" 2>&1 || fail "gdal_translate on the TMS failed: $(head -5 "$out/gdal-tms.log")"
grep -q 'tiles/3/2/3.png?apikey=.* status = 200' "$out/gdal-tms.log" || fail "GDAL did not fetch tile 3/2/3"
gdalinfo "$out/tms-tile.png" | grep -q 'Size is 256, 256' || fail "the TMS tile is not 256x256"
echo "clients: GDAL's TMS driver fetched tile 3/2/3 with ?apikey="

# --- headless Chromium ------------------------------------------------------------------
page() { echo "$1/page.html?case=$2&server=$server&key=$3"; }
wrong_key="${web_key:0:${#web_key}-4}AAAA"
cat >"$out/cases.json" <<JSON
[
  {"name": "allowed-origin", "url": "$(page "$allowed_origin" allowed-origin "$web_key")",
   "expect": {"status": 200, "draws": true}},
  {"name": "refused-origin", "url": "$(page "$refused_origin" refused-origin "$web_key")",
   "expect": {"status": 403, "error": "access_denied"}},
  {"name": "wrong-key", "url": "$(page "$allowed_origin" wrong-key "$wrong_key")",
   "expect": {"status": 401, "error": "invalid_token"}},
  {"name": "quota", "url": "$(page "$allowed_origin" quota "$spent_key")",
   "expect": {"status": 429, "error": "quota_exceeded", "retry_after": true}}
]
JSON
(cd "$out" && node run.mjs cases.json screenshots) || fail "the browser cases failed"
echo "clients: screenshots in $out/screenshots/"
