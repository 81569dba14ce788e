#!/usr/bin/env bash
# End-to-end load test of the example server on loopback: wrk at a fixed concurrency for a
# fixed time against the public /health route, a tile with an API key, a tile with a bearer
# token, and two baselines the server serves on a second loopback port
# (--unguarded-bench-addr): the example's own router with the auth layer taken out, and the
# same with the floor in its place (only the steps no API-key check can skip; see
# examples/gis_server/bench.rs). Prints, for each route, requests/s, p99 latency, the
# server's CPU time per request, and the throughput as a share of the layer-less one.
#
# The routes are measured in turn, ROUNDS times, and each figure is the median of its rounds,
# so a slow moment of the machine does not land on one route only. On a machine with two
# cores or more the server runs on CPU 0 and wrk on CPU 1 (taskset), so they do not take
# each other's time; PIN=0 turns that off.
#
#   scripts/load.sh                       # 10 rounds of 2 s per route, 32 connections
#   DURATION=10 ROUNDS=5 CONNECTIONS=64 THREADS=1 PORT=18080 scripts/load.sh
#
# Needs wrk (Debian: apt-get install -y wrk) and curl. Builds the example in release mode
# (honouring CARGO_TARGET_DIR). Sends traffic to 127.0.0.1 only (PORT and PORT+1), and
# stops the server it started when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-2}"
ROUNDS="${ROUNDS:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
PORT="${PORT:-18080}"
BASE="http://127.0.0.1:${PORT}"
BENCH="http://127.0.0.1:$((PORT + 1))"
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

"${server_cpu[@]}" "$server" --addr "127.0.0.1:${PORT}" --unguarded-bench-addr "127.0.0.1:$((PORT + 1))" \
    >"$work/credentials" 2>"$work/server.log" &
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
check "${BENCH}${TILE}"
check "${BENCH}${TILE}?apikey=${api_key}"

# The server's CPU time so far (user and system), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/${server_pid}/stat"; }
ticks_per_second="$(getconf CLK_TCK)"

# Runs wrk; prints "requests/s p99-in-ms server-CPU-µs-per-request".
run() {
    local out before after
    before="$(cpu_ticks)"
    out="$("${wrk_cpu[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")"
    after="$(cpu_ticks)"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "load.sh: non-2xx answers under load" >&2
        exit 1
    fi
    local rps p99 requests cpu
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}' <<<"$out")"
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    cpu="$(awk -v t="$((after - before))" -v hz="$ticks_per_second" -v n="$requests" 'BEGIN {print 1e6 * t / hz / n}')"
    echo "$rps $p99 $cpu"
}

pinned="not pinned"
[[ ${#server_cpu[@]} -gt 0 ]] && pinned="server on CPU 0, wrk on CPU 1"
echo "wrk: ${THREADS} thread(s), ${CONNECTIONS} connections, ${DURATION} s per route, ${ROUNDS} round(s), on $(nproc) cores (${pinned})" >&2

# The median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

routes=(health bare floor key bearer)
# Sets args to the wrk arguments of route $1.
route_args() {
    case "$1" in
        health) args=("${BASE}/health") ;;
        bare) args=("${BENCH}${TILE}") ;;
        floor) args=("${BENCH}${TILE}?apikey=${api_key}") ;;
        key) args=("${BASE}${TILE}?apikey=${api_key}") ;;
        bearer) args=(-H "Authorization: Bearer ${token}" "${BASE}${TILE}") ;;
    esac
}
# One second on each route first, not counted: connections, caches and the allocator warm.
for route in "${routes[@]}"; do
    route_args "$route"
    "${wrk_cpu[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "${args[@]}" >/dev/null
done
declare -A rps p99 cpu
for _ in $(seq 1 "$ROUNDS"); do
    for route in "${routes[@]}"; do
        route_args "$route"
        run "${args[@]}" >"$work/result"
        read -r r p c <"$work/result"
        rps[$route]+="$r "
        p99[$route]+="$p "
        cpu[$route]+="$c "
    done
done

# shellcheck disable=SC2086 # the lists are split on purpose
bare_rps="$(median ${rps[bare]})"
printf '%-32s %12s %8s %14s %9s\n' route "requests/s" "p99 ms" "CPU µs/req" "vs bare"
row() {
    local r p c
    # shellcheck disable=SC2086
    r="$(median ${rps[$2]})"
    # shellcheck disable=SC2086
    p="$(median ${p99[$2]})"
    # shellcheck disable=SC2086
    c="$(median ${cpu[$2]})"
    printf '%-32s %12.0f %8.2f %14.1f %8.1f%%\n' "$1" "$r" "$p" "$c" "$(awk -v a="$r" -v b="$bare_rps" 'BEGIN {print 100 * a / b}')"
}
row "/health (public)" health
row "tile, no layer" bare
row "tile, floor of an API-key check" floor
row "tile, API key" key
row "tile, bearer token" bearer
