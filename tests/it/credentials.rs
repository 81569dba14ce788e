//! Pulling the credential out of a request, end to end: every RFC 6750 outcome with its
//! status, error code and `WWW-Authenticate` challenge.

use std::sync::Arc;

use gis_auth::client::{ClientSpec, CredentialKind, PlainCredential};
use gis_auth::store::InMemoryStore;
use gis_auth::{AuthLayer, RejectionKind};

use crate::harness::reply::send;
use crate::harness::world::{Echo, World, get, gis_routes, stranger_key, tile, with_key};

// ---- no credential -------------------------------------------------------------------

#[tokio::test]
async fn no_credential_gets_a_bare_bearer_challenge() {
    let world = World::new();
    for path in ["/tiles/1/2/3.png", "/geocode?q=x", "/account/profile"] {
        world.send(get(path)).await.assert_missing_credential();
    }
}

#[tokio::test]
async fn other_query_parameters_are_not_a_credential() {
    let world = World::new();
    let r = world
        .send(get(
            "/elevation?lat=1&lon=2&key=abc&api_key=abc&apikeys=abc",
        ))
        .await;
    r.assert_missing_credential();
}

#[tokio::test]
async fn basic_authorization_counts_as_no_credential() {
    let world = World::new();
    let r = world
        .send(get("/tiles/1/2/3.png").header("authorization", "Basic dXNlcjpwYXNz"))
        .await;
    r.assert_missing_credential();
    let r = world
        .send(get("/geocode").header("authorization", "Bearerx abc"))
        .await;
    r.assert_missing_credential();
}

#[tokio::test]
async fn basic_authorization_beside_an_api_key_leaves_the_key_in_use() {
    let world = World::new();
    let r = world
        .send(get(&tile(&world.key())).header("authorization", "Basic dXNlcjpwYXNz"))
        .await;
    r.assert_ok();
    assert_eq!(r.principal()["client_id"], world.js_id().as_str());
}

// ---- 400 invalid_request -------------------------------------------------------------

#[tokio::test]
async fn a_bearer_header_and_an_api_key_together_are_an_invalid_request() {
    let world = World::new();
    let r = world
        .send(get(&tile(&world.key())).bearer(&world.token()))
        .await;
    r.assert_invalid_request();
    assert_eq!(r.kind(), RejectionKind::MultipleCredentials);
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let world = World::new();
    let token = world.token();
    let r = world
        .send(get("/geocode").bearer(&token).bearer(&token))
        .await;
    r.assert_invalid_request();
    let r = world
        .send(
            get("/geocode")
                .header("authorization", "Basic dXNlcjpwYXNz")
                .bearer(&token),
        )
        .await;
    r.assert_invalid_request();
    assert_eq!(r.kind(), RejectionKind::MultipleCredentials);
}

#[tokio::test]
async fn the_api_key_parameter_twice_in_any_case_mix_is_an_invalid_request() {
    let world = World::new();
    let key = world.key();
    let other = stranger_key();
    for query in [
        format!("apikey={key}&apikey={key}"),
        format!("apikey={key}&APIKEY={other}"),
        format!("ApiKey={key}&lat=1&apiKEY={key}"),
        format!("api%6Bey={key}&APIKEY={key}"),
        format!("apikey={key}&apikey="),
    ] {
        let r = world.send(get(&format!("/elevation?{query}"))).await;
        r.assert_invalid_request();
        assert_eq!(r.kind(), RejectionKind::MultipleCredentials, "{query}");
    }
}

#[tokio::test]
async fn bearer_with_nothing_after_it_is_an_invalid_request() {
    let world = World::new();
    for value in ["Bearer", "Bearer ", "Bearer     ", "bearer"] {
        let r = world
            .send(get("/geocode").header("authorization", value))
            .await;
        r.assert_invalid_request();
        assert_eq!(r.kind(), RejectionKind::EmptyCredential, "{value:?}");
    }
}

#[tokio::test]
async fn an_empty_api_key_parameter_is_an_invalid_request() {
    let world = World::new();
    for path in [
        "/tiles/1/2/3.png?apikey=",
        "/tiles/1/2/3.png?apikey",
        "/elevation?lat=1&APIKEY=&lon=2",
    ] {
        let r = world.send(get(path)).await;
        r.assert_invalid_request();
        assert_eq!(r.kind(), RejectionKind::EmptyCredential, "{path}");
    }
}

