//! Rendering: the one place a [`Rejection`] becomes a response, and the headers added to
//! responses the wrapped service produced.
//!
//! ```
//! use gis_auth::{Rejection, RejectionKind};
//! use gis_auth::layer::default_rejection_response;
//!
//! let res = default_rejection_response(&Rejection::new(RejectionKind::NotPluginApi), "maps");
//! assert_eq!(res.status(), 403);
//! assert_eq!(res.headers()["content-type"], "application/json");
//! let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
//! assert_eq!(body["error"], "insufficient_scope");
//! ```

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, VARY, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use time::OffsetDateTime;

use crate::credentials::Realm;
use crate::policy::{ErrorFormat, QuotaState};
use crate::rejection::Rejection;
use crate::rule::RejectionKind;

/// The default response for a rejection: its status, a JSON body
/// `{"error": …, "error_description": …}`, an RFC 6750 `WWW-Authenticate: Bearer` challenge on
/// 401s (and on 400 `invalid_request` and 403 `insufficient_scope`), `Retry-After` on 503
/// and 429 (with the `RateLimit-*` headers when a quota refused), and
/// `Cache-Control: no-store`.
///
/// ```
/// use gis_auth::{Rejection, RejectionKind};
/// use gis_auth::layer::default_rejection_response;
///
/// let res = default_rejection_response(&Rejection::new(RejectionKind::MissingCredential), "maps");
/// assert_eq!(res.status(), 401);
/// assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"maps\"");
/// ```
///
/// On the routes of an API whose [`ErrorFormat`] is
/// [`OgcServiceException`](ErrorFormat::OgcServiceException), the body is instead
/// [`service_exception_report`] of the same code and description (`text/xml`); status and
/// headers stay the same.
pub fn default_rejection_response(rejection: &Rejection, realm: &str) -> Response<Bytes> {
    let (kind, description) = (rejection.kind(), rejection.description());
    rejection_response(
        rejection,
        body_of(kind, description, rejection.error_format()),
        challenge_of(kind, description, realm),
    )
}

/// The body of a refusal of `kind` in `format`.
fn body_of(kind: RejectionKind, description: &str, format: ErrorFormat) -> Bytes {
    match format {
        ErrorFormat::OgcServiceException => {
            Bytes::from(service_exception_report(kind.error_code(), description))
        }
        _ => {
            let body = serde_json::json!({
                "error": kind.error_code(),
                "error_description": description,
            });
            Bytes::from(body.to_string())
        }
    }
}

/// The `Content-Type` of a refusal body in `format`.
fn content_type_of(format: ErrorFormat) -> HeaderValue {
    match format {
        ErrorFormat::OgcServiceException => HeaderValue::from_static("text/xml"),
        _ => HeaderValue::from_static("application/json"),
    }
}

/// An OGC service exception report (WMS 1.3.0, OGC 06-042, §6.11 and its schema
/// `exceptions_1_3_0.xsd`: the `ServiceExceptionReport` of namespace
/// `http://www.opengis.net/ogc`, version 1.3.0) with one
/// `ServiceException` of `code` and `text`, both escaped. The layer writes its refusals on
/// [`ErrorFormat::OgcServiceException`] routes with it; a service writes its own exceptions
/// (`InvalidParameterValue`, `LayerNotDefined`, …) with it too, so both read alike.
///
/// ```
/// let xml = gis_auth::layer::service_exception_report("LayerNotDefined", "no layer `a<b`");
/// assert!(xml.contains(r#"<ServiceException code="LayerNotDefined">no layer `a&lt;b`</ServiceException>"#));
/// ```
pub fn service_exception_report(code: &str, text: &str) -> String {
    let mut xml = String::with_capacity(320 + code.len() + text.len());
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ServiceExceptionReport version=\"1.3.0\" xmlns=\"http://www.opengis.net/ogc\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://www.opengis.net/ogc \
         http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd\">\n\
         <ServiceException code=\"",
    );
    escape_xml_into(&mut xml, code);
    xml.push_str("\">");
    escape_xml_into(&mut xml, text);
    xml.push_str("</ServiceException>\n</ServiceExceptionReport>\n");
    xml
}

