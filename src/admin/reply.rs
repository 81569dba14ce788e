//! What the admin API answers: JSON bodies with their headers, and its errors.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, LOCATION, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::document::field_of;
use crate::error::ConfigError;
use crate::store::{ManageError, RecordKind};

/// A successful answer.
pub(crate) struct Reply {
    status: StatusCode,
    body: Option<Value>,
    etag: Option<String>,
    location: Option<String>,
    cache: &'static str,
}

impl Reply {
    pub(crate) fn ok(body: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            etag: None,
            location: None,
            cache: "no-store",
        }
    }

    pub(crate) fn created(body: Value, location: String) -> Self {
        Reply {
            status: StatusCode::CREATED,
            location: Some(location),
            ..Reply::ok(body)
        }
    }

    /// A `201` whose answer names what was made (no `Location`).
    pub(crate) fn created_here(body: Value) -> Self {
        Reply {
            status: StatusCode::CREATED,
            ..Reply::ok(body)
        }
    }

    pub(crate) fn no_content() -> Self {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            ..Reply::ok(Value::Null)
        }
    }

    /// A public document that caches may keep for a while.
    pub(crate) fn public(body: Value) -> Self {
        Reply {
            cache: "public, max-age=3600",
            ..Reply::ok(body)
        }
    }

    pub(crate) fn with_etag(mut self, etag: String) -> Self {
        self.etag = Some(etag);
        self
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let body = self
            .body
            .map(|b| Bytes::from(b.to_string()))
            .unwrap_or_default();
        let has_body = !body.is_empty();
        let mut res = Response::new(Full::new(body));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        if has_body {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        h.insert(CACHE_CONTROL, HeaderValue::from_static(self.cache));
        if let Some(tag) = self.etag.and_then(|t| HeaderValue::try_from(t).ok()) {
            h.insert(ETAG, tag);
        }
        if let Some(loc) = self.location.and_then(|l| HeaderValue::try_from(l).ok()) {
            h.insert(LOCATION, loc);
        }
        res
    }
}

/// A refused admin request: status, error code, a description, and the field at fault.
#[derive(Debug)]
pub(crate) struct AdminError {
    status: StatusCode,
    code: &'static str,
    description: String,
    field: Option<String>,
    etag: Option<String>,
    allow: Option<&'static str>,
}

impl AdminError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            description: description.into(),
            field: None,
            etag: None,
            allow: None,
        }
    }

    /// 400 `invalid_request`, naming the field.
    pub(crate) fn invalid(field: &str, description: impl Into<String>) -> Self {
        AdminError {
            field: Some(field.to_owned()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                description.into(),
            )
        }
    }

    /// 400 `invalid_request` about the request as a whole.
    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(crate) fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", description)
    }

    pub(crate) fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "insufficient_scope", description)
    }

    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        AdminError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("this resource accepts {allow}"),
            )
        }
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the body is at most {limit} bytes"),
        )
    }

    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "the body is JSON: send `Content-Type: application/json`",
        )
    }

    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the store is temporarily unavailable; try again",
        )
    }

    pub(crate) fn not_behind_layer() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the admin API is not behind the authentication layer",
        )
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let mut body = json!({"error": self.code, "error_description": self.description});
        if let Some(field) = &self.field {
            body["field"] = Value::from(field.as_str());
        }
        let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(tag) = self.etag.and_then(|t| HeaderValue::try_from(t).ok()) {
            h.insert(ETAG, tag);
        }
        if let Some(allow) = self.allow {
            h.insert(ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

impl From<ConfigError> for AdminError {
    fn from(e: ConfigError) -> Self {
        match &e {
            ConfigError::RandomSource => {
                tracing::warn!(error = %e, "admin API could not generate a credential");
                AdminError::unavailable()
            }
            _ => AdminError::invalid(field_of(&e).unwrap_or("body"), e.to_string()),
        }
    }
}

impl From<ManageError> for AdminError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Invalid(e) => e.into(),
            ManageError::NotFound { kind, .. } => match kind {
                RecordKind::Account => AdminError::not_found("no such account"),
                RecordKind::Client => AdminError::not_found("no such client"),
            },
            ManageError::Duplicate { .. } => AdminError {
                field: Some("id".to_owned()),
                ..AdminError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            },
            ManageError::Stale { current } => AdminError {
                etag: Some(current),
                ..AdminError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "precondition_failed",
                    "the client changed since you read it (If-Match does not match its ETag); \
                     read it again and reapply your change",
                )
            },
            ManageError::LockOut(why) => AdminError::new(StatusCode::CONFLICT, "conflict", why),
            ManageError::TooManyClients { .. } => {
                AdminError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            ManageError::RandomSource => {
                tracing::warn!(error = %e, "admin API could not generate a credential");
                AdminError::unavailable()
            }
            ManageError::Backend(e) => {
                tracing::warn!(error = %e, "admin API: the store failed");
                AdminError::unavailable()
            }
        }
    }
}

impl From<crate::error::BackendError> for AdminError {
    fn from(e: crate::error::BackendError) -> Self {
        tracing::warn!(error = %e, "admin API: the store failed");
        AdminError::unavailable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{AccountId, ClientId};
    use crate::error::BackendError;

    fn answer(e: ManageError) -> (StatusCode, &'static str, Option<String>, Option<String>) {
        let e = AdminError::from(e);
        (e.status, e.code, e.field, e.etag)
    }

    #[test]
    fn management_errors_answer_with_their_statuses() {
        let acme = AccountId::new("acme").unwrap();
        let web = ClientId::new("web").unwrap();
        assert_eq!(
            answer(ManageError::unknown_account(&acme)),
            (StatusCode::NOT_FOUND, "not_found", None, None)
        );
        let unknown = AdminError::from(ManageError::unknown_client(&web));
        assert_eq!(
            (unknown.status, unknown.description.as_str()),
            (StatusCode::NOT_FOUND, "no such client")
        );
        assert_eq!(
            answer(ManageError::duplicate_client(&web)),
            (StatusCode::CONFLICT, "conflict", Some("id".into()), None)
        );
        assert_eq!(
            answer(ManageError::Stale {
                current: "\"t1\"".into()
            }),
            (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                None,
                Some("\"t1\"".into())
            )
        );
        assert_eq!(
            answer(ManageError::LockOut("last admin client".into())).0,
            StatusCode::CONFLICT
        );
        assert_eq!(
            answer(ManageError::TooManyClients {
                account: "acme".into(),
                max: 3
            }),
            (StatusCode::CONFLICT, "conflict", None, None)
        );
        for unavailable in [
            ManageError::RandomSource,
            ManageError::Backend(BackendError::new("down")),
        ] {
            assert_eq!(
                answer(unavailable),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    None,
                    None
                )
            );
        }
        assert_eq!(
            answer(ManageError::Invalid(ConfigError::InvalidIpRule {
                rule: "x".into(),
                reason: "bad"
            })),
            (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Some("allowed_ips".into()),
                None
            )
        );
    }
}
