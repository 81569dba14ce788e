//! What the token endpoint answers: an access token (RFC 6749 §5.1) or an error (§5.2);
//! what the introspection (RFC 7662 §2.2) and revocation (RFC 7009 §2.2) endpoints answer,
//! or their errors, alike: always as JSON with `Cache-Control: no-store`, and rendered
//! here only.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::credentials::Realm;
use crate::rule::RejectionKind;

/// How the client sent its id and secret (RFC 6749 §2.3.1); an `invalid_client` answer
/// challenges with the scheme the client used (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientAuthMethod {
    /// `Authorization: Basic` (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form (`client_secret_post`).
    Post,
}

/// The endpoint's answer to one request, before it is rendered.
pub(super) enum TokenResponse {
    /// 200 with this body: an access token, an introspection answer, or `{}` for a
    /// revocation.
    Json(serde_json::Value),
    /// An RFC 6749 §5.2 error.
    Error(ErrorResponse),
    /// 405: the endpoint accepts POST only.
    MethodNotAllowed,
}

/// An RFC 6749 §5.2 error response.
pub(super) struct ErrorResponse {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
    /// `WWW-Authenticate: Basic`, for a client that tried Basic authentication (§5.2).
    basic_challenge: bool,
    retry_after: Option<Duration>,
}

impl ErrorResponse {
    pub(super) fn new(status: StatusCode, code: &'static str, description: &'static str) -> Self {
        Self {
            status,
            code,
            description,
            basic_challenge: false,
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub(super) fn invalid_request(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 413: the body is larger than the endpoint reads.
    pub(super) fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is larger than 8 KiB",
        )
    }

    /// 400 `invalid_scope`.
    pub(super) fn invalid_scope(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// 401 `invalid_client`: every failure to authenticate the client looks like this, and
    /// it challenges with Basic when Basic was used.
    pub(super) fn invalid_client(method: Option<ClientAuthMethod>) -> Self {
        Self {
            basic_challenge: method == Some(ClientAuthMethod::Basic),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            )
        }
    }

    /// 429: too many failed authentications from here; try again after `wait`.
    pub(super) fn locked_out(wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many failed client authentications; try again later",
            )
        }
    }

    /// 503: a backend failed or ran out of its time budget; the same answer the layer
    /// gives.
    pub(super) fn unavailable() -> Self {
        let kind = RejectionKind::Unavailable;
        Self {
            retry_after: Some(Duration::from_secs(1)),
            ..Self::new(kind.status(), kind.error_code(), kind.description())
        }
    }
}

impl From<ErrorResponse> for TokenResponse {
    fn from(error: ErrorResponse) -> Self {
        TokenResponse::Error(error)
    }
}

impl TokenResponse {
    /// The HTTP response, challenging in `realm` where §5.2 asks for a challenge.
    pub(super) fn render(self, realm: &Realm) -> Response<Full<Bytes>> {
        let (status, body) = match &self {
            TokenResponse::Json(body) => (StatusCode::OK, body.to_string()),
            TokenResponse::Error(e) => (
                e.status,
                serde_json::json!({"error": e.code, "error_description": e.description})
                    .to_string(),
            ),
            TokenResponse::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({
                    "error": "invalid_request",
                    "error_description": "this endpoint accepts POST only",
                })
                .to_string(),
            ),
        };
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        match self {
            TokenResponse::MethodNotAllowed => {
                h.insert(ALLOW, HeaderValue::from_static("POST"));
            }
            TokenResponse::Error(e) => {
                if e.basic_challenge
                    && let Ok(v) =
                        HeaderValue::try_from(format!("Basic realm=\"{}\"", realm.as_str()))
                {
                    h.insert(WWW_AUTHENTICATE, v);
                }
                if let Some(after) = e.retry_after {
                    h.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
                }
            }
            TokenResponse::Json(_) => {}
        }
        res
    }
}