/// Appends `text` to `out`, escaped for XML character data and for attribute values in
/// double quotes. Control
/// characters XML 1.0 cannot carry become U+FFFD.
fn escape_xml_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// The `WWW-Authenticate` challenge of a refusal of `kind`, if it carries one.
fn challenge_of(kind: RejectionKind, description: &str, realm: &str) -> Option<HeaderValue> {
    let challenge = if kind == RejectionKind::MissingCredential {
        format!("Bearer realm=\"{realm}\"")
    } else if kind.in_challenge() {
        // Descriptions are the crate's own text: no quote or backslash to escape.
        format!(
            "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{description}\"",
            kind.error_code(),
        )
    } else {
        return None;
    };
    // The realm is checked when the layer is built and descriptions are fixed ASCII, so
    // this cannot fail; a header is left out rather than a panic risked.
    HeaderValue::try_from(challenge).ok()
}

fn rejection_response(
    rejection: &Rejection,
    body: Bytes,
    challenge: Option<HeaderValue>,
) -> Response<Bytes> {
    let kind = rejection.kind();
    let mut res = Response::new(body);
    *res.status_mut() = rejection.status();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, content_type_of(rejection.error_format()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = challenge {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    if kind == RejectionKind::Unavailable {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Some(seconds) = rejection.retry_after() {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(quota) = rejection.quota() {
        // Whole transactions left: 0 once used up, more when only this request's cost did
        // not fit.
        insert_quota_counts(headers, quota, rejection.retry_after());
    }
    res
}

/// The bodies (JSON and OGC) and challenges of the default refusals for one realm, made
/// once per layer so that a refusal costs no encoding and no formatting.
#[derive(Debug, Clone)]
pub(crate) struct RejectionTemplates {
    realm: Realm,
    parts: Arc<[RefusalParts]>,
}

/// The prerendered parts of the refusals of one kind.
#[derive(Debug)]
struct RefusalParts {
    json: Bytes,
    ogc: Bytes,
    challenge: Option<HeaderValue>,
}

impl RejectionTemplates {
    pub(crate) fn new(realm: &Realm) -> Self {
        Self {
            realm: realm.clone(),
            parts: RejectionKind::ALL
                .iter()
                .map(|&kind| {
                    let description = kind.description();
                    RefusalParts {
                        json: body_of(kind, description, ErrorFormat::Json),
                        ogc: body_of(kind, description, ErrorFormat::OgcServiceException),
                        challenge: challenge_of(kind, description, realm.as_str()),
                    }
                })
                .collect(),
        }
    }

    /// [`default_rejection_response`] for this realm.
    pub(crate) fn response(&self, rejection: &Rejection) -> Response<Bytes> {
        let kind = rejection.kind();
        match self.parts.get(kind as usize) {
            Some(parts)
                if RejectionKind::ALL[kind as usize] == kind
                    && !rejection.has_own_description() =>
            {
                let body = match rejection.error_format() {
                    ErrorFormat::OgcServiceException => parts.ogc.clone(),
                    _ => parts.json.clone(),
                };
                rejection_response(rejection, body, parts.challenge.clone())
            }
            _ => default_rejection_response(rejection, self.realm.as_str()),
        }
    }
}

/// An account's quota after the latest charge of a request, shared by its
/// [`Meter`](super::Meter) (which charges) and its response (which reports it).
#[derive(Debug, Default)]
pub(crate) struct LatestQuota(Mutex<Option<QuotaState>>);

impl LatestQuota {
    pub(crate) fn new(quota: Option<QuotaState>) -> Self {
        Self(Mutex::new(quota))
    }

    pub(crate) fn get(&self) -> Option<QuotaState> {
        // Every write leaves a whole value, so a panic elsewhere cannot corrupt it.
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, quota: Option<QuotaState>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = quota;
    }
}

/// What the layer adds to the wrapped service's response of an admitted request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResponseExtras {
    /// `Cache-Control: private` (an API key identified the caller).
    pub(crate) private: bool,
    /// The API key header to name in `Vary` (the key came in it).
    pub(crate) vary_api_key: Option<HeaderName>,
    /// A signed URL identified the caller: the answer may be cached publicly for at most
    /// this many seconds (those left before the URL expires).
    pub(crate) public_max_age: Option<u64>,
    /// `Vary: Origin`.
    pub(crate) vary_origin: bool,
    /// The quota headers, for an account with a quota.
    pub(crate) quota: Option<QuotaHeaders>,
}

/// The quota headers of a response: the quota as of the request's charge, or after its
/// handler's latest one.
#[derive(Debug, Clone)]
pub(crate) struct QuotaHeaders {
    pub(crate) quota: QuotaState,
    pub(crate) now: OffsetDateTime,
    pub(crate) warning: Option<u8>,
    /// The handler's meter's view, when the API has one.
    pub(crate) latest: Option<Arc<LatestQuota>>,
}

impl ResponseExtras {
    /// Adds the headers to a response of the wrapped service.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        if let Some(cap) = self.public_max_age {
            make_public_until(headers, cap);
        } else if self.private {
            make_private(headers);
        }
        if self.vary_origin {
            add_vary_origin(headers);
        }
        if let Some(name) = &self.vary_api_key {
            add_vary(headers, HeaderValue::from(name.clone()));
        }
        if let Some(q) = &self.quota {
            let latest = q.latest.as_deref().and_then(LatestQuota::get);
            let quota = latest.as_ref().unwrap_or(&q.quota);
            add_quota_headers(headers, quota, q.now, q.warning);
        }
    }
}

/// The quota reported (of the daily and monthly ones, the one with the fewest transactions
/// left), in transactions.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// Whole transactions left of the quota reported.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// Seconds until the quota reported resets (00:00 UTC, or the first of the month).
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// Present once the configured share of the quota is used:
/// `<used> of <limit> daily transactions used` (`monthly` when the monthly quota is the one
/// reported).
pub const QUOTA_WARNING: HeaderName = HeaderName::from_static("quota-warning");

/// The most digits a `u64` takes.
const MAX_DIGITS: usize = 20;

/// `RateLimit-Limit` and `RateLimit-Remaining`, in whole transactions, and `RateLimit-Reset`
/// when `reset` is given. The numbers are written into one buffer and each value is a slice
/// of it: one allocation for the three headers, not one each.
fn insert_quota_counts(headers: &mut HeaderMap, quota: &QuotaState, reset: Option<u64>) {
    let numbers = [
        (RATELIMIT_LIMIT, Some(quota.limit_transactions())),
        (RATELIMIT_REMAINING, Some(quota.remaining_transactions())),
        (RATELIMIT_RESET, reset),
    ];
    let mut text = [0u8; 3 * MAX_DIGITS];
    let mut ends = [0usize; 3];
    let mut len = 0;
    let mut digits = itoa::Buffer::new();
    for ((_, number), end) in numbers.iter().zip(&mut ends) {
        if let Some(n) = number {
            let written = digits.format(*n).as_bytes();
            text[len..len + written.len()].copy_from_slice(written);
            len += written.len();
        }
        *end = len;
    }
    let shared = Bytes::from_owner(text);
    let mut start = 0;
    for ((name, number), end) in numbers.into_iter().zip(ends) {
        // Digits are always a valid header value.
        if number.is_some()
            && let Ok(value) = HeaderValue::from_maybe_shared(shared.slice(start..end))
        {
            headers.insert(name, value);
        }
        start = end;
    }
}

/// Adds the quota headers to a metered response of an account with a quota.
fn add_quota_headers(
    headers: &mut HeaderMap,
    quota: &QuotaState,
    now: OffsetDateTime,
    warning: Option<u8>,
) {
    insert_quota_counts(headers, quota, Some(quota.reset_seconds(now)));
    if warning.is_some_and(|percent| quota.used_at_least(percent)) {
        let used = quota.used.div_ceil(crate::policy::TRANSACTION);
        let text = format!(
            "{used} of {} {} transactions used",
            quota.limit_transactions(),
            quota.period.adjective()
        );
        if let Ok(value) = HeaderValue::try_from(text) {
            headers.insert(QUOTA_WARNING, value);
        }
    }
}

/// Adds `Vary: Origin` unless the response already varies on it (or on everything).
pub(crate) fn add_vary_origin(headers: &mut HeaderMap) {
    add_vary(headers, HeaderValue::from_static("Origin"));
}

/// Adds `Vary: <name>` unless the response already varies on it (or on everything).
fn add_vary(headers: &mut HeaderMap, name: HeaderValue) {
    let covered = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|t| {
                t.trim() == "*" || t.trim().as_bytes().eq_ignore_ascii_case(name.as_bytes())
            })
        })
    });
    if !covered {
        headers.append(VARY, name);
    }
}

