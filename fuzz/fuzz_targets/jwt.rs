//! Bearer token verification on arbitrary input: never a panic, and never an admission
//! for anything but the one token the issuer minted (the cache on, so hits run too).
//!
//! Input: the token text. The first input of a run also seeds the cache with a real token.

#![no_main]

use std::sync::{Arc, OnceLock};

use gis_auth::client::{Account, AccountId, Role, RoleSet};
use gis_auth::store::InMemoryStore;
use gis_auth::token::{JwtVerifier, SigningKey, TokenIssuer, TokenVerifier};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    verifier: JwtVerifier,
    token: String,
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
        let native = &made.native.client;
        let token = issuer
            .issue(native, &made.account, native.roles(), 0, None)
            .expect("token")
            .access_token;
        let verifier = JwtVerifier::new(issuer, store);
        assert!(matches!(verifier.verify_now(&token), Some(Ok(_))));
        Fixture { verifier, token }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Also try the input spliced into the real token's parts.
    let parts: Vec<&str> = fixture.token.split('.').collect();
    let spliced = [
        format!("{text}.{}.{}", parts[1], parts[2]),
        format!("{}.{text}.{}", parts[0], parts[2]),
        format!("{}.{}.{text}", parts[0], parts[1]),
    ];
    for candidate in std::iter::once(text).chain(spliced.iter().map(String::as_str)) {
        match fixture.verifier.verify_now(candidate) {
            Some(Ok(_)) => assert_eq!(candidate, fixture.token, "a token was forged"),
            Some(Err(_)) => {}
            None => panic!("an in-memory store answers at once"),
        }
    }
});
