//! One Redis call per request: a layer with a `RedisUsageCounter` and a shared
//! `RedisRateLimiter` hands the client's and the account's rate limits to the counter, which
//! applies them and the quota charge in one script. Counted with `MONITOR` on a key prefix of
//! the test's own; and each behaviour of the separate path (limiter first, then charge) is
//! run on both paths, which must answer alike: verdicts, `Retry-After` and `RateLimit-*`
//! headers, refusal and report-only statistics, and 503 when Redis is away.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gis_auth::AuthLayer;
use gis_auth::client::{
    Account, AccountId, ClientSpec, Plan, RateLimit, Restriction, Role, RoleSet,
};
use gis_auth::clock::ManualClock;
use gis_auth::layer::{RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET, ResponseBody};
use gis_auth::limits::{RedisRateLimiter, RedisUsageCounter, UsageCounter, redis_connection};
use gis_auth::policy::{Api, Cost, RouteTable, TRANSACTION};
use gis_auth::store::{CreatedClient, InMemoryStore};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use time::macros::datetime;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt};

use crate::services::eventually;
use crate::services::redis::{Prefix, connection, redis_url, relay, url_through};

type Svc = BoxCloneService<Request<Full<Bytes>>, Response<ResponseBody<Full<Bytes>>>, Infallible>;

const START: time::OffsetDateTime = datetime!(2026-05-01 12:00 UTC);
const MAPS: &str = "https://maps.example.com";
const EVIL: &str = "https://evil.example.com";

/// How a layer meets the shared rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The shared limiter first (one call per limit), then the charge.
    Separate,
    /// The limits and the charge in the counter's one script.
    Combined,
}

/// Tiles (a tenth of a transaction each) and a geocoder (one transaction), for Evaluators.
fn routes() -> RouteTable {
    RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", [Role::EVALUATOR])
                .plugin(true)
                .cost(Cost::Fixed(TRANSACTION / 10)),
        )
        .unwrap()
        .route(
            Method::GET,
            "/geocode",
            Api::new("Geocoder", [Role::EVALUATOR])
                .plugin(true)
                .cost(Cost::Fixed(TRANSACTION)),
        )
        .unwrap()
}

/// One world of a test: a store, a clock and a key prefix; layers on either path.
struct World {
    store: Arc<InMemoryStore>,
    clock: ManualClock,
    prefix: Prefix,
    /// The names the statistics give clients (their ids are random).
    names: std::sync::Mutex<Vec<(String, String)>>,
}

impl World {
    fn new(tag: &str) -> World {
        World {
            store: Arc::new(InMemoryStore::new()),
            clock: ManualClock::new(START),
            prefix: Prefix::new(tag),
            names: Default::default(),
        }
    }

    fn counter(&self, conn: redis::aio::ConnectionManager, path: Path) -> RedisUsageCounter {
        RedisUsageCounter::new(conn)
            .key_prefix(&self.prefix.prefix)
            .clock(Arc::new(self.clock.clone()))
            .rate_limits_in_charge(path == Path::Combined)
    }

    /// A layer on `path`, reaching Redis through `conn`.
    fn layer_on(&self, conn: redis::aio::ConnectionManager, path: Path) -> Svc {
        let limiter = RedisRateLimiter::new(conn.clone())
            .key_prefix(&self.prefix.prefix)
            .clock(Arc::new(self.clock.clone()));
        let layer = AuthLayer::new(self.store.clone(), routes())
            .usage_counter(Arc::new(self.counter(conn, path)))
            .shared_rate_limiter(Arc::new(limiter))
            .clock(Arc::new(self.clock.clone()));
        let svc =
            ServiceBuilder::new()
                .layer(layer)
                .service_fn(|_req: Request<Full<Bytes>>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
        BoxCloneService::new(svc)
    }

    async fn layer(&self, path: Path) -> Svc {
        self.layer_on(connection().await, path)
    }

    fn named(&self, client: CreatedClient, name: &str) -> CreatedClient {
        let id = client.client.id().to_string();
        self.names.lock().unwrap().push((id, name.to_owned()));
        client
    }

    /// Account `id` (Evaluator) on `plan`: its JavaScript client, named after it.
    fn account(&self, id: &str, plan: Plan) -> CreatedClient {
        let made = self
            .store
            .open_account(
                Account::new(
                    AccountId::new(id).unwrap(),
                    id,
                    RoleSet::from_iter([Role::EVALUATOR]),
                )
                .unwrap()
                .with_plan(plan),
            )
            .unwrap()
            .javascript;
        self.named(made, id)
    }

    /// A client of `account`, named `name`.
    fn client(&self, account: &str, name: &str, spec: ClientSpec) -> CreatedClient {
        let made = self
            .store
            .add_client(&AccountId::new(account).unwrap(), spec)
            .unwrap();
        self.named(made, name)
    }

    /// The statistics of `account` today, one line per client.
    async fn statistics(&self, account: &str) -> Vec<String> {
        let counter = self.counter(connection().await, Path::Separate);
        let day = self.clock_now().date();
        let rows = counter
            .usage(&AccountId::new(account).unwrap(), day, day)
            .await
            .unwrap();
        let names = self.names.lock().unwrap().clone();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|row| {
                let name = names
                    .iter()
                    .find(|(id, _)| id == row.client.as_str())
                    .map_or("?", |(_, name)| name.as_str());
                format!(
                    "{name}: {} requests, cost {}, refused {:?}, shadowed {:?}",
                    row.requests, row.cost, row.refusals, row.shadowed
                )
            })
            .collect();
        lines.sort();
        lines
    }