#[tokio::test]
async fn a_malformed_bearer_header_is_an_invalid_request() {
    let world = World::new();
    for value in [
        "Bearer a b",
        "Bearer tok en",
        "Bearer a,b",
        "Bearer ===",
        "Bearer a=b",
    ] {
        let r = world
            .send(get("/geocode").header("authorization", value))
            .await;
        r.assert_invalid_request();
        assert_eq!(r.kind(), RejectionKind::MalformedHeader, "{value:?}");
    }
}

#[tokio::test]
async fn a_token_longer_than_4_kib_is_an_invalid_request() {
    let world = World::new();
    let token = "a".repeat(4097);
    let r = world.send(get("/geocode").bearer(&token)).await;
    r.assert_invalid_request();
    assert_eq!(r.kind(), RejectionKind::CredentialTooLong);
    assert_eq!(world.tokens.calls(), 0, "refused before verification");
}

#[tokio::test]
async fn a_token_of_exactly_4_kib_is_verified_not_refused_for_size() {
    let world = World::new();
    let token = "a".repeat(4096);
    let r = world.send(get("/geocode").bearer(&token)).await;
    r.assert_invalid_token();
    assert_eq!(world.tokens.calls(), 1);
}

#[tokio::test]
async fn an_api_key_longer_than_4_kib_is_an_invalid_request() {
    let world = World::new();
    let plain = "a".repeat(4097);
    let encoded = "%41".repeat(4097);
    let oversized_malformed = "a b".repeat(2000);
    for key in [plain.as_str(), encoded.as_str()] {
        let r = world.send(get(&tile(key))).await;
        r.assert_invalid_request();
        assert_eq!(r.kind(), RejectionKind::CredentialTooLong);
    }
    let r = world
        .send(get("/geocode").header("authorization", &format!("Bearer {oversized_malformed}")))
        .await;
    r.assert_invalid_request();
    assert_eq!(r.kind(), RejectionKind::CredentialTooLong);
}

// ---- accepted credentials ------------------------------------------------------------

#[tokio::test]
async fn a_known_api_key_reaches_a_plugin_api() {
    let world = World::new();
    let r = world.send(get(&tile(&world.key()))).await;
    r.assert_ok();
    let p = r.principal();
    assert_eq!(p["client_id"], world.js_id().as_str());
    assert_eq!(p["source"], "ApiKey");
}

#[tokio::test]
async fn a_known_bearer_token_reaches_a_non_plugin_api() {
    let world = World::new();
    let r = world.send(get("/geocode?q=x").bearer(&world.token())).await;
    r.assert_ok();
    let p = r.principal();
    assert_eq!(p["client_id"], world.native_id().as_str());
    assert_eq!(p["source"], "BearerToken");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_takes_several_spaces() {
    let world = World::new();
    let token = world.token();
    for value in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("bEaReR    {token}"),
    ] {
        let r = world
            .send(get("/geocode").header("authorization", &value))
            .await;
        r.assert_ok();
    }
}

#[tokio::test]
async fn the_api_key_parameter_name_is_matched_in_any_case() {
    let world = World::new();
    let key = world.key();
    for name in [
        "apikey", "APIKEY", "ApiKey", "apiKey", "api%6Bey", "API%4BEY",
    ] {
        let r = world
            .send(get(&format!("/tiles/1/2/3.png?{name}={key}")))
            .await;
        r.assert_ok();
    }
}

#[tokio::test]
async fn a_percent_encoded_api_key_is_decoded_once() {
    let world = World::new();
    let key = world.key();
    let once = key.replace('_', "%5F");
    world.send(get(&tile(&once))).await.assert_ok();
    let twice = key.replace('_', "%255F");
    let r = world.send(get(&tile(&twice))).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::MalformedCredential);
}

// ---- 401 invalid_token ---------------------------------------------------------------

