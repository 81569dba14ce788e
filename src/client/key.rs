//! API keys and client secrets: their format, generation and digests.
//!
//! A credential is a readable prefix that names its kind (`gis_apikey_` or `gis_secret_`),
//! 32 random bytes from the operating system in Base64URL without padding, and a CRC-32
//! checksum of everything before it (6 more Base64URL characters). The checksum lets a
//! mistyped or made-up key be refused without a store lookup. Stores keep only the SHA-256
//! [`KeyDigest`] of a credential; the plaintext is shown once, when it is created.
//!
//! ```
//! use gis_auth::client::{CredentialKind, PlainCredential};
//!
//! let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
//! assert!(key.expose().starts_with("gis_apikey_"));
//! assert!(CredentialKind::ApiKey.check(key.expose()).is_ok());
//! // Debug never shows the key.
//! assert!(!format!("{key:?}").contains(key.expose()));
//!
//! let mut typo = key.expose().to_owned();
//! typo.replace_range(20..21, if &typo[20..21] == "A" { "B" } else { "A" });
//! assert!(CredentialKind::ApiKey.check(&typo).is_err());
//! ```

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ConfigError;

const BODY_BYTES: usize = 32;
const BODY_CHARS: usize = 43; // 32 bytes in Base64URL without padding
const CHECKSUM_CHARS: usize = 6; // 4 bytes in Base64URL without padding

/// Which kind of credential a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A JavaScript client's public API key, sent as the `apikey` query parameter.
    ApiKey,
    /// A NativeConfidential client's secret, exchanged for access tokens.
    ClientSecret,
}

/// Why a string is not a credential of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFormatError {
    /// The string does not start with the kind's prefix.
    #[error("it does not start with the expected prefix")]
    Prefix,
    /// The string has the wrong length.
    #[error("it has the wrong length")]
    Length,
    /// The string has characters outside Base64URL.
    #[error("it has characters outside Base64URL")]
    Alphabet,
    /// The checksum does not match.
    #[error("its checksum does not match")]
    Checksum,
}

impl CredentialKind {
    /// The readable prefix of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "gis_apikey_",
            CredentialKind::ClientSecret => "gis_secret_",
        }
    }

    /// The length of every credential of this kind.
    pub fn text_len(self) -> usize {
        self.prefix().len() + BODY_CHARS + CHECKSUM_CHARS
    }

    /// Checks the format and checksum without touching any store: cheap, and constant in the
    /// string's content up to the first mismatching class of error.
    pub fn check(self, s: &str) -> Result<(), KeyFormatError> {
        let prefix = self.prefix();
        if s.len() != self.text_len() {
            return Err(KeyFormatError::Length);
        }
        if !s.starts_with(prefix) {
            return Err(KeyFormatError::Prefix);
        }
        let rest = &s.as_bytes()[prefix.len()..];
        if !rest.iter().all(|&b| BASE64URL[usize::from(b)] != INVALID) {
            return Err(KeyFormatError::Alphabet);
        }
        let (signed, checksum) = s.as_bytes().split_at(s.len() - CHECKSUM_CHARS);
        // Six Base64URL characters: 32 bits, then 4 bits that must be zero.
        let mut bits: u64 = 0;
        for &c in checksum {
            bits = bits << 6 | u64::from(BASE64URL[usize::from(c)]);
        }
        if bits & 0xf != 0 {
            return Err(KeyFormatError::Checksum);
        }
        if (bits >> 4) as u32 != crc32fast::hash(signed) {
            return Err(KeyFormatError::Checksum);
        }
        Ok(())
    }

    fn field(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "api_key",
            CredentialKind::ClientSecret => "client_secret",
        }
    }
}

/// A credential in plaintext: what is handed to the client once, at creation.
///
/// Its `Debug` output is redacted, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredential {
    kind: CredentialKind,
    text: String,
}

impl PlainCredential {
    /// A fresh credential of `kind`, with 256 bits from the operating system's random source.
    pub fn generate(kind: CredentialKind) -> Result<Self, ConfigError> {
        let mut body = [0u8; BODY_BYTES];
        getrandom::fill(&mut body).map_err(|_| ConfigError::RandomSource)?;
        let mut text = String::with_capacity(kind.text_len());
        text.push_str(kind.prefix());
        URL_SAFE_NO_PAD.encode_string(body, &mut text);
        let checksum = crc32fast::hash(text.as_bytes()).to_be_bytes();
        URL_SAFE_NO_PAD.encode_string(checksum, &mut text);
        Ok(Self { kind, text })
    }

    /// Accepts a credential given in plaintext (from a file, say) after checking its format.
    pub fn parse(kind: CredentialKind, text: &str, client: &str) -> Result<Self, ConfigError> {
        kind.check(text)
            .map_err(|e| ConfigError::InvalidCredential {
                client: client.to_owned(),
                field: kind.field(),
                reason: match e {
                    KeyFormatError::Prefix => "it does not start with the expected prefix",
                    KeyFormatError::Length => "it has the wrong length",
                    KeyFormatError::Alphabet => "it has characters outside Base64URL",
                    KeyFormatError::Checksum => "its checksum does not match",
                },
            })?;
        Ok(Self {
            kind,
            text: text.to_owned(),
        })
    }

