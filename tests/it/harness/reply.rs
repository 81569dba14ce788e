//! A response read to the end, the one way every test sends a request (through the layer
//! in front of the echo handler, or through the example server's router), and the
//! assertions the tests share about what came back.

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::Bytes;
use gis_auth::layer::{QUOTA_WARNING, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
use gis_auth::policy::Rule;
use gis_auth::{Rejection, RejectionKind};
use http::header::{CONTENT_TYPE, ETAG, VARY, WWW_AUTHENTICATE};
use http::{Extensions, HeaderMap, HeaderName, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{Service, ServiceExt};

/// The realm the layer uses unless told otherwise.
pub const REALM: &str = "gis-auth";

/// Something that becomes a request: an [`http::Request`] itself, or a request being built
/// by a test.
pub trait IntoRequest {
    /// The request's body.
    type Body;

    /// The request.
    fn into_request(self) -> Request<Self::Body>;
}

impl<B> IntoRequest for Request<B> {
    type Body = B;

    fn into_request(self) -> Request<B> {
        self
    }
}

/// A response, read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub extensions: Extensions,
    pub body: Bytes,
}

/// Sends `req` through `svc` once and reads the whole response.
pub async fn send<S, R, B>(svc: S, req: R) -> Reply
where
    R: IntoRequest,
    S: Service<Request<R::Body>, Response = Response<B>>,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    let res = svc
        .oneshot(req.into_request())
        .await
        .expect("the service answers");
    read(res).await
}

/// Reads a whole response.
pub async fn read<B>(res: Response<B>) -> Reply
where
    B: Body,
    B::Error: Debug,
{
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("the body reads").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        extensions: parts.extensions,
        body,
    }
}

/// Parses an RFC 6750 challenge: `Bearer k="v", k2="v2"` → its scheme-less parameters.
pub fn challenge_params(challenge: &str) -> Option<BTreeMap<String, String>> {
    let rest = challenge.strip_prefix("Bearer ")?;
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(params);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => value.push(chars.next()?),
                c => value.push(c),
            }
        }
        if params.insert(key.trim().to_owned(), value).is_some() {
            return None;
        }
    }
}

impl Reply {
    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The principal the echo handler saw.
    #[track_caller]
    pub fn principal(&self) -> Value {
        self.assert_ok();
        self.json()["principal"].clone()
    }

    /// The URI the echo handler saw.
    #[track_caller]
    pub fn seen_uri(&self) -> String {
        self.assert_ok();
        self.json()["uri"]
            .as_str()
            .expect("the echo names the URI")
            .to_owned()
    }

