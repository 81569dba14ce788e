//! The admin API end to end, through the example server's router: every endpoint, each
//! validation error, the JavaScript-key refusal, cross-account isolation, `ETag`/`If-Match`,
//! the lock-out guard, revocation on the very next request, and the OpenAPI document
//! agreeing with what is served.
//!
//! One module per topic; the way they call the API is here.

mod access;
mod audit;
mod boundary;
mod clients;
mod credentials;
mod etag;
mod guard;
mod openapi;
mod plans;
mod profile;

use axum::body::Body;
use gis_auth::client::{ClientSpec, Role};
use gis_auth::policy::{RouteAccess, standard_routes};
use gis_auth::store::{AuditQuery, ManagedStore};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::reply::Reply;
use crate::harness::server::{self, Server, roles};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The example server with a daily quota of a thousand transactions on `acme`.
fn server() -> Server {
    Server::builder().quota(Some(1_000)).build()
}

/// `method path` with `token` and an optional JSON body.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    call_with(server, method, path, token, body, &[]).await
}

/// `method path` with `token`, an optional JSON body, and these headers.
async fn call_with(
    server: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    headers: &[(header::HeaderName, &str)],
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    server.send(req.body(body).expect("a request")).await
}

/// A token for `acme`'s default NativeConfidential client.
async fn acme_token(server: &Server) -> String {
    server.token_of(&server.acme.native).await
}
