//! The keys that sign tile URLs, and the ring that rotates them: the current key signs,
//! retired keys still verify until their grace ends.
//!
//! ```
//! use gis_auth::signed::TileUrlKey;
//!
//! assert!(TileUrlKey::new("t1", b"too short").is_err());
//! let key = TileUrlKey::new("t1", &[7u8; 32])?;
//! assert_eq!(key.kid(), "t1");
//! assert!(!format!("{key:?}").contains("7, 7"));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;
use crate::token::ring::{KeyRing, RingKey, check_kid, key_error};

/// A server key that signs tile URLs (HMAC-SHA-256), with its `kid`.
#[derive(Clone)]
pub struct TileUrlKey {
    kid: Arc<str>,
    /// The HMAC keyed with the secret, ready to take a message: keying hashes the padded
    /// secret twice, so it is done once per key, not once per URL. Never printed.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for TileUrlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TileUrlKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RingKey for TileUrlKey {
    const FIELD: &'static str = "tile URL key";

    fn kid(&self) -> &str {
        &self.kid
    }
}

impl TileUrlKey {
    /// A key from a server secret of at least 32 bytes. A key id is 1 to 64 letters,
    /// digits, `-`, `_` or `.`.
    pub fn new(kid: &str, secret: &[u8]) -> Result<Self, ConfigError> {
        check_kid::<TileUrlKey>(kid)?;
        if secret.len() < 32 {
            return Err(key_error::<TileUrlKey>(
                kid,
                "a tile URL secret has at least 32 bytes",
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| key_error::<TileUrlKey>(kid, "an HMAC key of any length is accepted"))?;
        Ok(Self {
            kid: kid.into(),
            mac,
        })
    }

    /// A key with a fresh 256-bit secret from the operating system.
    pub fn generate(kid: &str) -> Result<Self, ConfigError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| ConfigError::RandomSource)?;
        Self::new(kid, &secret)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A fresh HMAC-SHA-256 under this key.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }
}

/// The current tile URL key and the retired ones that still verify.
pub(crate) type TileKeyRing = KeyRing<TileUrlKey>;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn short_secrets_and_bad_kids_are_refused() {
        assert!(TileUrlKey::new("t1", b"short").is_err());
        assert!(TileUrlKey::new("", &[0; 32]).is_err());
        assert!(TileUrlKey::new("a b", &[0; 32]).is_err());
    }

    #[test]
    fn retired_keys_verify_until_their_grace_ends() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let mut ring = TileKeyRing::new(TileUrlKey::generate("t1").unwrap());
        let until = now + time::Duration::hours(1);
        ring.rotate(TileUrlKey::generate("t2").unwrap(), until, now)
            .unwrap();
        assert_eq!(ring.current().kid(), "t2");
        assert!(ring.verifying("t1", now).is_some());
        assert!(ring.verifying("t1", until).is_none());
        assert!(
            ring.rotate(TileUrlKey::generate("t1").unwrap(), now, now)
                .is_err()
        );
    }
}
