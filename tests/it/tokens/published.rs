//! What the server publishes for others: the JWK set at `/.well-known/jwks.json`, the
//! RFC 8414 metadata at `/.well-known/oauth-authorization-server`, and a resource server
//! that verifies an issued token with nothing but `jsonwebtoken` and the JWK set fetched
//! over HTTP. Also the RFC 9068 claims and a requested `expires_in`.

use std::net::SocketAddr;

use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

use super::*;
use crate::harness::request::{get, request};

const JWKS: &str = "/.well-known/jwks.json";
const METADATA: &str = "/.well-known/oauth-authorization-server";

fn ed25519(kid: &str) -> SigningKey {
    SigningKey::generate_ed25519(Some(kid)).expect("a fresh Ed25519 key")
}

fn es256(kid: &str) -> SigningKey {
    SigningKey::es256_pem(
        kid,
        ES256_PRIVATE_PEM.as_bytes(),
        ES256_PUBLIC_PEM.as_bytes(),
    )
    .expect("the test P-256 key")
}

/// The router on 127.0.0.1 at a free port, as the example's `main.rs` serves it.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

/// `GET http://addr/path` over a real connection: the status, `Cache-Control` and body.
async fn http_get(addr: SocketAddr, path: &str) -> (StatusCode, Option<String>, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = format!("http://{addr}{path}").parse().expect("a URI");
    let res = client.get(uri).await.expect("the server answers");
    let status = res.status();
    let cache = res
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.into_body().collect().await.expect("a body").to_bytes();
    (status, cache, body)
}

/// What a resource server elsewhere does with a bearer token: find the key by the token's
/// `kid` in the JWK set, and check the signature, `typ`, `iss`, `aud` and `exp` (on the
/// test's clock: jsonwebtoken's own expiry check reads the wall clock). Only jsonwebtoken
/// and serde_json: no gis-auth code.
fn verify_elsewhere(token: &str, jwks: &JwkSet, now: i64) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("at+jwt") {
        return Err(format!("typ {:?}", header.typ));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or_else(|| format!("no key `{kid}`"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[ISSUER_URL]);
    validation.set_audience(&[ISSUER_URL]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    let exp = data.claims["exp"].as_i64().ok_or("no exp")?;
    if now >= exp {
        return Err("expired".to_owned());
    }
    Ok(data.claims)
}

async fn fetch_jwks(addr: SocketAddr) -> JwkSet {
    let (status, cache, body) = http_get(addr, JWKS).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache.as_deref(), Some("public, max-age=300"));
    serde_json::from_slice(&body).expect("a JWK set")
}

#[tokio::test]
async fn a_resource_server_verifies_a_token_with_only_jsonwebtoken_and_the_fetched_jwks() {
    for key in [ed25519("ed-1"), es256("ec-1")] {
        let kid = key.kid().to_owned();
        let s = Server::builder().signing_key(key).build();
        let addr = serve(s.router.clone()).await;
        let token = s.token().await;
        let jwks = fetch_jwks(addr).await;
        let claims = verify_elsewhere(&token, &jwks, s.now()).expect("the token verifies");
        assert_eq!(claims["client_id"], s.native_id().as_str());
        assert_eq!(claims["sub"], s.native_id().as_str());
        assert_eq!(claims["scope"], "Evaluator User");
        assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some(kid.as_str()));

        // A token signed by anyone else does not.
        let forger = SigningKey::generate_ed25519(Some(&kid)).expect("a key");
        let other = Server::builder().signing_key(forger).build();
        let forged = other.token().await;
        assert!(verify_elsewhere(&forged, &jwks, s.now()).is_err());
        // Nor one past its `exp`.
        assert_eq!(
            verify_elsewhere(&token, &jwks, s.now() + 3600),
            Err("expired".to_owned())
        );
    }
}

#[tokio::test]
async fn the_jwks_holds_public_keys_only_with_every_member() {
    let s = Server::builder().signing_key(es256("ec-1")).build();
    let reply = s.send(get(JWKS)).await;
    reply.assert_ok();
    assert_eq!(
        reply.header(header::CACHE_CONTROL),
        Some("public, max-age=300")
    );
    let keys = reply.json()["keys"].clone();
    let key = &keys[0];
    assert_eq!(keys.as_array().map(Vec::len), Some(1));
    for (member, value) in [
        ("kid", "ec-1"),
        ("kty", "EC"),
        ("crv", "P-256"),
        ("alg", "ES256"),
        ("use", "sig"),
    ] {
        assert_eq!(key[member], value, "{member} in {key}");
    }
    assert!(key["x"].is_string() && key["y"].is_string(), "{key}");
    assert!(key.get("d").is_none(), "never the private key: {key}");

    let s = Server::builder().signing_key(ed25519("ed-1")).build();
    let key = s.send(get(JWKS)).await.json()["keys"][0].clone();
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(key["alg"], "EdDSA");
    assert!(key["x"].is_string() && key.get("d").is_none(), "{key}");
}

#[tokio::test]
async fn with_hs256_only_the_jwks_is_empty() {
    let s = Server::new();
    let reply = s.send(get(JWKS)).await;
    reply.assert_ok();
    assert_eq!(reply.json(), json!({"keys": []}));
    assert!(
        !reply
            .text()
            .contains(&URL_SAFE_NO_PAD.encode(ISSUER_SECRET))
    );
}

