//! The token backend without its command line: the upstream client that exchanges the
//! NativeConfidential client's id and secret for access tokens (`client_secret_basic`), the
//! [`TokenCache`] that keeps one token until shortly before it expires, and the axum router
//! serving `GET /token` and the demo page. `main.rs` parses flags and serves;
//! `tests/it/token_server.rs` drives this against the real GIS example server.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gis_auth::clock::{Clock, SystemClock};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A token is replaced this long before it expires, or 10 % of its lifetime before if that
/// is shorter (see [`refresh_margin`]).
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The time budget of one token exchange, from connecting to the last byte of the body.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The roles asked for by default: the map roles of the demo account, not `User` (which
/// opens the account API: creating, regenerating and deleting clients). A page script
/// holding the token can do what the token allows, so it gets no more than maps need.
pub const DEFAULT_SCOPE: &str = "Evaluator";

/// The lifetime asked for by default: 15 minutes, so a token copied out of a page is
/// worth little for long.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(900);

/// The largest token response read from the GIS server.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// A client secret. Its `Debug` is redacted and it has no `Display`.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// The GIS server's address or the client id could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The GIS server's URL is not an `http://host[:port][/path]` URL.
    #[error("--gis-url `{0}` is not an http:// URL with a host (https needs a TLS connector)")]
    GisUrl(String),
    /// The client id is empty.
    #[error("the client id is empty")]
    EmptyClientId,
    /// The secret is empty.
    #[error("the client secret is empty")]
    EmptySecret,
    /// The scope is empty.
    #[error("the scope names no role")]
    EmptyScope,
    /// The lifetime is shorter than the GIS server accepts.
    #[error("the token lifetime is at least 60 seconds")]
    ShortLifetime,
    /// The id and secret do not fit in an `Authorization` header.
    #[error("the client credentials cannot be sent in an Authorization header")]
    Unencodable,
}

