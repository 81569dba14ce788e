//! [`WebhookSink`]: each event POSTed as JSON to a URL, signed with HMAC-SHA-256.
//!
//! A request carries the [`Event`] as its body (`Content-Type: application/json`) and two
//! headers:
//!
//! - `Gis-Auth-Timestamp: <t>`, the Unix time in seconds of the attempt (on the sink's
//!   clock);
//! - `Gis-Auth-Signature: t=<t>,v1=<hex>`, where `<hex>` is the lowercase hexadecimal
//!   HMAC-SHA-256, keyed with the shared secret, of the string `<t>.<body>`: the timestamp,
//!   a full stop, and the body's bytes exactly as sent ([`sign`] computes it).
//!
//! A receiver recomputes the HMAC over the timestamp and the raw body, compares it in
//! constant time, and refuses a timestamp too far from its own clock (five minutes, say) so
//! that a captured request cannot be replayed later. Each attempt is signed afresh.
//!
//! Events wait in a bounded queue ([`WebhookOptions::queue`]) and one task delivers them
//! in order. An answer other than 2xx, or no answer within the timeout, is retried with
//! exponential backoff (1 s, 2 s, 4 s... by default, capped at 5 minutes) up to
//! [`WebhookOptions::attempts`] attempts, except a 4xx other than 408 and 429, which is
//! final. Nothing is lost silently: an event the full queue cannot take is counted
//! ([`WebhookSink::dropped`]) and logged (a warning when a burst of drops starts, another
//! when the queue takes events again), and one that failed every attempt is counted
//! ([`WebhookSink::failed`]) and logged with its id and type. Plain `http://` URLs only:
//! put a TLS-terminating proxy in front of a remote `https://` receiver.
//!
//! ```
//! use gis_auth::events::{sign, SIGNATURE_HEADER};
//!
//! let header = sign(b"s3cret", 1_764_849_600, br#"{"type":"account_deactivated"}"#);
//! assert!(header.starts_with("t=1764849600,v1="));
//! assert_eq!(SIGNATURE_HEADER, "gis-auth-signature");
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::mpsc;

use super::{Event, EventSink};
use crate::clock::{Clock, SystemClock};

/// The header that carries the signature: `t=<unix seconds>,v1=<hex HMAC-SHA-256>`.
pub const SIGNATURE_HEADER: &str = "gis-auth-signature";

/// The header that carries the attempt's Unix time in seconds (the `t` that is signed).
pub const TIMESTAMP_HEADER: &str = "gis-auth-timestamp";

/// How many events wait for delivery unless [`WebhookOptions::queue`] says otherwise.
pub const DEFAULT_WEBHOOK_QUEUE: usize = 1_024;

/// How many times an event is tried unless [`WebhookOptions::attempts`] says otherwise.
pub const DEFAULT_WEBHOOK_ATTEMPTS: u32 = 6;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The signature header's value for `body` sent at Unix time `timestamp`, keyed with
/// `secret`: `t=<timestamp>,v1=<hex of HMAC-SHA-256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable_key(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    format!("t={timestamp},v1={hex}")
}

#[cold]
fn unreachable_key() -> ! {
    unreachable!("HMAC accepts keys of every length")
}

/// A webhook that cannot be set up: the message names the setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The URL is not an absolute `http://` URL.
    #[error("the webhook URL must be an absolute http:// URL: {0}")]
    Url(String),
    /// The secret is empty.
    #[error("the webhook secret is empty")]
    EmptySecret,
    /// A setting is zero.
    #[error("the webhook's `{0}` must not be zero")]
    Zero(&'static str),
    /// There is no Tokio runtime to run the delivery task on.
    #[error("a webhook sink is started inside a Tokio runtime")]
    NoRuntime,
}

/// How to start a [`WebhookSink`]: see [`WebhookSink::options`].
#[must_use]
pub struct WebhookOptions {
    url: String,
    secret: Vec<u8>,
    queue: usize,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("queue", &self.queue)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookOptions {
    /// At most `events` wait for delivery ([`DEFAULT_WEBHOOK_QUEUE`] by default); more
    /// are counted as dropped.
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events;
        self
    }

    /// Tries each event at most `attempts` times ([`DEFAULT_WEBHOOK_ATTEMPTS`] by default).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Waits `first` before the second attempt, twice as long before each next one
    /// (1 second by default; capped at 5 minutes).
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// Gives up an attempt after `timeout` (10 seconds by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the timestamps it signs from `clock` (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Starts the delivery task on the current Tokio runtime.
    pub fn start(self) -> Result<WebhookSink, WebhookError> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|_| WebhookError::Url(self.url.clone()))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(WebhookError::Url(self.url.clone()));
        }
        if self.secret.is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        if self.queue == 0 {
            return Err(WebhookError::Zero("queue"));
        }
        if self.attempts == 0 {
            return Err(WebhookError::Zero("attempts"));
        }
        if self.timeout.is_zero() {
            return Err(WebhookError::Zero("timeout"));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WebhookError::NoRuntime)?;
        let (sender, receiver) = mpsc::channel(self.queue);
        let counts = Arc::new(Counts::default());
        let delivery = Delivery {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            uri,
            secret: self.secret,
            attempts: self.attempts,
            backoff: self.backoff,
            timeout: self.timeout,
            clock: self.clock,
            counts: counts.clone(),
        };
        runtime.spawn(delivery.run(receiver));
        Ok(WebhookSink { sender, counts })
    }
}