#[tokio::test]
async fn the_jwks_keeps_a_rotated_key_through_its_grace_and_old_tokens_verify_elsewhere() {
    let s = Server::builder().signing_key(ed25519("ed-1")).build();
    let addr = serve(s.router.clone()).await;
    let old = s.token().await;
    s.issuer
        .rotate_key(ed25519("ed-2"), Duration::from_secs(600))
        .expect("rotated");
    let new = s.token().await;
    let jwks = fetch_jwks(addr).await;
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, ["ed-2", "ed-1"]);
    for token in [&old, &new] {
        verify_elsewhere(token, &jwks, s.now()).expect("verifies");
    }
    s.clock.advance(secs(600));
    let jwks = fetch_jwks(addr).await;
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, ["ed-2"]);
    assert!(verify_elsewhere(&old, &jwks, s.now()).is_err());
    verify_elsewhere(&new, &jwks, s.now()).expect("still verifies");
    // And the server itself agrees.
    assert_eq!(s.call(GEOCODE, &old).await.status, StatusCode::UNAUTHORIZED);
    s.call(GEOCODE, &new).await.assert_ok();
}

#[tokio::test]
async fn the_metadata_names_the_endpoints_keys_grant_and_scopes() {
    let s = Server::builder().signing_key(ed25519("ed-1")).build();
    let reply = s.send(get(METADATA)).await;
    reply.assert_ok();
    assert_eq!(
        reply.header(header::CACHE_CONTROL),
        Some("public, max-age=300")
    );
    assert_eq!(
        reply.json(),
        json!({
            "issuer": ISSUER_URL,
            "token_endpoint": format!("{ISSUER_URL}/oauth/token"),
            "jwks_uri": format!("{ISSUER_URL}/.well-known/jwks.json"),
            "scopes_supported": ["Evaluator", "Subscriber", "User"],
            "response_types_supported": [],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint": format!("{ISSUER_URL}/oauth/introspect"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint": format!("{ISSUER_URL}/oauth/revoke"),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })
    );
}

#[tokio::test]
async fn the_well_known_documents_need_no_credential_and_ignore_a_bad_one() {
    let s = Server::new();
    for path in [JWKS, METADATA] {
        s.send(get(path)).await.assert_ok();
        // A public route does not look at a credential (as /health).
        s.call(path, "not-a-token").await.assert_ok();
        let reply = s.send(request(http::Method::POST, path)).await;
        assert_ne!(reply.status, StatusCode::OK, "{path} is read-only");
    }
}

#[tokio::test]
async fn every_token_carries_the_rfc_9068_claims() {
    let s = Server::builder().signing_key(ed25519("ed-1")).build();
    let first = s.token().await;
    let second = s.token().await;
    let [header, payload, _] = parts(&first);
    let header = decode_part(&header);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], "ed-1");
    let claims = decode_part(&payload);
    let now = s.now();
    assert_eq!(claims["iss"], ISSUER_URL);
    assert_eq!(claims["aud"], ISSUER_URL);
    assert_eq!(claims["sub"], s.native_id().as_str());
    assert_eq!(claims["client_id"], s.native_id().as_str());
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims["scope"], "Evaluator User");
    let jti = claims["jti"].as_str().expect("a jti");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(jti).expect("Base64URL").len(),
        16,
        "128 bits"
    );
    assert_ne!(decode_part(&parts(&second)[1])["jti"], jti, "unique");
}

fn form_with(s: &Server, extra: &str) -> String {
    format!(
        "{}&{extra}",
        post_form(s.native_id().as_str(), &s.native_secret())
    )
}

#[tokio::test]
async fn a_request_may_ask_for_a_shorter_lifetime() {
    let s = Server::new();
    let body = assert_token_response(&s.exchange_form(&form_with(&s, "expires_in=300")).await);
    assert_eq!(body["expires_in"], 300);
    let token = access_token(&body);
    let claims = decode_part(&parts(&token)[1]);
    assert_eq!(claims["exp"], s.now() + 300);
    s.clock.advance(secs(299));
    s.call(GEOCODE, &token).await.assert_ok();
    s.clock.advance(secs(1));
    assert_eq!(
        s.call(GEOCODE, &token).await.status,
        StatusCode::UNAUTHORIZED
    );

    let body = assert_token_response(&s.exchange_form(&form_with(&s, "expires_in=60")).await);
    assert_eq!(body["expires_in"], 60);
    // Longer than the issuer's lifetime: capped, and the answer says so.
    let body = assert_token_response(&s.exchange_form(&form_with(&s, "expires_in=86400")).await);
    assert_eq!(body["expires_in"], 3600);
}

#[tokio::test]
async fn an_invalid_expires_in_is_invalid_request() {
    let s = Server::new();
    for bad in ["59", "0", "", "-300", "300.5", "5m", "99999999999"] {
        let reply = s
            .exchange_form(&form_with(&s, &format!("expires_in={}", form_encode(bad))))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad:?}: {}",
            reply.describe()
        );
        assert_eq!(reply.json()["error"], "invalid_request", "{bad:?}");
    }
}