/// Why no token could be had from the GIS server. The `Display` form is what callers of
/// `GET /token` see: it names no secret, token or internal detail; the source chain (for
/// the log) says more.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No connection, or it broke before the response was read.
    #[error("the GIS server could not be reached")]
    Unreachable(#[source] Box<dyn StdError + Send + Sync>),
    /// The exchange took longer than [`UPSTREAM_TIMEOUT`].
    #[error("the GIS server did not answer within {} s", UPSTREAM_TIMEOUT.as_secs())]
    Timeout,
    /// The token endpoint answered 401: the id or secret is wrong, or the client is not
    /// active.
    #[error("the GIS server refused the client credentials")]
    Refused,
    /// Any other answer but 200.
    #[error("the GIS server answered {0} to the token request")]
    Status(StatusCode),
    /// A 200 whose body is not a bearer token response.
    #[error("the GIS server's token response was not understood: {0}")]
    Malformed(&'static str),
}

/// The GIS server's token endpoint and the client credentials presented to it.
#[derive(Clone)]
pub struct Upstream {
    gis_url: String,
    token_url: Uri,
    client_id: String,
    /// `Basic base64(id:secret)`, marked sensitive; the only place the secret lives.
    authorization: HeaderValue,
    /// The token request's form: the grant, the scope and the lifetime asked for.
    form: Bytes,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The token endpoint of the GIS server at `gis_url` (`POST {gis_url}/oauth/token`),
    /// authenticated as `client_id` with `secret`, asking for [`DEFAULT_SCOPE`] and
    /// [`DEFAULT_LIFETIME`].
    pub fn new(gis_url: &str, client_id: &str, secret: ClientSecret) -> Result<Self, ConfigError> {
        let base = gis_url.trim_end_matches('/');
        let token_url: Uri = format!("{base}/oauth/token")
            .parse()
            .map_err(|_| ConfigError::GisUrl(gis_url.to_owned()))?;
        let plain_http = token_url.scheme_str() == Some("http")
            && token_url.host().is_some_and(|h| !h.is_empty())
            && token_url.query().is_none();
        if !plain_http {
            return Err(ConfigError::GisUrl(gis_url.to_owned()));
        }
        if client_id.is_empty() {
            return Err(ConfigError::EmptyClientId);
        }
        if secret.expose().is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        // RFC 6749 §2.3.1: both parts are form-encoded before they are joined and encoded.
        let form = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", form(client_id), form(secret.expose()));
        let mut authorization = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
            .map_err(|_| ConfigError::Unencodable)?;
        authorization.set_sensitive(true);
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(UPSTREAM_TIMEOUT));
        // About one exchange an hour: no idle connection is worth keeping open.
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Self {
            gis_url: base.to_owned(),
            token_url,
            client_id: client_id.to_owned(),
            authorization,
            form: Bytes::new(),
            http,
        }
        .asking(DEFAULT_SCOPE, DEFAULT_LIFETIME)
    }

    /// Asks for tokens narrowed to `scope` (role names, space-separated) that live
    /// `lifetime` (at least 60 s; the GIS server may grant less).
    pub fn asking(mut self, scope: &str, lifetime: Duration) -> Result<Self, ConfigError> {
        if scope.split(' ').all(str::is_empty) {
            return Err(ConfigError::EmptyScope);
        }
        if lifetime < Duration::from_secs(60) {
            return Err(ConfigError::ShortLifetime);
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("scope", scope)
            .append_pair("expires_in", &lifetime.as_secs().to_string())
            .finish();
        self.form = Bytes::from(form);
        Ok(self)
    }

    /// The GIS server's base URL, without a trailing `/`.
    pub fn gis_url(&self) -> &str {
        &self.gis_url
    }

    /// One client credentials exchange, within [`UPSTREAM_TIMEOUT`].
    async fn exchange(&self) -> Result<Issued, FetchError> {
        tokio::time::timeout(UPSTREAM_TIMEOUT, self.exchange_unbounded())
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    async fn exchange_unbounded(&self) -> Result<Issued, FetchError> {
        let mut request = Request::new(Full::new(self.form.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.token_url.clone();
        let headers = request.headers_mut();
        let form_type = HeaderValue::from_static("application/x-www-form-urlencoded");
        headers.insert(CONTENT_TYPE, form_type);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, self.authorization.clone());

        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| FetchError::Unreachable(e.into()))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(FetchError::Refused),
            other => return Err(FetchError::Status(other)),
        }
        let body = match Limited::new(response.into_body(), MAX_TOKEN_RESPONSE_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return Err(FetchError::Malformed("the body is larger than 64 KiB"));
            }
            Err(e) => return Err(FetchError::Unreachable(e)),
        };
        let issued: Issued = serde_json::from_slice(&body)
            .map_err(|_| FetchError::Malformed("not a JSON token response"))?;
        if !issued.token_type.eq_ignore_ascii_case("bearer") {
            return Err(FetchError::Malformed("the token type is not Bearer"));
        }
        if issued.access_token.is_empty() {
            return Err(FetchError::Malformed("the access token is empty"));
        }
        Ok(issued)
    }
}

/// The token endpoint's success body (RFC 6749 §5.1), the fields used here.
#[derive(Deserialize)]
struct Issued {
    access_token: String,
    token_type: String,
    expires_in: u64,
}

/// A token held by the cache.
struct Cached {
    access_token: String,
    expires_at: OffsetDateTime,
    refresh_at: OffsetDateTime,
}

/// How long before its expiry a token of `lifetime` is replaced: 60 s, or 10 % of the
/// lifetime if that is shorter.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    MAX_REFRESH_MARGIN.min(lifetime / 10)
}

/// What `GET /token` hands to the browser: the access token and its remaining lifetime.
#[derive(Clone, Serialize, Deserialize)]
pub struct Handout {
    /// The bearer token for the GIS server.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl fmt::Debug for Handout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handout")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// One access token from [`Upstream`], kept until its refresh margin (see
/// [`refresh_margin`]) and then replaced. Callers arriving while a token is fetched wait
/// for that fetch instead of starting their own; a failed fetch is not cached, so the next
/// caller tries again.
pub struct TokenCache {
    upstream: Upstream,
    clock: Arc<dyn Clock>,
    slot: tokio::sync::Mutex<Option<Cached>>,
    fetches: AtomicU64,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("upstream", &self.upstream)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// An empty cache for `upstream`, on the system clock.
    pub fn new(upstream: Upstream) -> Self {
        Self::with_clock(upstream, Arc::new(SystemClock))
    }