/// Lets a shared cache keep a response for at most `cap` seconds: a handler's `max-age`
/// and `s-maxage` are capped, `public, max-age=<cap>` is added when it said nothing (or
/// nothing about how long), and a response it made `private`, `no-store` or `no-cache`
/// stays so.
fn make_public_until(headers: &mut HeaderMap, cap: u64) {
    let mut values = headers.get_all(CACHE_CONTROL).iter();
    let made = match (values.next(), values.next()) {
        (given, None) => {
            let last = LAST_PUBLIC.with_borrow(|last| match last {
                Some((value, at, made)) if value.as_ref() == given && *at == cap => {
                    Some(made.clone())
                }
                _ => None,
            });
            last.unwrap_or_else(|| {
                let made = public_form(given, cap);
                // A copy, not a clone: a value sliced from a larger buffer must not keep
                // that buffer alive.
                let copy = given.map(|v| HeaderValue::from_bytes(v.as_bytes()));
                match copy {
                    None => LAST_PUBLIC.set(Some((None, cap, made.clone()))),
                    Some(Ok(copy)) => LAST_PUBLIC.set(Some((Some(copy), cap, made.clone()))),
                    Some(Err(_)) => {}
                }
                made
            })
        }
        (_, Some(_)) => public_form(headers.get_all(CACHE_CONTROL), cap),
    };
    if let Some(made) = made {
        headers.insert(CACHE_CONTROL, made);
    }
}