    async fn used(&self, account: &str) -> u64 {
        let counter = self.counter(connection().await, Path::Separate);
        counter
            .used(&AccountId::new(account).unwrap(), self.clock_now().date())
            .await
            .unwrap()
    }

    fn clock_now(&self) -> time::OffsetDateTime {
        use gis_auth::clock::Clock;
        self.clock.now()
    }
}

fn limit(per_second: u32, burst: u32) -> RateLimit {
    RateLimit::new(per_second, burst).unwrap()
}

/// A request for `path` with `client`'s key, from `origin` if given.
fn keyed(path: &str, client: &CreatedClient, origin: Option<&str>) -> Request<Full<Bytes>> {
    let joiner = if path.contains('?') { '&' } else { '?' };
    let mut req = Request::get(format!(
        "{path}{joiner}apikey={}",
        client.credential.expose()
    ));
    if let Some(origin) = origin {
        req = req.header(header::ORIGIN, origin);
    }
    req.body(Full::default()).unwrap()
}

const TILE: &str = "/tiles/1/2/3.png";
const GEOCODE: &str = "/geocode?q=x";

/// A response as the transcript keeps it: the status, the rule that refused, and the
/// headers a client reads to pace itself.
fn line(res: &Response<ResponseBody<Full<Bytes>>>) -> String {
    let header = |name: &header::HeaderName| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let rule = res
        .extensions()
        .get::<gis_auth::Rejection>()
        .and_then(|r| r.decision().and_then(|d| d.rule()))
        .map(|rule| rule.as_str());
    format!(
        "{} rule={rule:?} retry-after={:?} limit={:?} remaining={:?} reset={:?}",
        res.status().as_u16(),
        header(&header::RETRY_AFTER),
        header(&RATELIMIT_LIMIT),
        header(&RATELIMIT_REMAINING),
        header(&RATELIMIT_RESET),
    )
}

/// Sends `req` through `svc`, and notes the response in `transcript`.
async fn send(svc: &Svc, req: Request<Full<Bytes>>, transcript: &mut Vec<String>) -> StatusCode {
    let res = svc.clone().oneshot(req).await.unwrap();
    transcript.push(line(&res));
    res.status()
}

/// Runs `scenario` on the separate and the combined path, each in a world of its own, and
/// checks both tell the same story; the combined path's transcript is returned.
async fn alike<F, Fut>(tag: &str, scenario: F) -> Vec<String>
where
    F: Fn(World, Path) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let separate = scenario(World::new(&format!("{tag}_s")), Path::Separate).await;
    let combined = scenario(World::new(&format!("{tag}_c")), Path::Combined).await;
    assert_eq!(
        separate, combined,
        "the separate and the combined path differ"
    );
    combined
}

