#!/usr/bin/env bash
# Starts the example server on a free loopback port, checks the public route, a tile with
# the printed demo API key (in the query and in the X-Api-Key header), refusals with their
# CORS header and their log lines on stderr, then the load test's baselines on a second
# port, then stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --example gis_server
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port)
bench_port=$(free_port)
out=$(mktemp)
err=$(mktemp)
# With the load test's baselines on a second port, to check that flag too.
env -u RUST_LOG "${CARGO_TARGET_DIR:-target}"/debug/examples/gis_server --addr "127.0.0.1:$port" \
    --unguarded-bench-addr "127.0.0.1:$bench_port" >"$out" 2>"$err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out" "$err"' EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done

fail() { echo "smoke: $*" >&2; exit 1; }
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

[ "$(status "http://127.0.0.1:$port/health")" = 200 ] || fail "/health is not 200"
key=$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if "api_key" in o: print(o["api_key"]); break' "$out")
[ -n "$key" ] || fail "no api_key line on stdout"
[ "$(status "http://127.0.0.1:$port/tiles/3/4/2.png?apikey=$key")" = 200 ] || fail "tile with the demo key is not 200"
[ "$(status "http://127.0.0.1:$port/tiles/3/4/2.png")" = 401 ] || fail "tile without a key is not 401"
[ "$(status "http://127.0.0.1:$port/geocode?q=paris&apikey=$key")" = 403 ] || fail "geocode with a JavaScript key is not 403"
[ "$(status -H "X-Api-Key: $key" "http://127.0.0.1:$port/tiles/3/4/2.png")" = 200 ] || fail "tile with the key in X-Api-Key is not 200"
curl -s -o /dev/null -D - -H 'Origin: https://maps.example.com' "http://127.0.0.1:$port/tiles/3/4/2.png" \
  | grep -qi '^access-control-allow-origin: \*' || fail "a 401 carries no Access-Control-Allow-Origin"
[ "$(status "http://127.0.0.1:$bench_port/tiles/3/4/2.png")" = 200 ] || fail "the layer-less baseline tile is not 200"
[ "$(status "http://127.0.0.1:$bench_port/tiles/3/4/2.png?apikey=not-a-key")" = 401 ] || fail "the floor baseline lets an unknown key through"
grep -q 'gis_server::refusal: refused status=401' "$err" || fail "no log line for a refusal on stderr"
grep -qF "$key" "$err" && fail "the API key is in the logs"
echo "smoke: 10 passed, 0 failed"