thread_local! {
    /// The last lone (or absent) `Cache-Control` value this thread made public for a given
    /// number of seconds, and what it became (`None`: it stays as it is). The tiles of one
    /// signed URL share both within a second, so most take the answer (a reference count)
    /// instead of formatting it again.
    static LAST_PUBLIC: RefCell<Option<PublicForm>> = const { RefCell::new(None) };
}

/// A lone (or absent) `Cache-Control` value, a number of seconds, and the public form of
/// the one for the other (`None`: the value stays as it is).
type PublicForm = (Option<HeaderValue>, u64, Option<HeaderValue>);

/// The public form of the `Cache-Control` `values` for at most `cap` seconds; `None` when
/// they are private, `no-store` or `no-cache` (they stay as they are).
fn public_form<'v>(
    values: impl IntoIterator<Item = &'v HeaderValue>,
    cap: u64,
) -> Option<HeaderValue> {
    let mut out = String::with_capacity(32);
    out.push_str("public");
    let mut has_max_age = false;
    let mut digits = itoa::Buffer::new();
    let directives = values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|d| !d.is_empty());
    for directive in directives {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("private") || is("no-store") || is("no-cache") {
            return None;
        }
        if is("public") {
            continue;
        }
        out.push_str(", ");
        if is("max-age") || is("s-maxage") {
            has_max_age |= is("max-age");
            let given = value.trim().trim_matches('"').parse::<u64>().unwrap_or(0);
            out.push_str(if is("max-age") {
                "max-age="
            } else {
                "s-maxage="
            });
            out.push_str(digits.format(given.min(cap)));
        } else {
            out.push_str(directive);
        }
    }
    if !has_max_age {
        out.push_str(", max-age=");
        out.push_str(digits.format(cap));
    }
    HeaderValue::try_from(out).ok()
}

/// The directive every private response carries.
const PRIVATE: &str = "private";

thread_local! {
    /// The last lone `Cache-Control` value this thread made private, and what it became
    /// (`None`: it was private, or `no-store`, already). A tile server sends the same value
    /// on every tile, so most responses take the answer (a reference count) instead of
    /// parsing and allocating again.
    static LAST_PRIVATE: RefCell<Option<(HeaderValue, Option<HeaderValue>)>> =
        const { RefCell::new(None) };
}

/// Makes a response private to the caller unless it already is (or is `no-store`): drops
/// `public` and `s-maxage`, keeps every other directive, and adds `private`.
fn make_private(headers: &mut HeaderMap) {
    let mut values = headers.get_all(CACHE_CONTROL).iter();
    match (values.next(), values.next()) {
        (None, _) => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(PRIVATE));
        }
        (Some(one), None) => {
            let last = LAST_PRIVATE.with_borrow(|last| match last {
                Some((value, made)) if value == one => Some(made.clone()),
                _ => None,
            });
            let made = last.unwrap_or_else(|| {
                let made = private_form(std::iter::once(one));
                // A copy, not a clone: a value sliced from a larger buffer (an upstream
                // response's headers, say) must not keep that buffer alive.
                if let Ok(copy) = HeaderValue::from_bytes(one.as_bytes()) {
                    LAST_PRIVATE.set(Some((copy, made.clone())));
                }
                made
            });
            // Replaced where it stands: the map neither grows nor gains an entry.
            if let Some(made) = made
                && let Some(value) = headers.get_mut(CACHE_CONTROL)
            {
                *value = made;
            }
        }
        (Some(_), Some(_)) => {
            if let Some(made) = private_form(headers.get_all(CACHE_CONTROL)) {
                headers.insert(CACHE_CONTROL, made);
            }
        }
    }
}

