"""Checks signed tile URLs through nginx's cache (run by .ci/cdn.sh).

Arguments: the origin's base URL, the cache's base URL, and the example server's stdout
(its demo credentials, one JSON object per line). Every check fails the run; none skips.
"""

import base64
import datetime
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

origin, cache, out = sys.argv[1], sys.argv[2], sys.argv[3]
passed = 0


def fail(message):
    print(f"cdn: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    global passed
    if not condition:
        fail(message)
    passed += 1


def call(method, url, body=None, headers=None, form=False):
    headers = dict(headers or {})
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


web = native = None
with open(out) as lines:
    for line in lines:
        o = json.loads(line)
        if "api_key" in o and web is None:
            web = o
        if "client_secret" in o and native is None:
            native = o
if not web or not native:
    fail("the example server printed no demo credentials")

status, _, body = call("POST", f"{origin}/oauth/token", {
    "grant_type": "client_credentials",
    "client_id": native["client_id"],
    "client_secret": native["client_secret"],
}, form=True)
check(status == 200, f"token endpoint answered {status}")
bearer = {"Authorization": "Bearer " + json.loads(body)["access_token"]}


def tiles_served():
    """The origin's count of the JavaScript client's authorised requests today."""
    status, _, body = call("GET", f"{origin}/account/usage", headers=bearer)
    check(status == 200, f"usage answered {status}")
    days = json.loads(body)["days"]
    return sum(d["requests"] for d in days if d["client_id"] == web["client"])


# The TileJSON document, with the API key: its template is signed and holds no key.
status, _, body = call("GET", f"{cache}/tiles.json?apikey={web['api_key']}")
check(status == 200, f"tiles.json answered {status}")
tilejson = json.loads(body)
check(tilejson["tilejson"] == "3.0.0", "not a TileJSON 3.0.0 document")
check("{z}/{x}/{y}" in tilejson["tiles"][0] and "sig=" in tilejson["tiles"][0],
      "the TileJSON template is not a signed tile template")
check(web["api_key"] not in tilejson["tiles"][0], "the template holds the API key")

# A short-lived URL, minted through the admin API.
status, _, body = call("POST", f"{origin}/account/tile-urls",
                       {"client": web["client"], "api": "WorldStreets", "ttl_seconds": 6},
                       headers=bearer)
check(status == 201, f"POST /account/tile-urls answered {status}: {body!r}")
minted = json.loads(body)
template = minted["template"]
expires = datetime.datetime.fromisoformat(minted["expires_at"].replace("Z", "+00:00")).timestamp()
check(0 < expires - time.time() <= 6 + 5 + 1, "the expiry is not the ttl rounded up to the bucket")


def tile(z, x, y):
    return cache + template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))


before = tiles_served()
statuses = []
for _ in range(20):
    status, headers, _ = call("GET", tile(3, 4, 2))
    statuses.append((status, headers.get("X-Cache-Status"), headers.get("Cache-Control")))
check(all(s == 200 for s, _, _ in statuses), f"a cached tile was not 200: {statuses}")
check(statuses[0][1] == "MISS", f"the first request was not a MISS: {statuses[0]}")
check(all(c == "HIT" for _, c, _ in statuses[1:]), f"later requests were not HITs: {statuses}")
cache_control = statuses[0][2] or ""
check(cache_control.startswith("public"), f"the tile is not public: {cache_control}")
max_age = int(cache_control.split("max-age=")[1].split(",")[0])
check(max_age <= expires - time.time() + 1, f"max-age {max_age} outlives the URL")
check(tiles_served() - before == 1, "the origin saw the tile more than once (or not at all)")

# Deactivate the client: a tile not cached yet is refused through the cache, and not cached.
status, _, body = call("PATCH", f"{origin}/account/clients/{web['client']}",
                       {"status": "inactive"}, headers=bearer)
check(status == 200, f"deactivating the client answered {status}: {body!r}")
for _ in range(2):
    status, headers, _ = call("GET", tile(3, 4, 3))
    check(status == 401, f"an uncached tile of a deactivated client answered {status}")
    check(headers.get("X-Cache-Status") != "HIT", "a refusal was served from the cache")

# The cached tile goes no further than the URL's expiry.
wait = expires - time.time() + 0.5
if wait > 0:
    time.sleep(wait)
status, headers, _ = call("GET", tile(3, 4, 2))
check(status == 401, f"a cached tile after the URL's expiry answered {status} {dict(headers)} at {time.time()} expiring {expires}")
check(headers.get("X-Cache-Status") != "HIT", "a tile was served from the cache after its URL expired")

print(f"cdn: {passed} passed, 0 failed (20 requests, 1 reached the origin; cache-control {cache_control})")
