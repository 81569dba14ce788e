//! The rotation of server keys with a key id: the current key signs, retired keys still
//! verify until their grace ends. Written once for the token signing keys and the keys of
//! signed tile URLs.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::error::ConfigError;

/// A key a [`KeyRing`] rotates: it has a key id, and errors about it name `FIELD`.
pub(crate) trait RingKey {
    /// The field a configuration error about such a key names.
    const FIELD: &'static str;

    /// The key id.
    fn kid(&self) -> &str;
}

/// The configuration error about key `kid` of kind `K`.
pub(crate) fn key_error<K: RingKey>(kid: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidField {
        field: K::FIELD,
        value: kid.to_owned(),
        reason,
    }
}

/// Checks a key id: 1 to 64 letters, digits, `-`, `_` or `.`.
pub(crate) fn check_kid<K: RingKey>(kid: &str) -> Result<(), ConfigError> {
    if kid.is_empty()
        || kid.len() > 64
        || !kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(key_error::<K>(
            kid,
            "a key id is 1 to 64 letters, digits, `-`, `_` or `.`",
        ));
    }
    Ok(())
}

/// The current key and the retired ones that still verify.
#[derive(Debug, Clone)]
pub(crate) struct KeyRing<K> {
    current: Arc<K>,
    retired: Vec<(Arc<K>, OffsetDateTime)>,
}

impl<K: RingKey> KeyRing<K> {
    pub(crate) fn new(current: K) -> Self {
        Self {
            current: Arc::new(current),
            retired: Vec::new(),
        }
    }

    pub(crate) fn current(&self) -> &Arc<K> {
        &self.current
    }

    /// Makes `next` current; the old current key verifies until `retire_until`.
    pub(crate) fn rotate(
        &mut self,
        next: K,
        retire_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), ConfigError> {
        if next.kid() == self.current.kid()
            || self.retired.iter().any(|(k, _)| k.kid() == next.kid())
        {
            return Err(key_error::<K>(next.kid(), "this key id is already in use"));
        }
        self.retired.retain(|(_, until)| now < *until);
        let old = std::mem::replace(&mut self.current, Arc::new(next));
        self.retired.push((old, retire_until));
        Ok(())
    }

    /// The keys that verify at `now`: the current one first, then the retired ones in
    /// their grace.
    pub(crate) fn live(&self, now: OffsetDateTime) -> impl Iterator<Item = &Arc<K>> {
        std::iter::once(&self.current).chain(
            self.retired
                .iter()
                .filter(move |(_, until)| now < *until)
                .map(|(k, _)| k),
        )
    }

    /// The key with this id, if it may verify at `now`.
    pub(crate) fn verifying(&self, kid: &str, now: OffsetDateTime) -> Option<&Arc<K>> {
        self.live(now).find(|k| k.kid() == kid)
    }
}