    /// The values of a request header the echo handler saw.
    #[track_caller]
    pub fn seen_header(&self, name: &str) -> Vec<String> {
        self.assert_ok();
        self.json()["headers"][name]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One header as text.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a header, as text.
    pub fn header_all(&self, name: impl http::header::AsHeaderName) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// Whether the response varies on `Origin`.
    pub fn varies_on_origin(&self) -> bool {
        self.header_all(VARY).iter().any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("origin"))
        })
    }

    /// A header that must be there, as a number.
    #[track_caller]
    pub fn header_u64(&self, name: HeaderName) -> u64 {
        self.header(&name)
            .unwrap_or_else(|| panic!("no {name} header: {}", self.describe()))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {}", self.describe()))
    }

    /// The `ETag`, which must be there.
    #[track_caller]
    pub fn etag(&self) -> String {
        self.header(ETAG)
            .unwrap_or_else(|| panic!("no ETag: {}", self.describe()))
            .to_owned()
    }

    /// Whether any rate-limit or quota header is set.
    pub fn has_ratelimit_headers(&self) -> bool {
        [
            RATELIMIT_LIMIT,
            RATELIMIT_REMAINING,
            RATELIMIT_RESET,
            QUOTA_WARNING,
        ]
        .iter()
        .any(|h| self.headers.contains_key(h))
    }

    /// The status, the headers and the body, for a failing assertion's message.
    pub fn describe(&self) -> String {
        format!("{} {:?} {}", self.status, self.headers, self.text())
    }

    /// The refusal's error code: the JSON body's `error`, or on an OGC route the `code` of
    /// the exception report's `ServiceException` (empty when there is none).
    pub fn error(&self) -> String {
        if self.header(http::header::CONTENT_TYPE) == Some("text/xml") {
            let text = self.text();
            let doc = roxmltree::Document::parse(&text)
                .unwrap_or_else(|e| panic!("body is not XML ({e}): {text}"));
            return doc
                .descendants()
                .find(|n| n.has_tag_name("ServiceException"))
                .and_then(|n| n.attribute("code"))
                .unwrap_or_default()
                .to_owned();
        }
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    /// The rejection the layer placed in the extensions.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.extensions.get::<Rejection>()
    }

    /// Why the layer refused, from the response extensions.
    #[track_caller]
    pub fn kind(&self) -> RejectionKind {
        self.rejection()
            .unwrap_or_else(|| panic!("no rejection: {} {}", self.status, self.text()))
            .kind()
    }

    /// The rule that refused the request, from the decision the rejection carries.
    pub fn rule(&self) -> Option<Rule> {
        self.rejection()
            .and_then(Rejection::decision)
            .and_then(|d| d.rule())
    }

    /// The `WWW-Authenticate` challenge's parameters.
    #[track_caller]
    pub fn challenge(&self) -> BTreeMap<String, String> {
        let all = self.header_all(WWW_AUTHENTICATE);
        assert_eq!(all.len(), 1, "exactly one challenge: {all:?}");
        challenge_params(all[0]).unwrap_or_else(|| panic!("not a Bearer challenge: {}", all[0]))
    }

    /// The wrapped service answered.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "expected the handler's answer, got {} {}",
            self.status,
            self.text()
        );
        assert!(self.rejection().is_none());
    }

    /// A refusal with this status and `error`, as JSON `{"error", "error_description"}`.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, error: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status} {error}, got {} {}",
            self.status,
            self.text()
        );
        assert_eq!(self.header(CONTENT_TYPE), Some("application/json"));
        let body = self.json();
        let fields = body.as_object().expect("a JSON object");
        assert_eq!(fields.len(), 2, "only error and error_description: {body}");
        assert_eq!(body["error"], error, "{body}");
        let description = body["error_description"]
            .as_str()
            .expect("a string error_description");
        assert!(!description.is_empty());
        let rejection = self
            .rejection()
            .expect("the rejection is in the extensions");
        assert_eq!(rejection.status().as_u16(), status);
        assert_eq!(rejection.error_code(), error);
    }

    /// A refusal with this status and JSON `error` code, by `rule` of the policy.
    #[track_caller]
    pub fn assert_refused_by(&self, status: StatusCode, error: &str, rule: Rule) {
        assert_eq!(self.status, status, "{}", self.describe());
        assert_eq!(self.error(), error, "{}", self.describe());
        assert_eq!(self.rule(), Some(rule), "{}", self.describe());
    }

    /// A JSON error with this status and `error`, a description, and (when given) the
    /// `field` it is about, as the admin API answers.
    #[track_caller]
    pub fn assert_json_error(&self, status: StatusCode, error: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.describe());
        let body = self.json();
        assert_eq!(body["error"], error, "{}", self.describe());
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{}", self.describe());
        }
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }

    /// A refusal with an RFC 6750 challenge carrying `error`.
    #[track_caller]
    pub fn assert_challenged(&self, status: u16, error: &str) {
        self.assert_refused(status, error);
        let params = self.challenge();
        assert_eq!(params.get("realm").map(String::as_str), Some(REALM));
        assert_eq!(params.get("error").map(String::as_str), Some(error));
        let body = self.json();
        if let Some(description) = params.get("error_description") {
            assert_eq!(body["error_description"], description.as_str());
        }
    }

    /// 401 with the bare challenge `Bearer realm="gis-auth"`: no credential at all.
    #[track_caller]
    pub fn assert_missing_credential(&self) {
        assert_eq!(
            self.status,
            StatusCode::UNAUTHORIZED,
            "expected 401, got {} {}",
            self.status,
            self.text()
        );
        assert_eq!(
            self.header_all(WWW_AUTHENTICATE),
            [format!("Bearer realm=\"{REALM}\"").as_str()]
        );
        let body = self.json();
        assert!(body["error_description"].is_string(), "{body}");
        let error = body["error"].as_str().expect("a string error");
        assert!(
            !["invalid_request", "invalid_token", "insufficient_scope"].contains(&error),
            "no RFC 6750 error code without a credential: {error}"
        );
        assert_eq!(self.kind(), RejectionKind::MissingCredential);
    }

    /// 400 `invalid_request`.
    #[track_caller]
    pub fn assert_invalid_request(&self) {
        self.assert_challenged(400, "invalid_request");
    }

    /// 401 `invalid_token`.
    #[track_caller]
    pub fn assert_invalid_token(&self) {
        self.assert_challenged(401, "invalid_token");
    }

    /// 403 `insufficient_scope` (a known client refused by role or plugin rule).
    #[track_caller]
    pub fn assert_insufficient_scope(&self) {
        self.assert_challenged(403, "insufficient_scope");
    }

    /// 403 `access_denied` (refused by route, origin or IP), without a challenge.
    #[track_caller]
    pub fn assert_access_denied(&self) {
        self.assert_refused(403, "access_denied");
        assert!(
            self.headers.get(WWW_AUTHENTICATE).is_none(),
            "no challenge on access_denied"
        );
    }

    /// 503 with `Retry-After`, without a challenge.
    #[track_caller]
    pub fn assert_unavailable(&self) {
        assert_eq!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "expected 503, got {} {}",
            self.status,
            self.text()
        );
        assert_eq!(self.header(CONTENT_TYPE), Some("application/json"));
        let body = self.json();
        assert!(body["error"].is_string() && body["error_description"].is_string());
        let retry = self.header("retry-after").expect("a Retry-After header");
        assert!(
            !retry.is_empty() && retry.bytes().all(|b| b.is_ascii_digit()),
            "Retry-After is delta-seconds: {retry}"
        );
        assert!(self.headers.get(WWW_AUTHENTICATE).is_none());
        assert_eq!(self.kind(), RejectionKind::Unavailable);
    }

    /// Neither the headers nor the body contain `secret`.
    #[track_caller]
    pub fn assert_does_not_reveal(&self, secret: &str) {
        assert!(!self.text().contains(secret), "the body reveals a secret");
        for (name, value) in &self.headers {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(secret),
                "header {name} reveals a secret"
            );
        }
    }
}
