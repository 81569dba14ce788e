//! Credential extraction from arbitrary header and query bytes: `CredentialRules::extract`
//! and the API key stripping never panic, agree with each other, and respect the size limit.
//!
//! Input: the `Authorization` value, a 0xff byte, the query (with a 0xff byte and a
//! parameter name after it, optionally). An `Authorization` value starting with `k` is sent
//! as the `X-Api-Key` header instead (without the `k`).

#![no_main]

use gis_auth::credentials::{CredentialRules, PresentedCredential};
use http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let auth = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let param = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let mut rules = CredentialRules::default().max_len(64);
    if let Some(name) = param.filter(|n| !n.is_empty()) {
        rules = rules.query_param(name.to_owned());
    }
    let mut headers = HeaderMap::new();
    let (name, auth) = match auth.split_first() {
        Some((b'k', key)) => (gis_auth::credentials::API_KEY_HEADER, key),
        _ => (http::header::AUTHORIZATION, auth),
    };
    if let Ok(value) = HeaderValue::from_bytes(auth) {
        headers.insert(name, value);
    }
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(uri) = format!("/tiles/1/2/3.png?{query}").parse::<Uri>() else {
        return;
    };
    let found = rules.extract(&headers, uri.query());
    if let Ok(Some(credential)) = &found {
        let len = match credential {
            PresentedCredential::Bearer(t) => t.len(),
            PresentedCredential::ApiKey(k) => k.len(),
            PresentedCredential::ApiKeyHeader(k) => k.len(),
        };
        assert!(
            len > 0 && len <= 64,
            "a credential past the limit: {len} bytes"
        );
    }
    // Stripping leaves no key behind and keeps the path.
    let stripped = rules.strip_from_uri(&uri);
    let mut stripped_headers = headers.clone();
    rules.strip_from_headers(&mut stripped_headers);
    assert!(!stripped_headers.contains_key(gis_auth::credentials::API_KEY_HEADER));
    assert_eq!(stripped.path(), uri.path());
    let no_headers = HeaderMap::new();
    let again = rules.extract(&no_headers, stripped.query());
    assert!(
        matches!(again, Ok(None)),
        "a key survived stripping: {:?} -> {:?}",
        uri,
        stripped
    );
});
