//! Signing keys and the key ring: the current key signs, retired keys still verify until
//! their grace ends, so keys rotate without invalidating every live token at once.
//!
//! ```
//! use gis_auth::token::SigningKey;
//!
//! assert!(SigningKey::hs256("k1", b"too short").is_err());
//! let key = SigningKey::hs256("k1", &[7u8; 32])?;
//! assert_eq!(key.kid(), "k1");
//! assert!(key.public_jwk().is_none(), "a symmetric key is never published");
//!
//! let key = SigningKey::generate_ed25519(None)?;
//! let jwk = key.public_jwk().expect("an Ed25519 key has a public half");
//! assert_eq!(jwk.common.key_id.as_deref(), Some(key.kid()));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::jwk::{CommonParameters, Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::ring::{RingKey, check_kid, key_error};
use crate::error::ConfigError;

/// A key that signs and verifies access tokens, with its `kid`. The algorithm is pinned to
/// the key: a token naming another algorithm is refused.
#[derive(Clone)]
pub struct SigningKey {
    kid: Arc<str>,
    alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public key as a JWK (RFC 7517), with `kid`, `alg` and `use: "sig"`; `None` for
    /// a symmetric key, which is never published.
    public: Option<Arc<Jwk>>,
}

/// The PKCS#8 (RFC 8410) prefix of an Ed25519 private key: the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl RingKey for SigningKey {
    const FIELD: &'static str = "signing key";

    fn kid(&self) -> &str {
        &self.kid
    }
}

