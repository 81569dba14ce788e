//! Events end to end: a [`WebhookSink`] posting to a local HTTP server, which checks each
//! request's signature; a delivery retried after a 500; a full queue counting what it
//! drops; and every kind of event, fed by the example server's store and layer on the
//! injected clock (quota at 80 % and 100 % once per period, an expiry within 7 days once, a
//! credential regenerated, a client and an account deactivated).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use gis_auth::client::{AccountId, Plan, Status};
use gis_auth::events::{
    Event, EventKind, EventSink, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSink, sign,
};
use gis_auth::store::ManagedStore;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::harness::request::get;
use crate::harness::server::{START, Server};

const SECRET: &[u8] = b"webhook test secret";

/// What the receiver saw and how it answers.
#[derive(Default)]
struct Receiver {
    /// Each request: its headers and body.
    seen: Mutex<Vec<(HeaderMap, Bytes)>>,
    /// The statuses of the next answers (200 once empty).
    answers: Mutex<VecDeque<StatusCode>>,
    /// When set, each request waits for a permit before it is answered.
    gate: Option<Arc<Semaphore>>,
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    rx.seen.lock().expect("not poisoned").push((headers, body));
    if let Some(gate) = &rx.gate {
        gate.acquire().await.expect("the gate stays open").forget();
    }
    rx.answers
        .lock()
        .expect("not poisoned")
        .pop_front()
        .unwrap_or(StatusCode::OK)
}

/// A receiver on a local port: its URL.
async fn listen(rx: Arc<Receiver>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let addr: SocketAddr = listener.local_addr().expect("an address");
    let app = Router::new().route("/hook", post(receive)).with_state(rx);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

/// Waits (polling, 10 s at most) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting: {what}");
}

