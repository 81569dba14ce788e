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