#[tokio::test]
async fn an_unknown_api_key_is_an_invalid_token() {
    let world = World::new();
    let r = world.send(get(&tile(&stranger_key()))).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::UnknownCredential);
}

#[tokio::test]
async fn a_mis_checksummed_api_key_is_an_invalid_token() {
    let world = World::new();
    let key = world.key();
    let mut typo = key.clone().into_bytes();
    let i = 20;
    typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).expect("ASCII");
    let r = world.send(get(&tile(&typo))).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::MalformedCredential);
}

#[tokio::test]
async fn garbage_and_secrets_in_the_api_key_parameter_are_invalid_tokens() {
    let world = World::new();
    let secret = PlainCredential::generate(CredentialKind::ClientSecret).expect("random");
    let truncated = world.key()[..30].to_owned();
    for key in [
        "abc",
        "gis_apikey_",
        truncated.as_str(),
        secret.expose(),
        "%ff%fe",
    ] {
        let r = world.send(get(&tile(key))).await;
        r.assert_invalid_token();
        assert_eq!(r.kind(), RejectionKind::MalformedCredential, "{key}");
    }
}

#[tokio::test]
async fn an_unknown_bearer_token_is_an_invalid_token() {
    let world = World::new();
    let r = world.send(get("/geocode").bearer("not-a-token")).await;
    r.assert_invalid_token();
    // An API key sent as a bearer token is no token either.
    let r = world.send(get("/geocode").bearer(&world.key())).await;
    r.assert_invalid_token();
}

#[tokio::test]
async fn without_a_token_verifier_every_bearer_token_is_an_invalid_token() {
    let world = World::new();
    let layer = AuthLayer::new(world.store.clone(), gis_routes());
    let r = world
        .send_via(&layer, get("/geocode").bearer(&world.token()))
        .await;
    r.assert_invalid_token();
}

#[tokio::test]
async fn malformed_and_unknown_keys_reveal_nothing_about_stored_clients() {
    let world = World::new();
    let empty = AuthLayer::new(Arc::new(InMemoryStore::new()), gis_routes());
    let key = world.key();
    let typo = format!("{}A{}", &key[..20], &key[21..]);
    let typo = if typo == key {
        format!("{}B{}", &key[..20], &key[21..])
    } else {
        typo
    };
    let stranger = stranger_key();

    // The same answer whether the store is empty or full.
    for probe in [typo.as_str(), stranger.as_str(), "abc"] {
        let full = world.send(get(&tile(probe))).await;
        let none = world.send_via(&empty, get(&tile(probe))).await;
        assert_eq!(full.status, none.status);
        assert_eq!(full.body, none.body);
        assert_eq!(
            full.header_all("www-authenticate"),
            none.header_all("www-authenticate")
        );
        full.assert_invalid_token();
    }

    // A deleted client's key answers exactly like a key that never existed.
    let (gone, gone_key) = world.js_client(ClientSpec::javascript("Short-lived"));
    world.store.remove_client(&gone).expect("stored");
    let deleted = world.send(get(&tile(&gone_key))).await;
    let unknown = world.send(get(&tile(&stranger))).await;
    assert_eq!(deleted.body, unknown.body);
    assert_eq!(
        deleted.header_all("www-authenticate"),
        unknown.header_all("www-authenticate")
    );

    // And nothing names a stored client, account or key.
    for r in [&deleted, &unknown] {
        for secret in [
            world.js_id().as_str(),
            world.native_id().as_str(),
            gone.as_str(),
            "acme",
            key.as_str(),
            gone_key.as_str(),
            stranger.as_str(),
        ] {
            r.assert_does_not_reveal(secret);
        }
    }
}

// ---- the shape of every refusal ------------------------------------------------------

#[tokio::test]
async fn refusals_are_json_and_never_cached() {
    let world = World::new();
    let token = world.token();
    let probes = [
        get("/tiles/1/2/3.png"),
        get(&tile(&stranger_key())),
        get("/tiles/1/2/3.png?apikey="),
        get(&with_key("/geocode", &world.key())),
        get("/admin"),
        get(&tile(&world.key())).bearer(&token),
    ];
    for probe in probes {
        let r = world.send(probe).await;
        assert!(r.status.is_client_error(), "{}", r.status);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let body = r.json();
        assert!(body["error"].is_string() && body["error_description"].is_string());
        assert!(r.rejection().is_some());
    }
}

