//! [`Realm`]: the realm of a `WWW-Authenticate` challenge, checked once when it is set.
//!
//! ```
//! use gis_auth::credentials::Realm;
//!
//! assert_eq!(Realm::new("gis maps")?.as_str(), "gis maps");
//! assert!(Realm::new("a\"b").is_err());
//! assert_eq!(Realm::default().as_str(), "gis-auth");
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;

use crate::error::ConfigError;

/// The realm of a `WWW-Authenticate` challenge (RFC 9110 §11.6.1 `auth-param`): printable
/// ASCII without `"` or `\`, so it stands inside a quoted-string without escaping.
/// Shared by the layer's Bearer challenges and the token endpoint's Basic challenge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Realm(String);

impl Realm {
    /// A realm, refused when it is empty or would need escaping in a quoted-string.
    ///
    /// # Errors
    /// [`ConfigError::InvalidField`] naming the realm.
    pub fn new(realm: impl Into<String>) -> Result<Self, ConfigError> {
        let realm = realm.into();
        let valid = !realm.is_empty()
            && realm
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        if !valid {
            return Err(ConfigError::InvalidField {
                field: "realm",
                value: realm,
                reason: "a realm is printable ASCII without `\"` or `\\`",
            });
        }
        Ok(Self(realm))
    }

    /// The realm.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Realm {
    /// `gis-auth`.
    fn default() -> Self {
        Self("gis-auth".to_owned())
    }
}

impl fmt::Display for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_realm_must_fit_a_quoted_string() {
        assert!(Realm::new("gis-auth maps").is_ok());
        assert!(Realm::new("").is_err());
        assert!(Realm::new("a\"b").is_err());
        assert!(Realm::new("a\\b").is_err());
        assert!(Realm::new("é").is_err());
        let err = Realm::new("a\"b").unwrap_err().to_string();
        assert!(err.contains("a\"b"), "{err}");
    }
}
