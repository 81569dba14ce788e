//! The token endpoint on arbitrary requests: form bodies, `Authorization` headers and
//! query strings never make it panic, every answer is a well-formed status, and only the
//! real secret gets a token.
//!
//! Input: the `Authorization` value, a 0xff byte, the query, a 0xff byte, the body.

#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use gis_auth::client::{Account, AccountId, Role, RoleSet};
use gis_auth::store::InMemoryStore;
use gis_auth::token::{SigningKey, TokenIssuer, TokenService};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: TokenService,
    secret: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let store = Arc::new(InMemoryStore::new());
        let made = store
            .open_account(
                Account::new(
                    AccountId::new("fuzz").expect("id"),
                    "Fuzz",
                    RoleSet::from_iter([Role::USER]),
                )
                .expect("account"),
            )
            .expect("created");
        let issuer = TokenIssuer::new(SigningKey::hs256("k1", &[9; 32]).expect("key"));
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime"),
            service: TokenService::new(issuer, store),
            secret: made.native.credential.expose().to_owned(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let auth = parts.next().unwrap_or_default();
    let query = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let Ok(mut req) = Request::post(format!("/oauth/token?{query}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::copy_from_slice(body)))
    else {
        return;
    };
    if let Ok(value) = HeaderValue::from_bytes(auth) {
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
    }
    let service = fixture.service.clone();
    fixture.runtime.block_on(async {
        let res = service.oneshot(req).await.unwrap_or_else(|e| match e {});
        let status = res.status();
        assert!(
            [200, 400, 401, 405, 413, 429].contains(&status.as_u16()),
            "unexpected status {status}"
        );
        let body = res.into_body().collect().await.expect("a body").to_bytes();
        if status == 200 {
            let text = String::from_utf8_lossy(data);
            assert!(text.contains(&fixture.secret), "a token without the secret");
        }
        assert!(!String::from_utf8_lossy(&body).contains(&fixture.secret));
    });
});
