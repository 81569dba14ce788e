//! Requests to the example server's router, built the way its clients send them.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{Method, Request, header};

/// The form field every token request carries.
pub const GRANT: &str = "grant_type=client_credentials";

/// `s`, `application/x-www-form-urlencoded`.
pub fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A client credentials form with `client_secret_post` authentication.
pub fn post_form(id: &str, secret: &str) -> String {
    format!(
        "{GRANT}&client_id={}&client_secret={}",
        form_encode(id),
        form_encode(secret)
    )
}

/// `method path` with an empty body.
pub fn request(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("a request")
}

/// `GET path`.
pub fn get(path: &str) -> Request<Body> {
    request(Method::GET, path)
}

/// `GET path` with `Authorization: Bearer <token>`.
pub fn bearer(path: &str, token: &str) -> Request<Body> {
    get(path).bearer(token)
}

/// `POST /oauth/token` with a form body.
pub fn token_request(form: &str) -> Request<Body> {
    Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("a request")
}

/// `POST path` with a form body: the introspection and revocation endpoints.
pub fn form_request(path: &str, form: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("a request")
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined and Base64-encoded.
pub fn basic_value(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// `req` with `client_secret_basic` authentication.
pub fn with_basic(mut req: Request<Body>, id: &str, secret: &str) -> Request<Body> {
    let value = basic_value(id, secret).parse().expect("a header value");
    req.headers_mut().insert(header::AUTHORIZATION, value);
    req
}

/// `req` arriving on a connection from `peer` (an IP address).
pub fn from_peer(req: Request<Body>, peer: &str) -> Request<Body> {
    req.peer(peer)
}

/// What a test adds to a request.
pub trait RequestExt {
    /// The connection's peer address (as axum's `ConnectInfo`).
    fn peer(self, ip: &str) -> Self;
    /// An `Origin` header.
    fn origin(self, origin: &str) -> Self;
    /// `Authorization: Bearer <token>`.
    fn bearer(self, token: &str) -> Self;
}

impl RequestExt for Request<Body> {
    fn peer(mut self, ip: &str) -> Self {
        let ip: IpAddr = ip.parse().expect("an IP address");
        self.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
        self
    }

    fn origin(mut self, origin: &str) -> Self {
        let value = origin.parse().expect("a header value");
        self.headers_mut().insert(header::ORIGIN, value);
        self
    }

    fn bearer(mut self, token: &str) -> Self {
        let value = format!("Bearer {token}").parse().expect("a header value");
        self.headers_mut().insert(header::AUTHORIZATION, value);
        self
    }
}