impl SigningKey {
    /// An HS256 key from a server secret of at least 32 bytes.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, ConfigError> {
        check_kid::<SigningKey>(kid)?;
        if secret.len() < 32 {
            return Err(key_error::<SigningKey>(
                kid,
                "an HS256 secret has at least 32 bytes",
            ));
        }
        Ok(Self {
            kid: kid.into(),
            alg: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            public: None,
        })
    }

    /// An HS256 key with a fresh 256-bit secret from the operating system.
    pub fn generate_hs256(kid: &str) -> Result<Self, ConfigError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| ConfigError::RandomSource)?;
        Self::hs256(kid, &secret)
    }

    /// An EdDSA (Ed25519) key pair from PEM (PKCS#8 private key, SPKI public key), so other
    /// services can verify tokens with the published public key. The public key must be
    /// the private key's.
    pub fn ed25519_pem(
        kid: &str,
        private_pem: &[u8],
        public_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let key = Self::ed25519_private_pem(kid, private_pem)?;
        key.check_public(public_pem, DecodingKey::from_ed_pem)?;
        Ok(key)
    }

    /// An ES256 (P-256) key pair from PEM (PKCS#8 private key, SPKI public key). The public
    /// key must be the private key's.
    pub fn es256_pem(
        kid: &str,
        private_pem: &[u8],
        public_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let key = Self::es256_private_pem(kid, private_pem)?;
        key.check_public(public_pem, DecodingKey::from_ec_pem)?;
        Ok(key)
    }

    /// An Ed25519 or ES256 key from its private key alone, in PKCS#8 PEM
    /// (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm ed25519` or
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` write it); the
    /// public key is derived from it. With `kid` `None`, the key id is the key's RFC 7638
    /// thumbprint, so every instance given the same file names the key alike.
    pub fn from_private_pem(kid: Option<&str>, pem: &[u8]) -> Result<Self, ConfigError> {
        let provisional = kid.unwrap_or("pem");
        let key = Self::ed25519_private_pem(provisional, pem)
            .or_else(|_| Self::es256_private_pem(provisional, pem))
            .map_err(|_| {
                key_error::<SigningKey>(
                    provisional,
                    "not an Ed25519 or P-256 private key in PKCS#8 PEM",
                )
            })?;
        match kid {
            Some(_) => Ok(key),
            None => key.named_by_thumbprint(),
        }
    }

    /// An Ed25519 key with a fresh private key from the operating system. With `kid`
    /// `None`, the key id is the key's RFC 7638 thumbprint.
    pub fn generate_ed25519(kid: Option<&str>) -> Result<Self, ConfigError> {
        let mut der = [0u8; 48];
        der[..16].copy_from_slice(&ED25519_PKCS8_PREFIX);
        getrandom::fill(&mut der[16..]).map_err(|_| ConfigError::RandomSource)?;
        let key = Self::asymmetric(
            kid.unwrap_or("generated"),
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(&der),
        )?;
        match kid {
            Some(_) => Ok(key),
            None => key.named_by_thumbprint(),
        }
    }

    fn ed25519_private_pem(kid: &str, private_pem: &[u8]) -> Result<Self, ConfigError> {
        let encoding = EncodingKey::from_ed_pem(private_pem)
            .map_err(|_| key_error::<SigningKey>(kid, "not an Ed25519 private key in PEM"))?;
        Self::asymmetric(kid, Algorithm::EdDSA, encoding)
    }

    fn es256_private_pem(kid: &str, private_pem: &[u8]) -> Result<Self, ConfigError> {
        let encoding = EncodingKey::from_ec_pem(private_pem)
            .map_err(|_| key_error::<SigningKey>(kid, "not a P-256 private key in PEM"))?;
        Self::asymmetric(kid, Algorithm::ES256, encoding)
    }

    /// A key pair from its private half: the public JWK and the verifying key are derived
    /// from it (which also proves the private key is of the algorithm's curve).
    fn asymmetric(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Result<Self, ConfigError> {
        check_kid::<SigningKey>(kid)?;
        let derived = Jwk::from_encoding_key(&encoding, alg).map_err(|_| {
            key_error::<SigningKey>(kid, "the private key does not fit its algorithm")
        })?;
        let decoding = DecodingKey::from_jwk(&derived)
            .map_err(|_| key_error::<SigningKey>(kid, "the public key cannot be derived"))?;
        let public = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: derived.common.key_algorithm,
                key_id: Some(kid.to_owned()),
                ..CommonParameters::default()
            },
            algorithm: derived.algorithm,
        };
        Ok(Self {
            kid: kid.into(),
            alg,
            encoding,
            decoding,
            public: Some(Arc::new(public)),
        })
    }

    /// The same key, named by its RFC 7638 thumbprint (43 Base64URL characters).
    fn named_by_thumbprint(mut self) -> Result<Self, ConfigError> {
        let Some(public) = self.public.as_mut() else {
            return Ok(self);
        };
        let thumbprint = public.thumbprint(ThumbprintHash::SHA256).map_err(|_| {
            key_error::<SigningKey>(&self.kid, "the key's thumbprint cannot be computed")
        })?;
        Arc::make_mut(public).common.key_id = Some(thumbprint.clone());
        self.kid = thumbprint.into();
        Ok(self)
    }

    /// Refuses a public key in PEM that is not this key's public half.
    fn check_public(
        &self,
        public_pem: &[u8],
        parse: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
    ) -> Result<(), ConfigError> {
        let given = parse(public_pem)
            .ok()
            .and_then(|d| Jwk::from_decoding_key(&d, Some(self.alg)).ok())
            .ok_or_else(|| {
                key_error::<SigningKey>(&self.kid, "not a public key of this type in PEM")
            })?;
        let derived = self.public.as_deref().map(|j| &j.algorithm);
        if derived != Some(&given.algorithm) {
            return Err(key_error::<SigningKey>(
                &self.kid,
                "the public key is not the private key's",
            ));
        }
        Ok(())
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK (RFC 7517, RFC 7518 §6.2 for P-256, RFC 8037 for Ed25519)
    /// with `kid`, `alg` and `use: "sig"`, as a JWKS publishes it; `None` for an HS256
    /// key, whose secret is never published.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.public.as_deref()
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

#[cfg(test)]
mod tests {
    use super::super::ring::KeyRing;
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

    const ED_PEM: &[u8] = include_bytes!("../../tests/fixtures/keys/ed25519.pem");
    const ED_PUB: &[u8] = include_bytes!("../../tests/fixtures/keys/ed25519.pub.pem");
    const EC_PEM: &[u8] = include_bytes!("../../tests/fixtures/keys/es256.pem");
    const EC_PUB: &[u8] = include_bytes!("../../tests/fixtures/keys/es256.pub.pem");
    const P384_PEM: &[u8] = include_bytes!("../../tests/fixtures/keys/es384.pem");

    fn json(key: &SigningKey) -> serde_json::Value {
        serde_json::to_value(key.public_jwk().unwrap()).unwrap()
    }

    #[test]
    fn a_generated_ed25519_key_publishes_its_public_half_under_its_thumbprint() {
        let key = SigningKey::generate_ed25519(None).unwrap();
        let jwk = json(&key);
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(key.kid().len(), 43);
        assert_eq!(decoded_len(&jwk["x"]), 32);
        assert!(jwk.get("d").is_none(), "never the private key");
        let other = SigningKey::generate_ed25519(Some("k2")).unwrap();
        assert_eq!(other.kid(), "k2");
        assert_ne!(json(&other)["x"], jwk["x"], "fresh keys differ");
    }

    fn decoded_len(v: &serde_json::Value) -> usize {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v.as_str().unwrap())
            .unwrap()
            .len()
    }

    #[test]
    fn pem_keys_are_recognised_and_match_their_public_halves() {
        let ed = SigningKey::from_private_pem(Some("ed"), ED_PEM).unwrap();
        assert_eq!(ed.algorithm(), Algorithm::EdDSA);
        assert_eq!(ed.kid(), "ed");
        let ec = SigningKey::from_private_pem(None, EC_PEM).unwrap();
        assert_eq!(ec.algorithm(), Algorithm::ES256);
        let jwk = json(&ec);
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
        assert_eq!(decoded_len(&jwk["x"]), 32);
        assert_eq!(decoded_len(&jwk["y"]), 32);
        assert!(jwk.get("d").is_none());
        // The thumbprint names the key alike wherever the file is loaded.
        assert_eq!(
            SigningKey::from_private_pem(None, EC_PEM).unwrap().kid(),
            ec.kid()
        );
        assert!(SigningKey::ed25519_pem("ed", ED_PEM, ED_PUB).is_ok());
        assert!(SigningKey::es256_pem("ec", EC_PEM, EC_PUB).is_ok());
    }

    #[test]
    fn wrong_pems_are_refused() {
        assert!(
            SigningKey::from_private_pem(None, P384_PEM).is_err(),
            "P-384 is not ES256"
        );
        assert!(
            SigningKey::from_private_pem(None, ED_PUB).is_err(),
            "a public key cannot sign"
        );
        assert!(SigningKey::from_private_pem(None, b"nope").is_err());
        assert!(SigningKey::from_private_pem(Some("a b"), ED_PEM).is_err());
        assert!(
            SigningKey::ed25519_pem("ed", ED_PEM, EC_PUB).is_err(),
            "a public key of another type"
        );
        assert!(
            SigningKey::es256_pem("ec", EC_PEM, ED_PUB).is_err(),
            "a public key of another type"
        );
    }

    #[test]
    fn a_mismatched_pair_is_refused() {
        let other = include_bytes!("../../tests/fixtures/keys/es256-other.pub.pem");
        assert!(SigningKey::es256_pem("ec", EC_PEM, other).is_err());
    }

    #[test]
    fn only_live_keys_are_listed() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let mut ring = KeyRing::new(SigningKey::generate_ed25519(Some("k1")).unwrap());
        ring.rotate(
            SigningKey::generate_ed25519(Some("k2")).unwrap(),
            now + time::Duration::hours(1),
            now,
        )
        .unwrap();
        let kids = |at| {
            ring.live(at)
                .map(|k| k.kid().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(now), ["k2", "k1"]);
        assert_eq!(kids(now + time::Duration::hours(1)), ["k2"]);
    }
}
