#!/usr/bin/env bash
# End-to-end load test of the example server on loopback: wrk at a fixed concurrency for a
# fixed time against the public /health route, a tile with an API key, a tile with a bearer
# token, and the same tile handler mounted without the auth layer (with the same CORS layer).
# Prints requests/s and p99 latency for each, and the authenticated throughput as a share of
# the unguarded one.
#
# The routes are measured in turn, ROUNDS times, and each figure is the median of its rounds,
# so a slow moment of the machine does not land on one route only. On a machine with two
# cores or more the server runs on CPU 0 and wrk on CPU 1 (taskset), so they do not take
# each other's time; PIN=0 turns that off.
#
#   scripts/load.sh                       # 3 rounds of 5 s per route, 32 connections
#   DURATION=10 ROUNDS=5 CONNECTIONS=64 THREADS=1 PORT=18080 scripts/load.sh
#
# Needs wrk (Debian: apt-get install -y wrk) and curl. Builds the example in release mode
# (honouring CARGO_TARGET_DIR). Sends traffic to 127.0.0.1 only, and stops the server it
# started when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
PORT="${PORT:-18080}"
BASE="http://127.0.0.1:${PORT}"
TILE="/tiles/12/2103/1361.png"

server_cpu=()
wrk_cpu=()
if [[ "${PIN:-1}" != 0 && "$(nproc)" -ge 2 ]] && command -v taskset >/dev/null; then
    server_cpu=(taskset -c 0)
    wrk_cpu=(taskset -c 1)
fi

for tool in wrk curl cargo; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is not installed" >&2; exit 1; }
done

cargo build --release --example gis_server >&2
target_dir="${CARGO_TARGET_DIR:-target}"
server="${target_dir}/release/examples/gis_server"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"${server_cpu[@]}" "$server" --addr "127.0.0.1:${PORT}" --unguarded-bench-route >"$work/credentials" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "${BASE}/health" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "${BASE}/health" >/dev/null || { echo "load.sh: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

# The credentials the server printed, one JSON object per line; never echoed.
field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$work/credentials" | head -n1; }
api_key="$(field api_key)"
client_id="$(field client_id)"
client_secret="$(field client_secret)"
token="$(curl -fsS -u "${client_id}:${client_secret}" -d grant_type=client_credentials \
    "${BASE}/oauth/token" | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')"
[[ -n "$api_key" && -n "$token" ]] || { echo "load.sh: no credentials from the server" >&2; exit 1; }

# Every route must answer 200 before it is measured.
check() { [[ "$(curl -s -o /dev/null -w '%{http_code}' "$@")" == 200 ]] || { echo "load.sh: $* is not 200" >&2; exit 1; }; }
check "${BASE}/health"
check "${BASE}${TILE}?apikey=${api_key}"
check -H "Authorization: Bearer ${token}" "${BASE}${TILE}"
check "${BASE}/bench${TILE}"

# Runs wrk; prints "requests/s p99-in-ms".
run() {
    local out
    out="$("${wrk_cpu[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "load.sh: non-2xx answers under load" >&2
        exit 1
    fi
    local rps p99
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}' <<<"$out")"
    echo "$rps $p99"
}

pinned="not pinned"
[[ ${#server_cpu[@]} -gt 0 ]] && pinned="server on CPU 0, wrk on CPU 1"
echo "wrk: ${THREADS} thread(s), ${CONNECTIONS} connections, ${DURATION} s per route, ${ROUNDS} round(s), on $(nproc) cores (${pinned})" >&2

# The median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

routes=(health bare key bearer)
declare -A rps p99
for _ in $(seq 1 "$ROUNDS"); do
    for route in "${routes[@]}"; do
        case "$route" in
            health) args=("${BASE}/health") ;;
            bare) args=("${BASE}/bench${TILE}") ;;
            key) args=("${BASE}${TILE}?apikey=${api_key}") ;;
            bearer) args=(-H "Authorization: Bearer ${token}" "${BASE}${TILE}") ;;
        esac
        run "${args[@]}" >"$work/result"
        read -r r p <"$work/result"
        rps[$route]+="$r "
        p99[$route]+="$p "
    done
done

# shellcheck disable=SC2086 # the lists are split on purpose
bare_rps="$(median ${rps[bare]})"
printf '%-28s %12s %10s %10s\n' route "requests/s" "p99 ms" "vs bare"
row() {
    local r p
    # shellcheck disable=SC2086
    r="$(median ${rps[$2]})"
    # shellcheck disable=SC2086
    p="$(median ${p99[$2]})"
    printf '%-28s %12.0f %10.2f %9.1f%%\n' "$1" "$r" "$p" "$(awk -v a="$r" -v b="$bare_rps" 'BEGIN {print 100 * a / b}')"
}
row "/health (public)" health
row "tile, no layer" bare
row "tile, API key" key
row "tile, bearer token" bearer