/// Checks a request's signature as a receiver would; its event as JSON.
fn verified(headers: &HeaderMap, body: &[u8]) -> Value {
    let timestamp = headers[TIMESTAMP_HEADER].to_str().expect("ASCII");
    let t: i64 = timestamp.parse().expect("Unix seconds");
    let signature = headers[SIGNATURE_HEADER].to_str().expect("ASCII");
    assert_eq!(signature, sign(SECRET, t, body), "the signature verifies");
    assert!(signature.starts_with(&format!("t={timestamp},v1=")));
    assert_ne!(signature, sign(b"another secret", t, body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    serde_json::from_slice(body).expect("a JSON body")
}

fn event(n: u64) -> Event {
    Event::new(
        START,
        AccountId::new("acme").expect("an id"),
        None,
        EventKind::QuotaReached {
            period: gis_auth::events::QuotaPeriodKind::Daily,
            percent: 80,
            used: n,
            limit: 100,
        },
    )
}

#[tokio::test]
async fn a_webhook_event_is_signed_and_retried_after_a_500() {
    let rx = Arc::new(Receiver::default());
    rx.answers
        .lock()
        .expect("not poisoned")
        .push_back(StatusCode::INTERNAL_SERVER_ERROR);
    let sink = WebhookSink::options(listen(rx.clone()).await, SECRET)
        .backoff(Duration::from_millis(20))
        .start()
        .expect("a valid webhook");
    let sent = event(1);
    sink.emit(sent.clone());
    eventually("two attempts", || sink.delivered() == 1).await;
    let seen = rx.seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 2, "one 500, then delivered");
    for (headers, body) in &seen {
        let json = verified(headers, body);
        assert_eq!(json["id"], sent.id.as_str());
        assert_eq!(json["type"], "quota_reached");
    }
    assert_eq!((sink.failed(), sink.dropped()), (0, 0));
}

#[tokio::test]
async fn a_final_refusal_and_exhausted_attempts_are_counted_as_failed() {
    let rx = Arc::new(Receiver::default());
    rx.answers.lock().expect("not poisoned").extend([
        StatusCode::BAD_REQUEST,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::SERVICE_UNAVAILABLE,
    ]);
    let sink = WebhookSink::options(listen(rx.clone()).await, SECRET)
        .attempts(2)
        .backoff(Duration::from_millis(5))
        .start()
        .expect("a valid webhook");
    sink.emit(event(1));
    sink.emit(event(2));
    eventually("both given up", || sink.failed() == 2).await;
    assert_eq!(
        rx.seen.lock().expect("not poisoned").len(),
        3,
        "a 400 is final; a 503 is tried again, twice in all"
    );
    assert_eq!(sink.delivered(), 0);
}

#[tokio::test]
async fn a_full_queue_counts_every_event_it_drops() {
    let gate = Arc::new(Semaphore::new(0));
    let rx = Arc::new(Receiver {
        gate: Some(gate.clone()),
        ..Receiver::default()
    });
    let sink = WebhookSink::options(listen(rx.clone()).await, SECRET)
        .queue(2)
        .start()
        .expect("a valid webhook");
    sink.emit(event(0));
    eventually("the first in flight", || {
        rx.seen.lock().expect("not poisoned").len() == 1
    })
    .await;
    // One in flight, two wait, the other three are dropped and counted.
    for n in 1..=5 {
        sink.emit(event(n));
    }
    assert_eq!(sink.dropped(), 3);
    gate.add_permits(10);
    eventually("the queue drained", || sink.delivered() == 3).await;
    sink.emit(event(6));
    eventually("accepted again", || sink.delivered() == 4).await;
    assert_eq!(sink.dropped(), 3);
}

/// A 1-transaction request with `key`.
fn reverse_geocode(key: &str) -> http::Request<axum::body::Body> {
    get(&format!("/reverse-geocode?lat=48.8&lon=2.3&apikey={key}"))
}

#[tokio::test]
async fn every_kind_of_event_reaches_the_webhook_once() {
    let rx = Arc::new(Receiver::default());
    let sink = WebhookSink::options(listen(rx.clone()).await, SECRET)
        .start()
        .expect("a valid webhook");
    let server = Server::builder().events(Arc::new(sink.clone())).build();
    let acme = server.acme_id().clone();
    server.set_plan(
        &acme,
        Plan::default()
            .with_daily_quota(Some(10))
            .with_monthly_quota(Some(20)),
    );
    let web = server.acme.javascript.client.id().clone();
    let key = server.acme.javascript.credential.expose().to_owned();
    server.update_client(&web, |spec| {
        spec.expires_at = Some(START + time::Duration::days(6));
    });
    // Day one: 10 of 10 (80 % at the 8th, 100 % at the 10th), then one refused.
    for n in 1..=11 {
        let reply = server.send(reverse_geocode(&key)).await;
        let expected = if n <= 10 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(reply.status, expected, "request {n}: {}", reply.describe());
    }
    // Day two: the month reaches 80 % at 16 of 20, then the new day's quota at 8 of 10.
    server.clock.advance(time::Duration::days(1));
    for _ in 1..=8 {
        let reply = server.send(reverse_geocode(&key)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    }
    // A credential regenerated, a client deactivated, then the account.
    let token = server.token_of(&server.acme.native).await;
    let path = format!("/account/clients/{web}");
    let regen = super_call(
        &server,
        Method::POST,
        &format!("{path}/regenerate"),
        &token,
        None,
    )
    .await;
    assert_eq!(regen.status, StatusCode::OK, "{}", regen.describe());
    let off = super_call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"status": "inactive"})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.describe());
    let again = super_call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"name": "Still off"})),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "a change that leaves it inactive tells nothing"
    );
    server
        .store
        .update_account(
            &acme,
            Box::new(|a| {
                a.status = Status::Inactive;
                Ok(())
            }),
        )
        .await
        .expect("the operator deactivates the account");

    let expected = [
        ("client_expiring", json!(null)),
        ("quota_reached", json!(["daily", 80])),
        ("quota_reached", json!(["daily", 100])),
        ("quota_reached", json!(["monthly", 80])),
        ("quota_reached", json!(["daily", 80])),
        ("credential_regenerated", json!(null)),
        ("client_deactivated", json!(null)),
        ("account_deactivated", json!(null)),
    ];
    eventually("every event delivered", || {
        sink.delivered() == expected.len() as u64
    })
    .await;
    let seen: Vec<Value> = rx
        .seen
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(headers, body)| verified(headers, body))
        .collect();
    let kinds: Vec<(String, Value)> = seen
        .iter()
        .map(|e| {
            let quota = if e["type"] == "quota_reached" {
                json!([e["period"], e["percent"]])
            } else {
                Value::Null
            };
            (e["type"].as_str().unwrap_or_default().to_owned(), quota)
        })
        .collect();
    let expected: Vec<(String, Value)> = expected
        .into_iter()
        .map(|(t, q)| (t.to_owned(), q))
        .collect();
    assert_eq!(kinds, expected);
    assert_eq!(seen[0]["client_id"], web.as_str());
    assert_eq!(seen[0]["expires_at"], "2026-05-07T10:00:00Z");
    assert_eq!(seen[2]["used"], 10);
    assert_eq!(seen[2]["limit"], 10);
    assert_eq!(seen[5]["by"], server.native_id().as_str());
    assert_eq!(seen[7]["account_id"], "acme");
    assert_eq!(sink.dropped(), 0);
}