#[derive(Debug, Default)]
struct Counts {
    dropped: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Whether the latest event was dropped: a burst of drops is logged once.
    overflowing: AtomicBool,
}

/// An [`EventSink`] that POSTs each event, signed, to a URL (see the module docs for the
/// request, its headers and the signature). [`emit`](EventSink::emit) only queues.
#[derive(Clone)]
pub struct WebhookSink {
    sender: mpsc::Sender<Event>,
    counts: Arc<Counts>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("delivered", &self.delivered())
            .field("failed", &self.failed())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink posting to `url` (`http://` only), signing with `secret`, to be started with
    /// [`WebhookOptions::start`].
    pub fn options(url: impl Into<String>, secret: impl Into<Vec<u8>>) -> WebhookOptions {
        WebhookOptions {
            url: url.into(),
            secret: secret.into(),
            queue: DEFAULT_WEBHOOK_QUEUE,
            attempts: DEFAULT_WEBHOOK_ATTEMPTS,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        }
    }

    /// Events the full queue could not take (or that came after the runtime stopped).
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Events the receiver answered 2xx.
    pub fn delivered(&self) -> u64 {
        self.counts.delivered.load(Ordering::Relaxed)
    }

    /// Events that failed every attempt (or met a final 4xx).
    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }
}

impl EventSink for WebhookSink {
    fn emit(&self, event: Event) {
        match self.sender.try_send(event) {
            Ok(()) => {
                if self.counts.overflowing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        dropped = self.dropped(),
                        "the webhook queue takes events again"
                    );
                }
            }
            Err(e) => {
                let dropped = self.counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if !self.counts.overflowing.swap(true, Ordering::Relaxed) {
                    let event = match &e {
                        mpsc::error::TrySendError::Full(event)
                        | mpsc::error::TrySendError::Closed(event) => event,
                    };
                    tracing::warn!(
                        dropped,
                        event = %event.id,
                        r#type = event.kind.name(),
                        "the webhook queue is full: events are dropped (counted) until it drains"
                    );
                }
            }
        }
    }
}

/// The delivery task's state.
struct Delivery {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    secret: Vec<u8>,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    counts: Arc<Counts>,
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    Retry(String),
    Final(String),
}

impl Delivery {
    async fn run(self, mut receiver: mpsc::Receiver<Event>) {
        while let Some(event) = receiver.recv().await {
            self.deliver(&event).await;
        }
    }

    async fn deliver(&self, event: &Event) {
        let body = match serde_json::to_vec(event) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                self.give_up(event, &format!("it does not serialise: {e}"));
                return;
            }
        };
        let mut wait = self.backoff;
        for attempt in 1..=self.attempts {
            match self.attempt(&body).await {
                Attempt::Delivered => {
                    self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Attempt::Final(why) => return self.give_up(event, &why),
                Attempt::Retry(why) if attempt == self.attempts => {
                    return self.give_up(event, &why);
                }
                Attempt::Retry(why) => {
                    tracing::debug!(event = %event.id, attempt, reason = %why, "webhook delivery retried");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn attempt(&self, body: &Bytes) -> Attempt {
        let timestamp = self.clock.now().unix_timestamp();
        let request = Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, body))
            .body(Full::new(body.clone()));
        let request = match request {
            Ok(request) => request,
            Err(e) => return Attempt::Final(format!("the request cannot be built: {e}")),
        };
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Attempt::Retry("no answer within the timeout".to_owned()),
            Ok(Err(e)) => Attempt::Retry(format!("the request failed: {e}")),
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    Attempt::Delivered
                } else if status.is_client_error()
                    && status != StatusCode::REQUEST_TIMEOUT
                    && status != StatusCode::TOO_MANY_REQUESTS
                {
                    Attempt::Final(format!("the receiver answered {status}"))
                } else {
                    Attempt::Retry(format!("the receiver answered {status}"))
                }
            }
        }
    }

    fn give_up(&self, event: &Event, why: &str) {
        let failed = self.counts.failed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            event = %event.id,
            r#type = event.kind.name(),
            failed,
            reason = why,
            "a webhook event could not be delivered"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let header = sign(b"Jefe", 0, b"what do ya want for nothing?");
        // Our data is "0." followed by the body, so compare with a direct HMAC of that.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(header, format!("t=0,v1={expected}"));
    }

    #[tokio::test]
    async fn bad_settings_are_refused_naming_them() {
        let refused = |o: WebhookOptions| o.start().unwrap_err().to_string();
        assert!(refused(WebhookSink::options("https://x.example/", "s")).contains("http://"));
        assert!(refused(WebhookSink::options("http://x.example/", "")).contains("secret"));
        assert!(refused(WebhookSink::options("http://x.example/", "s").queue(0)).contains("queue"));
        let shown = format!("{:?}", WebhookSink::options("http://x.example/", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
