//! What the server prints when it starts, and its flags.

use super::*;

fn line_keys(line: &str) -> (serde_json::Map<String, Value>, BTreeSet<String>) {
    assert!(!line.contains('\n'));
    let Value::Object(map) = serde_json::from_str(line).expect("a JSON line") else {
        panic!("not an object: {line}");
    };
    let keys = map.keys().cloned().collect();
    (map, keys)
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

#[tokio::test]
async fn generated_credential_lines_are_json_with_exactly_the_documented_keys() {
    let seeded = app::demo_store().expect("demo store");
    assert_eq!(seeded.generated.len(), 2);
    for generated in &seeded.generated {
        let line = app::credential_line(generated).expect("serialisable");
        assert!(line.starts_with("{\"client\":"), "{line}");
        let (map, found) = line_keys(&line);
        assert_eq!(map["client"], generated.client.as_str());
        match generated.kind {
            ClientKind::JavaScript => {
                assert_eq!(found, keys(&["client", "api_key"]));
                let key = map["api_key"].as_str().unwrap_or_default();
                assert!(CredentialKind::ApiKey.check(key).is_ok());
            }
            ClientKind::NativeConfidential => {
                assert_eq!(found, keys(&["client", "client_id", "client_secret"]));
                assert_eq!(map["client_id"], map["client"]);
                let secret = map["client_secret"].as_str().unwrap_or_default();
                assert!(CredentialKind::ClientSecret.check(secret).is_ok());
            }
        }
    }
    // The printed key is the one the server accepts.
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let js = seeded
        .generated
        .iter()
        .find(|g| g.kind == ClientKind::JavaScript)
        .expect("a JavaScript client");
    let line = app::credential_line(js).expect("serialisable");
    let (map, _) = line_keys(&line);
    let key = map["api_key"].as_str().unwrap_or_default();
    let reply = send(
        router.clone(),
        get(&format!("/tiles/0/0/0.png?apikey={key}")),
    )
    .await;
    assert_png(&reply);
}

#[test]
fn the_trusted_proxies_flag_takes_a_comma_separated_list() {
    let proxies =
        app::parse_trusted_proxies("10.0.0.0/8, 192.0.2.1,2001:db8::/32").expect("a valid list");
    for inside in ["10.1.2.3", "192.0.2.1", "2001:db8::5", "::ffff:10.0.0.1"] {
        assert!(
            proxies.contains(inside.parse().expect("address")),
            "{inside}"
        );
    }
    for outside in ["11.0.0.1", "192.0.2.2", "2001:db9::1"] {
        assert!(
            !proxies.contains(outside.parse().expect("address")),
            "{outside}"
        );
    }
    assert!(
        app::parse_trusted_proxies("127.0.0.1")
            .expect("one address")
            .contains("127.0.0.1".parse().expect("address"))
    );
}

#[test]
fn the_trusted_proxies_flag_refuses_bad_entries_by_name() {
    for (flag, named) in [
        ("10.0.0.0/33", "`10.0.0.0/33`"),
        ("10.0.0.0/8,proxy.local", "`proxy.local`"),
        ("203.0.113.*", "`203.0.113.*`"),
        ("10.0.0.0/8,", "`10.0.0.0/8,`"),
        ("", "``"),
    ] {
        let err = app::parse_trusted_proxies(flag).expect_err(flag);
        assert!(err.to_string().contains(named), "{err}");
    }
}

fn fixture_key(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

#[test]
fn without_a_key_file_or_secret_the_server_signs_with_a_fresh_ed25519_key() {
    let one = app::KeySource::default().signing_key().expect("a key");
    let other = app::KeySource::default().signing_key().expect("a key");
    assert_eq!(one.algorithm(), jsonwebtoken::Algorithm::EdDSA);
    assert!(one.public_jwk().is_some(), "published");
    assert_eq!(one.kid().len(), 43, "the RFC 7638 thumbprint");
    assert_ne!(one.kid(), other.kid(), "a fresh key at each start");
    let named = app::KeySource {
        kid: Some("gis-1"),
        ..app::KeySource::default()
    };
    assert_eq!(named.signing_key().expect("a key").kid(), "gis-1");
}

#[test]
fn a_signing_key_file_is_an_ed25519_or_p256_pem_named_by_flag_or_thumbprint() {
    let ed = fixture_key("ed25519.pem");
    let source = app::KeySource {
        file: Some(&ed),
        kid: Some("shared-ed"),
        secret: None,
    };
    let key = source.signing_key().expect("an Ed25519 key");
    assert_eq!(
        (key.kid(), key.algorithm()),
        ("shared-ed", jsonwebtoken::Algorithm::EdDSA)
    );
    let ec = fixture_key("es256.pem");
    let by_file = |file: &std::path::Path| {
        app::KeySource {
            file: Some(file),
            ..app::KeySource::default()
        }
        .signing_key()
    };
    let key = by_file(&ec).expect("a P-256 key");
    assert_eq!(key.algorithm(), jsonwebtoken::Algorithm::ES256);
    assert_eq!(
        key.kid(),
        by_file(&ec).expect("again").kid(),
        "instances agree"
    );
    let wrong = by_file(&fixture_key("es384.pem")).expect_err("P-384 is not ES256");
    assert!(wrong.to_string().contains("es384.pem"), "{wrong}");
    let missing = by_file(&fixture_key("missing.pem")).expect_err("no such file");
    assert!(missing.to_string().contains("missing.pem"), "{missing}");
}

#[test]
fn the_shared_secret_alone_is_hs256_and_with_a_key_file_an_error() {
    let secret = Some(std::ffi::OsString::from("0123456789abcdef0123456789abcdef"));
    let key = app::KeySource {
        secret: secret.clone(),
        ..app::KeySource::default()
    }
    .signing_key()
    .expect("an HS256 key");
    assert_eq!(key.algorithm(), jsonwebtoken::Algorithm::HS256);
    assert!(key.public_jwk().is_none(), "never published");
    let ed = fixture_key("ed25519.pem");
    let both = app::KeySource {
        file: Some(&ed),
        kid: None,
        secret,
    }
    .signing_key()
    .expect_err("two keys");
    let message = both.to_string();
    assert!(
        message.contains("--signing-key") && message.contains(app::TOKEN_SECRET_VAR),
        "{message}"
    );
    assert!(!message.contains("0123456789abcdef"), "never the secret");
}

#[test]
fn the_issuer_must_be_a_url_and_the_audience_defaults_to_it_in_main() {
    let key = || app::KeySource::default().signing_key().expect("a key");
    let issuer = app::token_issuer(key(), "http://127.0.0.1:8080", "http://127.0.0.1:8080")
        .expect("a URL issuer");
    assert_eq!(issuer.issuer_id(), "http://127.0.0.1:8080");
    assert_eq!(issuer.audience_id(), "http://127.0.0.1:8080");
    assert!(app::token_issuer(key(), "gis-auth", "gis-auth").is_err());
}

#[tokio::test]
async fn the_default_router_publishes_its_generated_key_and_metadata() {
    let seeded = app::demo_store().expect("demo store");
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let jwks = send(router.clone(), get("/.well-known/jwks.json"))
        .await
        .json();
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["crv"], "Ed25519");
    let metadata = send(router, get("/.well-known/oauth-authorization-server"))
        .await
        .json();
    assert_eq!(metadata["issuer"], app::DEFAULT_ISSUER);
}