/// The private form of the `Cache-Control` `values`, written in one pass over their
/// directives; `None` when they are private, or `no-store`, already.
fn private_form<'v>(values: impl IntoIterator<Item = &'v HeaderValue>) -> Option<HeaderValue> {
    let mut value = String::from(PRIVATE);
    for header in values {
        let Ok(text) = header.to_str() else {
            // Unreadable: replace it with the strict form.
            value.truncate(PRIVATE.len());
            break;
        };
        for d in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let name = d.split_once('=').map_or(d, |(name, _)| name.trim_end());
            if name.eq_ignore_ascii_case("private") || name.eq_ignore_ascii_case("no-store") {
                return None;
            }
            if !name.eq_ignore_ascii_case("public") && !name.eq_ignore_ascii_case("s-maxage") {
                value.push_str(", ");
                value.push_str(d);
            }
        }
    }
    Some(HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static(PRIVATE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(values: &[&str]) -> String {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, v.parse().unwrap());
        }
        make_private(&mut h);
        h.get_all(CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn public(values: &[&str], cap: u64) -> String {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, v.parse().unwrap());
        }
        make_public_until(&mut h, cap);
        h.get_all(CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn a_signed_answer_is_public_for_at_most_the_time_its_url_has_left() {
        assert_eq!(public(&[], 60), "public, max-age=60");
        assert_eq!(public(&["public, max-age=30"], 60), "public, max-age=30");
        assert_eq!(public(&["max-age=86400"], 60), "public, max-age=60");
        assert_eq!(
            public(&["public", "s-maxage=900, immutable"], 60),
            "public, s-maxage=60, immutable, max-age=60"
        );
        assert_eq!(public(&["Max-Age=\"120\""], 0), "public, max-age=0");
        // What the handler made private or uncacheable stays so.
        assert_eq!(public(&["private, max-age=60"], 600), "private, max-age=60");
        assert_eq!(public(&["no-store"], 600), "no-store");
        assert_eq!(public(&["no-cache"], 600), "no-cache");
    }

    #[test]
    fn a_remembered_public_form_is_taken_only_for_the_same_value_and_cap() {
        for _ in 0..2 {
            assert_eq!(public(&[], 60), "public, max-age=60");
            assert_eq!(public(&[], 59), "public, max-age=59");
            assert_eq!(public(&["max-age=30"], 59), "public, max-age=30");
            assert_eq!(public(&["max-age=300"], 59), "public, max-age=59");
            assert_eq!(public(&["no-store"], 59), "no-store");
            assert_eq!(public(&[], 59), "public, max-age=59");
        }
    }

    fn quota_headers(quota: QuotaState, reset: Option<u64>) -> Vec<(String, String)> {
        let mut h = HeaderMap::new();
        insert_quota_counts(&mut h, &quota, reset);
        h.iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn quota_numbers_are_whole_transactions_and_fit_at_their_largest() {
        let at = time::macros::datetime!(2026-06-01 0:00 UTC);
        let quota = |limit, used| QuotaState {
            limit,
            used,
            reset: at,
            period: crate::policy::QuotaPeriod::Day,
        };
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            quota_headers(quota(10_000_000, 2_500), Some(3600)),
            [
                pair("ratelimit-limit", "10000"),
                pair("ratelimit-remaining", "9997"),
                pair("ratelimit-reset", "3600"),
            ]
        );
        assert_eq!(
            quota_headers(quota(5_000, 5_000), None),
            [
                pair("ratelimit-limit", "5"),
                pair("ratelimit-remaining", "0")
            ]
        );
        let most = u64::MAX.to_string();
        let huge = quota_headers(quota(u64::MAX, 0), Some(u64::MAX));
        assert_eq!(huge[2], pair("ratelimit-reset", &most));
        assert_eq!(
            huge[0].1,
            (u64::MAX / crate::policy::TRANSACTION).to_string()
        );
    }

    #[test]
    fn shared_caching_is_turned_private() {
        assert_eq!(cache(&[]), "private");
        assert_eq!(cache(&["public, max-age=3600"]), "private, max-age=3600");
        assert_eq!(cache(&["max-age=60, s-maxage=600"]), "private, max-age=60");
    }

    #[test]
    fn the_last_value_remembered_never_answers_for_another() {
        for _ in 0..2 {
            assert_eq!(cache(&["max-age=60"]), "private, max-age=60");
            assert_eq!(cache(&["max-age=60"]), "private, max-age=60");
            assert_eq!(cache(&["private, max-age=60"]), "private, max-age=60");
            assert_eq!(cache(&["private, max-age=60"]), "private, max-age=60");
            assert_eq!(cache(&["max-age=61"]), "private, max-age=61");
            assert_eq!(cache(&["max-age=60", "public"]), "private, max-age=60");
            assert_eq!(cache(&["no-store"]), "no-store");
            assert_eq!(cache(&[]), "private");
        }
    }

    #[test]
    fn the_value_remembered_is_a_copy_that_holds_no_foreign_buffer() {
        let mut text = b"max-age=77".to_vec();
        text.resize(8192, b' ');
        let buffer = Bytes::from(text);
        let value = HeaderValue::from_maybe_shared(buffer.slice(..10)).unwrap();
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, value);
        make_private(&mut h);
        assert_eq!(h[CACHE_CONTROL], "private, max-age=77");
        drop(h);
        assert!(buffer.try_into_mut().is_ok(), "the buffer is still shared");
    }

    #[test]
    fn stricter_settings_are_kept() {
        assert_eq!(cache(&["no-store"]), "no-store");
        assert_eq!(cache(&["private, max-age=5"]), "private, max-age=5");
        assert_eq!(cache(&["max-age=5", "Private"]), "max-age=5 | Private");
    }

    #[test]
    fn vary_is_added_once() {
        let mut h = HeaderMap::new();
        h.insert(VARY, "Accept-Encoding".parse().unwrap());
        add_vary_origin(&mut h);
        add_vary_origin(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 2);
        let mut h = HeaderMap::new();
        h.insert(VARY, "*".parse().unwrap());
        add_vary_origin(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let res = default_rejection_response(&RejectionKind::UnknownCredential.into(), "gis");
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"gis\", error=\"invalid_token\", error_description=\"the credential is not valid\""
        );
        let res = default_rejection_response(&RejectionKind::OriginNotAllowed.into(), "gis");
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
        let res = default_rejection_response(&RejectionKind::Unavailable.into(), "gis");
        assert_eq!(res.headers()[RETRY_AFTER], "1");
    }

    #[test]
    fn prerendered_refusals_match_the_default_ones() {
        let rendered = RejectionTemplates::new(&Realm::new("maps").unwrap());
        for format in [ErrorFormat::Json, ErrorFormat::OgcServiceException] {
            for (i, kind) in RejectionKind::ALL.into_iter().enumerate() {
                assert_eq!(kind as usize, i, "{kind:?}");
                let rejection = Rejection::new(kind).with_retry_after(7).in_format(format);
                let fresh = default_rejection_response(&rejection, "maps");
                let cached = rendered.response(&rejection);
                assert_eq!(fresh.status(), cached.status());
                assert_eq!(fresh.headers(), cached.headers());
                assert_eq!(fresh.body(), cached.body());
            }
        }
    }

    #[test]
    fn ogc_refusals_keep_status_and_headers_and_change_only_the_body() {
        for kind in RejectionKind::ALL {
            let json = default_rejection_response(&Rejection::new(kind).with_retry_after(7), "m");
            let ogc = default_rejection_response(
                &Rejection::new(kind)
                    .with_retry_after(7)
                    .in_format(ErrorFormat::OgcServiceException),
                "m",
            );
            assert_eq!(json.status(), ogc.status());
            let mut headers = json.headers().clone();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
            assert_eq!(&headers, ogc.headers());
            let body = std::str::from_utf8(ogc.body()).unwrap();
            let mut description = String::new();
            escape_xml_into(&mut description, kind.description());
            let exception = format!(
                "<ServiceException code=\"{}\">{description}</ServiceException>",
                kind.error_code(),
            );
            assert!(body.contains(&exception), "{body}");
        }
    }

    #[test]
    fn exception_reports_escape_code_and_text() {
        let xml = service_exception_report("a\"b", "<&>'\u{1}\n");
        assert!(
            xml.contains("code=\"a&quot;b\">&lt;&amp;&gt;'\u{FFFD}\n</ServiceException>"),
            "{xml}"
        );
    }
}