async fn super_call(
    server: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> crate::harness::reply::Reply {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(axum::body::Body::empty, |b| {
        axum::body::Body::from(b.to_string())
    });
    server.send(req.body(body).expect("a request")).await
}

#[tokio::test]
async fn the_example_servers_webhook_flags_are_checked_naming_the_flag() {
    let dir = tempfile::tempdir().expect("a directory");
    let secret = dir.path().join("secret.txt");
    let missing = dir.path().join("missing.txt");
    std::fs::write(&secret, "  webhook test secret\n").expect("written");
    let err = crate::app::webhook_sink("http://127.0.0.1:9/hook", &missing)
        .err()
        .expect("a missing file is refused");
    assert!(err.starts_with("--webhook-secret-file"), "{err}");
    let err = crate::app::webhook_sink("ftp://hooks.test/", &secret)
        .err()
        .expect("not http");
    assert!(err.starts_with("--webhook:"), "{err}");
    std::fs::write(&secret, " \n").expect("written");
    let err = crate::app::webhook_sink("http://127.0.0.1:9/hook", &secret)
        .err()
        .expect("an empty secret is refused");
    assert!(err.contains("secret is empty"), "{err}");

    // The file's text, trimmed, is the key.
    std::fs::write(&secret, "  webhook test secret\n").expect("written");
    let rx = Arc::new(Receiver::default());
    let sink = crate::app::webhook_sink(&listen(rx.clone()).await, &secret).expect("a sink");
    sink.emit(event(1));
    eventually("delivered", || {
        rx.seen.lock().expect("not poisoned").len() == 1
    })
    .await;
    let (headers, body) = rx.seen.lock().expect("not poisoned")[0].clone();
    verified(&headers, &body);
}

#[tokio::test]
async fn a_charge_made_by_a_handler_meter_tells_the_quota_too() {
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = {
        let seen = seen.clone();
        move |e: Event| seen.lock().expect("not poisoned").push(e)
    };
    let server = Server::builder()
        .quota(Some(10))
        .events(Arc::new(sink))
        .build();
    // 800 points: the handler charges 8 transactions of the 10 through its meter.
    let points: Vec<[f64; 2]> = (0..800).map(|i| [f64::from(i % 90), 0.0]).collect();
    let key = server.acme.javascript.credential.expose().to_owned();
    let req = http::Request::post(format!("/elevation?apikey={key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(
            json!({ "points": points }).to_string(),
        ))
        .expect("a request");
    let reply = server.send(req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    let told: Vec<(String, Value)> = seen
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|e| {
            let json = serde_json::to_value(e).expect("serialisable");
            (e.kind.name().to_owned(), json["percent"].clone())
        })
        .collect();
    assert_eq!(told, [("quota_reached".to_owned(), json!(80))]);
}