#[tokio::test]
async fn a_client_over_its_rate_limit_is_told_to_retry_alike_on_both_paths() {
    let transcript = alike("client_rate", |world, path| async move {
        world.account("acme", Plan::default());
        let limited = world.client(
            "acme",
            "limited",
            ClientSpec::javascript("Limited").rate_limit(Some(limit(2, 2))),
        );
        let other = world.client("acme", "other", ClientSpec::javascript("Other"));
        let svc = world.layer(path).await;
        let mut t = Vec::new();
        for _ in 0..3 {
            send(&svc, keyed(TILE, &limited, None), &mut t).await;
        }
        for _ in 0..5 {
            send(&svc, keyed(TILE, &other, None), &mut t).await;
        }
        world.clock.advance(time::Duration::seconds(1));
        for _ in 0..3 {
            send(&svc, keyed(TILE, &limited, None), &mut t).await;
        }
        t.extend(world.statistics("acme").await);
        t
    })
    .await;
    assert!(transcript[0].starts_with("200"), "{transcript:#?}");
    assert!(transcript[1].starts_with("200"), "{transcript:#?}");
    assert!(
        transcript[2].starts_with("429 rule=Some(\"rate_limit\") retry-after=Some(\"1\")"),
        "{transcript:#?}"
    );
    assert!(
        transcript[3..8].iter().all(|l| l.starts_with("200")),
        "another client is not slowed: {transcript:#?}"
    );
    assert!(transcript[8].starts_with("200") && transcript[9].starts_with("200"));
    assert!(transcript[10].starts_with("429"), "{transcript:#?}");
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("4 requests") && l.contains("\"rate_limit\": 2")),
        "the refusals are counted: {transcript:#?}"
    );
}

#[tokio::test]
async fn the_accounts_rate_limit_is_shared_by_its_clients_alike_on_both_paths() {
    let transcript = alike("account_rate", |world, path| async move {
        let web = world.account("acme", Plan::default().with_rate_limit(Some(limit(2, 2))));
        let second = world.client("acme", "second-map", ClientSpec::javascript("Second map"));
        let globex = world.account("globex", Plan::default());
        let svc = world.layer(path).await;
        let mut t = Vec::new();
        send(&svc, keyed(TILE, &web, None), &mut t).await;
        send(&svc, keyed(TILE, &second, None), &mut t).await;
        send(&svc, keyed(TILE, &web, None), &mut t).await;
        send(&svc, keyed(TILE, &second, None), &mut t).await;
        for _ in 0..5 {
            send(&svc, keyed(TILE, &globex, None), &mut t).await;
        }
        world.clock.advance(time::Duration::seconds(1));
        send(&svc, keyed(TILE, &second, None), &mut t).await;
        send(&svc, keyed(TILE, &web, None), &mut t).await;
        send(&svc, keyed(TILE, &web, None), &mut t).await;
        t.extend(world.statistics("acme").await);
        t
    })
    .await;
    assert!(transcript[0].starts_with("200") && transcript[1].starts_with("200"));
    for refused in &transcript[2..4] {
        assert!(
            refused.starts_with("429 rule=Some(\"account_rate_limit\") retry-after=Some(\"1\")"),
            "{transcript:#?}"
        );
    }
    assert!(transcript[4..9].iter().all(|l| l.starts_with("200")));
    assert!(transcript[9].starts_with("200") && transcript[10].starts_with("200"));
    assert!(transcript[11].starts_with("429"), "{transcript:#?}");
}

#[tokio::test]
async fn a_rate_limited_request_is_not_charged_nor_counted_against_the_account_alike() {
    let transcript = alike("not_charged", |world, path| async move {
        let web = world.account(
            "acme",
            Plan::default()
                .with_daily_quota(Some(10))
                .with_rate_limit(Some(limit(2, 2))),
        );
        let limited = world.client(
            "acme",
            "limited",
            ClientSpec::javascript("Limited").rate_limit(Some(limit(1, 1))),
        );
        let svc = world.layer(path).await;
        let mut t = Vec::new();
        send(&svc, keyed(GEOCODE, &limited, None), &mut t).await;
        for _ in 0..3 {
            send(&svc, keyed(GEOCODE, &limited, None), &mut t).await;
        }
        send(&svc, keyed(GEOCODE, &web, None), &mut t).await;
        send(&svc, keyed(GEOCODE, &web, None), &mut t).await;
        t.push(format!("used {}", world.used("acme").await));
        t.extend(world.statistics("acme").await);
        t
    })
    .await;
    assert!(transcript[0].starts_with("200"), "{transcript:#?}");
    assert!(
        transcript[1..4]
            .iter()
            .all(|l| l.starts_with("429 rule=Some(\"rate_limit\")")),
        "{transcript:#?}"
    );
    assert!(transcript[4].starts_with("200"), "{transcript:#?}");
    assert!(
        transcript[5].starts_with("429 rule=Some(\"account_rate_limit\")"),
        "the client's refusals were not counted against the account: {transcript:#?}"
    );
    assert!(
        transcript.contains(&"used 2000".to_owned()),
        "{transcript:#?}"
    );
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("refused {\"account_rate_limit\": 1}")),
        "{transcript:#?}"
    );
}

