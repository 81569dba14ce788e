#!/usr/bin/env bash
# Signed tile URLs behind a real cache: nginx (proxy_cache, from the distribution's packages
# when missing) as an unprivileged process on a loopback port, in front of the example
# server; .ci/cdn_check.py then checks that one signed tile reaches the origin once, that a
# deactivated client's uncached tile is refused through the cache, and that a cached tile
# goes no further than the URL's expiry. It fails, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "cdn: $*" >&2; exit 1; }

nginx_bin=$(command -v nginx || true)
[ -n "$nginx_bin" ] || [ ! -x /usr/sbin/nginx ] || nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
    echo "cdn: installing nginx-light from the distribution's packages"
    sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo -n)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nginx-light >/dev/null
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
fi
[ -x "$nginx_bin" ] || fail "nginx could not be installed"

cargo build --quiet --example gis_server
target=$(realpath "${CARGO_TARGET_DIR:-target}")
prefix="$target/cdn-nginx"
rm -rf "$prefix"
mkdir -p "$prefix"/{cache,logs,temp/{client,proxy,fastcgi,uwsgi,scgi}}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
origin=$(free_port)
port=$(free_port)
out="$prefix/server.out"

# Expiries rounded up to 5 seconds, so the run stays short.
"$target"/debug/examples/gis_server --addr "127.0.0.1:$origin" --tile-url-bucket-seconds 5 \
    >"$out" 2>"$prefix/server.err" &
server_pid=$!
nginx_pid=
cleanup() {
    [ -z "$nginx_pid" ] || kill "$nginx_pid" 2>/dev/null || true
    kill "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT

sed -e "s#@PREFIX@#$prefix#g" -e "s#@PORT@#$port#g" -e "s#@ORIGIN@#$origin#g" \
    .ci/cdn-nginx.conf >"$prefix/nginx.conf"
# As root, nginx runs as nobody: never a privileged process, on a loopback port.
run_as=()
if [ "$(id -u)" = 0 ]; then
    chown -R 65534:65534 "$prefix"
    run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
"${run_as[@]}" "$nginx_bin" -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" &
nginx_pid=$!

for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || fail "nginx or the example server did not start ($(tail -3 "$prefix/logs/error.log" "$prefix/server.err" 2>/dev/null))"

python3 .ci/cdn_check.py "http://127.0.0.1:$origin" "http://127.0.0.1:$port" "$out"