    /// An empty cache for `upstream` that reads the time from `clock`.
    pub fn with_clock(upstream: Upstream, clock: Arc<dyn Clock>) -> Self {
        Self {
            upstream,
            clock,
            slot: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// The upstream the tokens come from.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// How many token exchanges this cache has started, successful or not.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The cached token if it is outside its refresh margin, otherwise a fresh one.
    pub async fn token(&self) -> Result<Handout, FetchError> {
        let mut slot = self.slot.lock().await;
        // Read before the request goes out, so a token is never believed to live longer
        // than it does.
        let now = self.clock.now();
        if let Some(cached) = slot.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(self.handout(cached));
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let issued = self.upstream.exchange().await?;
        let lifetime = Duration::from_secs(issued.expires_in);
        let expires_at = time::Duration::try_from(lifetime)
            .ok()
            .and_then(|d| now.checked_add(d))
            .ok_or(FetchError::Malformed("expires_in is out of range"))?;
        let cached = slot.insert(Cached {
            access_token: issued.access_token,
            expires_at,
            refresh_at: expires_at - refresh_margin(lifetime),
        });
        Ok(self.handout(cached))
    }

    fn handout(&self, cached: &Cached) -> Handout {
        let remaining = (cached.expires_at - self.clock.now()).whole_seconds();
        Handout {
            access_token: cached.access_token.clone(),
            token_type: "Bearer".to_owned(),
            expires_in: u64::try_from(remaining).unwrap_or(0),
        }
    }
}

/// `GET /` (the demo page) and `GET /token`, both answered from `cache`.
pub fn router(cache: Arc<TokenCache>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/token", get(token))
        .with_state(cache)
}

/// `GET /token`: a token for the browser, never stored by a cache on the way.
async fn token(State(cache): State<Arc<TokenCache>>) -> Response {
    let no_store = [(CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    match cache.token().await {
        Ok(handout) => (no_store, axum::Json(handout)).into_response(),
        Err(e) => {
            eprintln!("token_server: no token: {}", chain(&e));
            let body = serde_json::json!({
                "error": "upstream_unavailable",
                "error_description": e.to_string(),
            });
            (StatusCode::BAD_GATEWAY, no_store, axum::Json(body)).into_response()
        }
    }
}

/// An error with its sources, `: `-separated, for the log.
fn chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `GET /`: a page whose script gets a token from `/token` and calls the GIS server with it.
async fn page(State(cache): State<Arc<TokenCache>>) -> Html<String> {
    // A JSON string literal, with `<` escaped so no URL can close the script element.
    let gis_url = serde_json::Value::from(cache.upstream().gis_url())
        .to_string()
        .replace('<', "\\u003c");
    Html(PAGE.replace("\"{{GIS_URL}}\"", &gis_url))
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>gis-auth: own token server</title>
<h1>Own token server</h1>
<p>This page gets a short-lived access token from its own backend (<code>GET /token</code>)
and calls the GIS server with it. The client secret stays on the backend.</p>
<img id="tile" width="256" height="256" alt="">
<pre id="out">loading…</pre>
<script>
const GIS = "{{GIS_URL}}";
const out = document.getElementById("out");
let held = null;

async function accessToken() {
  if (held && Date.now() < held.until) return held.token;
  const res = await fetch("/token", { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) throw new Error("/token: " + body.error_description);
  held = { token: body.access_token, until: Date.now() + (body.expires_in - 30) * 1000 };
  return held.token;
}

async function gis(path) {
  const headers = { Authorization: "Bearer " + await accessToken() };
  const res = await fetch(GIS + path, { headers });
  if (!res.ok) throw new Error(path + ": " + res.status);
  return res;
}

(async () => {
  try {
    const places = await (await gis("/geocode?q=Paris")).json();
    out.textContent = JSON.stringify(places, null, 2);
    const tile = await (await gis("/tiles/0/0/0.png")).blob();
    document.getElementById("tile").src = URL.createObjectURL(tile);
  } catch (e) {
    out.textContent = "failed: " + e.message + "\n(a call to another origin needs the GIS"
      + " server to allow this page's origin with CORS)";
  }
})();
</script>
"#;
