#!/usr/bin/env bash
# The account console (/console/ of the example server) in headless Chromium: sign in with
# the demo NativeConfidential client, add a JavaScript client with an allowed origin, read
# its key from the page, fetch a tile with it (200), deactivate it in the page and see the
# same key refused (401), and the rest of what the page does (.ci/browser/console.mjs).
# Chromium, Node.js and npm are installed with apt-get when missing, the npm packages from
# the lock file in .ci/browser/; what cannot run fails the run, never skips it. Screenshots
# (credentials masked) are kept in target/ci-console/screenshots/ (the CI artifacts);
# CONSOLE_README_SHOT=docs/console.png also writes the README's screenshot.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/ci-console
mkdir -p "$out"
fail() { echo "console: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------
missing=()
command -v "${CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
    echo "console: installing ${missing[*]} from the distribution's packages"
    [ "$(id -u)" = 0 ] || fail "${missing[*]} missing and not root: cannot install with apt-get"
    command -v apt-get >/dev/null || fail "${missing[*]} missing and no apt-get to install them"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export CHROMIUM="$(command -v "${CHROMIUM:-chromium}")" || fail "chromium is not installed"

# playwright-core from the lock file shared with .ci/clients.sh.
cp .ci/browser/package.json .ci/browser/package-lock.json .ci/browser/console.mjs "$out/"
if ! cmp -s "$out/package-lock.json" "$out/node_modules/.package-lock.json.installed" 2>/dev/null; then
    echo "console: npm ci (playwright-core and the map libraries of the lock file)"
    (cd "$out" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) \
        || fail "npm ci failed"
    cp "$out/package-lock.json" "$out/node_modules/.package-lock.json.installed"
fi

# --- the example server with its demo account ------------------------------------------
cargo build --quiet --example gis_server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
server="http://127.0.0.1:$port"
creds=$(mktemp)
"${CARGO_TARGET_DIR:-target}"/debug/examples/gis_server --addr "127.0.0.1:$port" \
    >"$creds" 2>"$out/server.log" &
pid=$!
finish() {
    kill "$pid" 2>/dev/null || true
    rm -f "$creds"
}
trap finish EXIT

for _ in $(seq 1 100); do
    curl -fsS "$server/health" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$server/health" >/dev/null || fail "the example server did not start: $(tail -3 "$out/server.log")"

# The demo NativeConfidential client's id and secret, as the server printed them.
read -r client_id client_secret < <(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if "client_secret" in o: print(o["client_id"], o["client_secret"]); break' "$creds") ||
    fail "the example server printed no NativeConfidential client"

readme_shot=""
if [ -n "${CONSOLE_README_SHOT:-}" ]; then
    readme_shot="$(pwd)/$CONSOLE_README_SHOT"
fi
(cd "$out" && CONSOLE_CLIENT_ID="$client_id" CONSOLE_CLIENT_SECRET="$client_secret" \
    node console.mjs "$server" screenshots $readme_shot) || fail "the console checks failed"
echo "console: screenshots in $out/screenshots/"