#[tokio::test]
async fn the_challenge_names_the_configured_realm() {
    let world = World::new();
    let layer = world.layer().realm("maps").expect("a valid realm");
    let r = world.send_via(&layer, get("/tiles/1/2/3.png")).await;
    assert_eq!(r.header_all("www-authenticate"), ["Bearer realm=\"maps\""]);
    let r = world.send_via(&layer, get(&tile(&stranger_key()))).await;
    let params = r.challenge();
    assert_eq!(params["realm"], "maps");
    assert_eq!(params["error"], "invalid_token");
    assert!(world.layer().realm("a\"b").is_err());
    assert!(world.layer().realm("").is_err());
}

// ---- the API key header --------------------------------------------------------------

#[tokio::test]
async fn the_api_key_header_works_like_the_query_parameter_and_is_removed() {
    let world = World::new();
    let key = world.key();
    let r = world
        .send(
            get("/tiles/1/2/3.png?style=dark")
                .header("x-api-key", &key)
                .header("x-other", "kept"),
        )
        .await;
    let principal = r.principal();
    assert_eq!(principal["client_id"], world.js_id().as_str());
    assert_eq!(principal["source"], "ApiKeyHeader");
    // The handler never sees the key: the header is gone, the URI untouched.
    assert_eq!(r.seen_uri(), "/tiles/1/2/3.png?style=dark");
    let seen = r.json()["headers"].clone();
    assert!(seen.get("x-api-key").is_none(), "{seen}");
    assert_eq!(seen["x-other"][0], "kept");
    // The same cache rules as a key in the query, and the header named in Vary.
    assert_eq!(r.header(http::header::CACHE_CONTROL), Some("private"));
    assert!(
        r.header_all(http::header::VARY)
            .iter()
            .any(|v| v.eq_ignore_ascii_case("x-api-key")),
        "{:?}",
        r.headers
    );
    r.assert_does_not_reveal(&key);
    // A key in the query varies by URL already: no Vary for it.
    let r = world.send(get(&tile(&key))).await;
    r.assert_ok();
    assert!(r.header_all(http::header::VARY).is_empty());
}

#[tokio::test]
async fn a_header_key_beside_another_credential_or_twice_is_an_invalid_request() {
    let world = World::new();
    let key = world.key();
    let token = world.token();
    for req in [
        get(&tile(&key)).header("x-api-key", &key),
        get("/tiles/1/2/3.png")
            .header("x-api-key", &key)
            .bearer(&token),
        get("/tiles/1/2/3.png")
            .header("x-api-key", &key)
            .header("x-api-key", &key),
    ] {
        let r = world.send(req).await;
        r.assert_invalid_request();
        assert_eq!(r.kind(), RejectionKind::MultipleCredentials);
        r.assert_does_not_reveal(&key);
    }
    let r = world
        .send(get("/tiles/1/2/3.png").header("x-api-key", ""))
        .await;
    r.assert_invalid_request();
    // A header key is checked like any key: a stranger's is an invalid token.
    let r = world
        .send(get("/tiles/1/2/3.png").header("x-api-key", &stranger_key()))
        .await;
    r.assert_invalid_token();
}

#[tokio::test]
async fn the_api_key_header_can_be_renamed_or_switched_off() {
    use tower::Layer;
    let world = World::new();
    let key = world.key();
    let renamed: http::HeaderName = "x-map-key".parse().unwrap();
    let svc = world.layer().api_key_header(Some(renamed)).layer(Echo);
    let r = send(
        svc.clone(),
        get("/tiles/1/2/3.png").header("x-map-key", &key),
    )
    .await;
    r.assert_ok();
    assert!(r.json()["headers"].get("x-map-key").is_none());
    let r = send(svc, get("/tiles/1/2/3.png").header("x-api-key", &key)).await;
    r.assert_missing_credential();
    let svc = world.layer().api_key_header(None).layer(Echo);
    let r = send(svc, get("/tiles/1/2/3.png").header("x-api-key", &key)).await;
    r.assert_missing_credential();
}
