//! API key and client secret formats: the checks never panic, accept only what has the
//! right prefix, length, alphabet and checksum, and agree with parsing; the `sha256:` digest
//! form round-trips.

#![no_main]

use gis_auth::client::{CredentialKind, KeyDigest, PlainCredential};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [CredentialKind::ApiKey, CredentialKind::ClientSecret] {
        let checked = kind.check(text);
        let parsed = PlainCredential::parse(kind, text, "fuzz");
        assert_eq!(checked.is_ok(), parsed.is_ok());
        if checked.is_ok() {
            assert!(text.starts_with(kind.prefix()));
            assert_eq!(text.len(), kind.text_len());
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }
    if let Some(digest) = KeyDigest::from_prefixed_hex(text) {
        assert_eq!(
            KeyDigest::from_prefixed_hex(&digest.to_prefixed_hex()),
            Some(digest)
        );
    }
});
