//! The answer of the public documents ([`JwksService`](super::JwksService) and
//! [`MetadataService`](super::MetadataService)): JSON to `GET` and `HEAD`, cacheable for
//! [`JWKS_MAX_AGE`](super::JWKS_MAX_AGE) seconds; 405 to anything else.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

/// `Cache-Control` of the public documents.
const CACHEABLE: &str = "public, max-age=300";

/// The document `body` makes, to `GET` and `HEAD` (with no body); 405 otherwise. A
/// document that cannot be serialised is a 503, never cached.
pub(super) fn json_document(
    method: &Method,
    body: impl FnOnce() -> serde_json::Result<Vec<u8>>,
) -> Response<Full<Bytes>> {
    let (status, body, cache) = if method != Method::GET && method != Method::HEAD {
        let error = br#"{"error":"invalid_request","error_description":"GET only"}"#;
        (StatusCode::METHOD_NOT_ALLOWED, error.to_vec(), "no-store")
    } else {
        match body() {
            Ok(json) => (StatusCode::OK, json, CACHEABLE),
            Err(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                br#"{"error":"temporarily_unavailable"}"#.to_vec(),
                "no-store",
            ),
        }
    };
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        h.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_methods_are_405_and_head_has_no_body() {
        let res = json_document(&Method::POST, || Ok(b"{}".to_vec()));
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()[ALLOW], "GET, HEAD");
        let res = json_document(&Method::HEAD, || Ok(b"{}".to_vec()));
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[CACHE_CONTROL], CACHEABLE);
        assert_eq!(http_body::Body::size_hint(res.body()).exact(), Some(0));
    }
}
