//! Signing keys and the key ring: the current key signs, retired keys still verify until
//! their grace ends, so keys rotate without invalidating every live token at once.
//!
//! ```
//! use gis_auth::token::SigningKey;
//!
//! assert!(SigningKey::hs256("k1", b"too short").is_err());
//! let key = SigningKey::hs256("k1", &[7u8; 32])?;
//! assert_eq!(key.kid(), "k1");
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use time::OffsetDateTime;

use crate::error::ConfigError;

/// A key that signs and verifies access tokens, with its `kid`. The algorithm is pinned to
/// the key: a token naming another algorithm is refused.
#[derive(Clone)]
pub struct SigningKey {
    kid: Arc<str>,
    alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn key_error(kid: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidField {
        field: "signing key",
        value: kid.to_owned(),
        reason,
    }
}

fn check_kid(kid: &str) -> Result<(), ConfigError> {
    if kid.is_empty()
        || kid.len() > 64
        || !kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(key_error(
            kid,
            "a key id is 1 to 64 letters, digits, `-`, `_` or `.`",
        ));
    }
    Ok(())
}

impl SigningKey {
    /// An HS256 key from a server secret of at least 32 bytes.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, ConfigError> {
        check_kid(kid)?;
        if secret.len() < 32 {
            return Err(key_error(kid, "an HS256 secret has at least 32 bytes"));
        }
        Ok(Self {
            kid: kid.into(),
            alg: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// An HS256 key with a fresh 256-bit secret from the operating system.
    pub fn generate_hs256(kid: &str) -> Result<Self, ConfigError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| ConfigError::RandomSource)?;
        Self::hs256(kid, &secret)
    }

    /// An EdDSA (Ed25519) key pair from PEM (PKCS#8 private key, SPKI public key), so other
    /// services can verify tokens with the published public key.
    pub fn ed25519_pem(
        kid: &str,
        private_pem: &[u8],
        public_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        check_kid(kid)?;
        Ok(Self {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(private_pem)
                .map_err(|_| key_error(kid, "not an Ed25519 private key in PEM"))?,
            decoding: DecodingKey::from_ed_pem(public_pem)
                .map_err(|_| key_error(kid, "not an Ed25519 public key in PEM"))?,
        })
    }

    /// An ES256 (P-256) key pair from PEM (PKCS#8 private key, SPKI public key).
    pub fn es256_pem(
        kid: &str,
        private_pem: &[u8],
        public_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        check_kid(kid)?;
        Ok(Self {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(private_pem)
                .map_err(|_| key_error(kid, "not a P-256 private key in PEM"))?,
            decoding: DecodingKey::from_ec_pem(public_pem)
                .map_err(|_| key_error(kid, "not a P-256 public key in PEM"))?,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The current key and the retired ones that still verify.
#[derive(Debug, Clone)]
pub(crate) struct KeyRing {
    current: Arc<SigningKey>,
    retired: Vec<(Arc<SigningKey>, OffsetDateTime)>,
}

impl KeyRing {
    pub(crate) fn new(current: SigningKey) -> Self {
        Self {
            current: Arc::new(current),
            retired: Vec::new(),
        }
    }

    pub(crate) fn current(&self) -> &Arc<SigningKey> {
        &self.current
    }

    /// Makes `next` current; the old current key verifies until `retire_until`.
    pub(crate) fn rotate(
        &mut self,
        next: SigningKey,
        retire_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), ConfigError> {
        if next.kid() == self.current.kid()
            || self.retired.iter().any(|(k, _)| k.kid() == next.kid())
        {
            return Err(key_error(next.kid(), "this key id is already in use"));
        }
        self.retired.retain(|(_, until)| now < *until);
        let old = std::mem::replace(&mut self.current, Arc::new(next));
        self.retired.push((old, retire_until));
        Ok(())
    }

    /// The key with this id, if it may verify at `now`.
    pub(crate) fn verifying(&self, kid: &str, now: OffsetDateTime) -> Option<&Arc<SigningKey>> {
        if *self.current.kid == *kid {
            return Some(&self.current);
        }
        self.retired
            .iter()
            .find(|(k, until)| *k.kid == *kid && now < *until)
            .map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn short_secrets_and_bad_kids_are_refused() {
        assert!(SigningKey::hs256("k1", b"short").is_err());
        assert!(SigningKey::hs256("", &[0; 32]).is_err());
        assert!(SigningKey::hs256("a b", &[0; 32]).is_err());
        assert!(SigningKey::ed25519_pem("k", b"nope", b"nope").is_err());
    }

    #[test]
    fn retired_keys_verify_until_their_grace_ends() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let mut ring = KeyRing::new(SigningKey::generate_hs256("k1").unwrap());
        ring.rotate(
            SigningKey::generate_hs256("k2").unwrap(),
            now + time::Duration::hours(1),
            now,
        )
        .unwrap();
        assert_eq!(ring.current().kid(), "k2");
        assert!(ring.verifying("k1", now).is_some());
        assert!(
            ring.verifying("k1", now + time::Duration::hours(1))
                .is_none()
        );
        assert!(ring.verifying("k3", now).is_none());
        assert!(
            ring.rotate(SigningKey::generate_hs256("k1").unwrap(), now, now)
                .is_err()
        );
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = SigningKey::hs256("k1", &[7u8; 32]).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("k1") && dbg.contains("HS256"));
        assert!(!dbg.contains("7, 7"));
    }
}