#[tokio::test]
async fn quota_headers_and_quota_refusals_are_alike_on_both_paths() {
    let transcript = alike("quota", |world, path| async move {
        let web = world.account(
            "acme",
            Plan::default()
                .with_daily_quota(Some(3))
                .with_rate_limit(Some(limit(100, 100))),
        );
        let limited = world.client(
            "acme",
            "limited",
            ClientSpec::javascript("Limited").rate_limit(Some(limit(100, 100))),
        );
        let svc = world.layer(path).await;
        let mut t = Vec::new();
        for client in [&web, &limited, &web, &limited] {
            send(&svc, keyed(GEOCODE, client, None), &mut t).await;
        }
        t.push(format!("used {}", world.used("acme").await));
        t.extend(world.statistics("acme").await);
        t
    })
    .await;
    let to_midnight = (datetime!(2026-05-02 00:00 UTC) - START).whole_seconds();
    for (n, remaining) in [(0, 2), (1, 1), (2, 0)] {
        assert_eq!(
            transcript[n],
            format!(
                "200 rule=None retry-after=None limit=Some(\"3\") remaining=Some(\"{remaining}\") \
                 reset=Some(\"{to_midnight}\")"
            )
        );
    }
    assert_eq!(
        transcript[3],
        format!(
            "429 rule=Some(\"quota\") retry-after=Some(\"{to_midnight}\") limit=Some(\"3\") \
             remaining=Some(\"0\") reset=Some(\"{to_midnight}\")"
        )
    );
    assert!(
        transcript.contains(&"used 3000".to_owned()),
        "{transcript:#?}"
    );
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("refused {\"quota_exceeded\": 1}")),
        "{transcript:#?}"
    );
}

#[tokio::test]
async fn report_only_rules_are_still_reported_alike_on_both_paths() {
    let transcript = alike("shadow", |world, path| async move {
        world.account(
            "acme",
            Plan::default()
                .with_daily_quota(Some(1))
                .with_rate_limit(Some(limit(100, 100))),
        );
        let site = world.client(
            "acme",
            "site",
            ClientSpec::javascript("Site")
                .allowed_origins([MAPS])
                .rate_limit(Some(limit(100, 100)))
                .shadow([Restriction::Origins, Restriction::Quota]),
        );
        let svc = world.layer(path).await;
        let mut t = Vec::new();
        send(&svc, keyed(GEOCODE, &site, Some(MAPS)), &mut t).await;
        send(&svc, keyed(GEOCODE, &site, Some(EVIL)), &mut t).await;
        send(&svc, keyed(GEOCODE, &site, Some(EVIL)), &mut t).await;
        t.push(format!("used {}", world.used("acme").await));
        t.extend(world.statistics("acme").await);
        t
    })
    .await;
    assert!(
        transcript[..3].iter().all(|l| l.starts_with("200")),
        "report-only restrictions refuse nothing: {transcript:#?}"
    );
    assert!(
        transcript.contains(&"used 3000".to_owned()),
        "{transcript:#?}"
    );
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("shadowed {\"origins\": 2, \"quota\": 2}")),
        "{transcript:#?}"
    );
}

#[tokio::test]
async fn both_paths_answer_503_while_redis_is_away_and_recover() {
    for path in [Path::Separate, Path::Combined] {
        let world = World::new("outage");
        let web = world.account(
            "acme",
            Plan::default()
                .with_daily_quota(Some(1_000))
                .with_rate_limit(Some(limit(100, 100))),
        );
        let link = relay().await;
        let svc = world.layer_on(redis_connection(&url_through(&link)).await.unwrap(), path);
        let mut t = Vec::new();
        assert_eq!(send(&svc, keyed(TILE, &web, None), &mut t).await, 200);
        link.cut();
        assert_eq!(
            send(&svc, keyed(TILE, &web, None), &mut t).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path:?} fails closed"
        );
        link.restore();
        let back = eventually(Duration::from_secs(10), || {
            let (svc, req) = (svc.clone(), keyed(TILE, &web, None));
            async move { svc.oneshot(req).await.unwrap().status() == StatusCode::OK }
        })
        .await;
        assert!(back, "{path:?} serves again once Redis is back");
    }
}