    /// The kind of credential.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// The plaintext. Show it to its owner once; never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The digest stores keep instead of the plaintext.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(&self.text)
    }
}

impl fmt::Debug for PlainCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainCredential({}<redacted>)", self.kind.prefix())
    }
}

/// The SHA-256 digest of a credential: what stores keep and look up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// The digest of a credential's text.
    pub fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Compares in constant time: the differences of all 32 bytes are folded into one word
    /// before the one comparison.
    pub fn ct_eq(&self, other: &KeyDigest) -> bool {
        let mut diff = 0u64;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let word =
                |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            diff |= word(a) ^ word(b);
        }
        diff.ct_eq(&0).into()
    }

    /// The `sha256:<hex>` form used in client files.
    pub fn to_prefixed_hex(&self) -> String {
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Parses the `sha256:<64 hex digits>` form.
    pub fn from_prefixed_hex(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = u8::try_from(hi << 4 | lo).ok()?;
        }
        Some(Self(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Marks a byte outside the Base64URL alphabet in [`BASE64URL`].
const INVALID: u8 = 0xff;

/// The value of each Base64URL character, [`INVALID`] for every other byte.
const BASE64URL: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyDigest({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A hasher for maps keyed by [`KeyDigest`]: the digest is already uniformly random, so its
/// 64-bit words XORed together are the hash. Attackers cannot aim collisions at it without a
/// SHA-256 preimage.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `KeyDigest` hashes as a 32-byte array: a length prefix, then the bytes.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_usize(&mut self, _: usize) {}
}

/// `BuildHasher` for [`DigestHasher`].
pub(crate) type DigestBuildHasher = BuildHasherDefault<DigestHasher>;

/// The hasher of the crate's in-memory maps keyed by ids, names and hosts: foldhash, seeded
/// per process. A request can look such a map up, never fill it.
pub(crate) type FastBuildHasher = foldhash::fast::RandomState;

/// Whether two byte strings are equal, in constant time for equal lengths: the
/// differences of all the bytes are folded together, with no branch on any of them, before
/// the one comparison. For secrets too long for [`KeyDigest::ct_eq`] (tokens, signed
/// queries).
pub(crate) fn same_secret(known: &[u8], given: &[u8]) -> bool {
    if known.len() != given.len() {
        return false;
    }
    let diff = known
        .iter()
        .zip(given)
        .fold(0u8, |diff, (x, y)| diff | (x ^ y));
    diff.ct_eq(&0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_compares_every_byte_and_the_length() {
        let known = b"eyJhbGciOiJIUzI1NiJ9.e30.sig-nature";
        assert!(same_secret(known, known));
        for at in 0..known.len() {
            let mut given = known.to_vec();
            given[at] ^= 0x20;
            assert!(!same_secret(known, &given), "byte {at}");
        }
        assert!(!same_secret(known, &known[1..]));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn generated_credentials_pass_their_own_check_only() {
        for kind in [CredentialKind::ApiKey, CredentialKind::ClientSecret] {
            let c = PlainCredential::generate(kind).unwrap();
            assert_eq!(c.expose().len(), kind.text_len());
            assert_eq!(kind.check(c.expose()), Ok(()));
        }
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        assert_eq!(
            CredentialKind::ClientSecret.check(key.expose()),
            Err(KeyFormatError::Prefix)
        );
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        let b = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        let text = key.expose();
        for i in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(CredentialKind::ApiKey.check(&changed).is_err(), "index {i}");
        }
    }

    #[test]
    fn garbage_is_refused_by_class() {
        let k = CredentialKind::ApiKey;
        assert_eq!(k.check(""), Err(KeyFormatError::Length));
        let wrong_prefix = format!("gis_apikex_{}", "A".repeat(49));
        assert_eq!(k.check(&wrong_prefix), Err(KeyFormatError::Prefix));
        let bad_alphabet = format!("gis_apikey_{}", "+".repeat(49));
        assert_eq!(k.check(&bad_alphabet), Err(KeyFormatError::Alphabet));
        let bad_sum = format!("gis_apikey_{}", "A".repeat(49));
        assert_eq!(k.check(&bad_sum), Err(KeyFormatError::Checksum));
        // multi-byte characters never panic on slicing
        let multibyte = format!("gis_apikey_{}é", "A".repeat(47));
        assert!(k.check(&multibyte).is_err());
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let d = KeyDigest::of("anything");
        let hex = d.to_prefixed_hex();
        assert_eq!(KeyDigest::from_prefixed_hex(&hex), Some(d));
        assert_eq!(KeyDigest::from_prefixed_hex("sha256:zz"), None);
        assert_eq!(KeyDigest::from_prefixed_hex(&hex[1..]), None);
        assert!(d.ct_eq(&d));
    }

    #[test]
    fn debug_output_is_redacted() {
        let c = PlainCredential::generate(CredentialKind::ClientSecret).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(&c.expose()[11..]));
        assert!(dbg.contains("redacted"));
    }
}