#[tokio::test]
async fn instances_on_either_path_share_one_limit() {
    let world = World::new("mixed");
    world.account("acme", Plan::default());
    let limited = world.client(
        "acme",
        "limited",
        ClientSpec::javascript("Limited").rate_limit(Some(limit(2, 6))),
    );
    let instances = [
        world.layer(Path::Separate).await,
        world.layer(Path::Combined).await,
    ];
    let mut t = Vec::new();
    let mut passed = 0;
    for n in 0..20 {
        let status = send(&instances[n % 2], keyed(TILE, &limited, None), &mut t).await;
        passed += usize::from(status == StatusCode::OK);
    }
    assert_eq!(passed, 6, "one burst between the two: {t:#?}");
}

/// The commands Redis runs for clients (not inside scripts) that name `prefix`, seen through
/// `MONITOR` until `stop()` is seen.
struct Monitor {
    lines: std::sync::mpsc::Receiver<String>,
    prefix: String,
}

impl Monitor {
    fn start(prefix: &str) -> Monitor {
        let client = redis::Client::open(redis_url()).unwrap();
        let (host, port) = match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            other => panic!("not a TCP address: {other:?}"),
        };
        let mut conn = TcpStream::connect((host.as_str(), port)).unwrap();
        conn.write_all(b"MONITOR\r\n").unwrap();
        let mut reader = BufReader::new(conn);
        let mut ok = String::new();
        reader.read_line(&mut ok).unwrap();
        assert_eq!(ok, "+OK\r\n");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Monitor {
            lines,
            prefix: prefix.to_owned(),
        }
    }

    /// The calls seen since the last count: commands sent by clients (a script's own
    /// commands show as `[0 lua]`) that name the prefix.
    async fn count(&self) -> usize {
        let marker = format!("{}end-of-count", self.prefix);
        let mut conn = connection().await;
        let _: String = redis::cmd("ECHO")
            .arg(&marker)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut calls = 0;
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .expect("MONITOR goes on");
            if line.contains(&marker) {
                return calls;
            }
            if line.contains(&self.prefix) && !line.contains(" lua]") {
                calls += 1;
            }
        }
    }
}

#[tokio::test]
async fn a_request_with_client_and_account_rate_limits_and_a_quota_costs_one_redis_call() {
    let mut calls = Vec::new();
    for path in [Path::Separate, Path::Combined] {
        let world = World::new("calls");
        let web = world.account(
            "acme",
            Plan::default()
                .with_daily_quota(Some(12))
                .with_rate_limit(Some(limit(1_000, 1_000))),
        );
        let limited = world.client(
            "acme",
            "limited",
            ClientSpec::javascript("Limited").rate_limit(Some(limit(1, 10))),
        );
        let svc = world.layer(path).await;
        let mut t = Vec::new();
        // Once first: the scripts are loaded into Redis, if they were not yet.
        send(&svc, keyed(GEOCODE, &web, None), &mut t).await;
        let monitor = Monitor::start(&world.prefix.prefix);
        monitor.count().await;
        for _ in 0..10 {
            assert_eq!(
                send(&svc, keyed(GEOCODE, &limited, None), &mut t).await,
                200
            );
        }
        let admitted = monitor.count().await;
        assert_eq!(
            send(&svc, keyed(GEOCODE, &limited, None), &mut t).await,
            429,
            "over the client's rate limit"
        );
        let rate_limited = monitor.count().await;
        assert_eq!(
            send(&svc, keyed(GEOCODE, &web, None), &mut t).await,
            200,
            "the quota's last transaction"
        );
        let res = svc
            .clone()
            .oneshot(keyed(GEOCODE, &web, None))
            .await
            .unwrap();
        assert_eq!(res.status(), 429, "over the quota: {}", line(&res));
        let quota_refused = monitor.count().await;
        calls.push((path, admitted, rate_limited, quota_refused));
    }
    assert_eq!(
        calls,
        [
            // The client's limit, the account's, the charge; a refusal counted apart (one
            // script call); no client limit on the quota's requests.
            (Path::Separate, 30, 2, 4),
            (Path::Combined, 10, 1, 2),
        ],
        "(path, calls for 10 admitted requests, for 1 rate-limited, for 2 charged of which \
         1 is refused by the quota)"
    );
}
