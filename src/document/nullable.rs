//! [`Nullable`]: a field of a patch that can be absent, `null` or a value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A field of a patch: absent leaves the setting as it is, `null` resets it to its default
/// (clears it), a value replaces it.
///
/// ```
/// use gis_auth::document::Nullable;
///
/// let mut expiry = Some(3);
/// Nullable::Absent.apply(&mut expiry);
/// assert_eq!(expiry, Some(3));
/// Nullable::Null.apply(&mut expiry);
/// assert_eq!(expiry, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nullable<T> {
    /// Not given: unchanged.
    #[default]
    Absent,
    /// `null`: back to the default.
    Null,
    /// A new value.
    Value(T),
}

impl<T> Nullable<T> {
    /// Whether the field was not given (for `skip_serializing_if`).
    pub fn is_absent(&self) -> bool {
        matches!(self, Nullable::Absent)
    }

    /// Sets an optional setting: `null` clears it.
    pub fn apply(self, slot: &mut Option<T>) {
        match self {
            Nullable::Absent => {}
            Nullable::Null => *slot = None,
            Nullable::Value(v) => *slot = Some(v),
        }
    }

    /// Sets a setting with a default: `null` resets it.
    pub fn apply_or_default(self, slot: &mut T)
    where
        T: Default,
    {
        match self {
            Nullable::Absent => {}
            Nullable::Null => *slot = T::default(),
            Nullable::Value(v) => *slot = v,
        }
    }

    /// The value through `f`, keeping absent and `null`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Nullable<U> {
        match self {
            Nullable::Absent => Nullable::Absent,
            Nullable::Null => Nullable::Null,
            Nullable::Value(v) => Nullable::Value(f(v)),
        }
    }

    /// The value through the fallible `f`, keeping absent and `null`.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Nullable<U>, E> {
        Ok(match self {
            Nullable::Absent => Nullable::Absent,
            Nullable::Null => Nullable::Null,
            Nullable::Value(v) => Nullable::Value(f(v)?),
        })
    }
}

impl<T> From<Option<T>> for Nullable<T> {
    /// `None` is `null`.
    fn from(value: Option<T>) -> Self {
        value.map_or(Nullable::Null, Nullable::Value)
    }
}

/// Reads `null` or a value; an absent field is [`Nullable::Absent`] through
/// `#[serde(default)]`.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Nullable::from)
    }
}

/// Writes `null` or the value; leave an absent field out with
/// `#[serde(skip_serializing_if = "Nullable::is_absent")]`.
impl<T: Serialize> Serialize for Nullable<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Nullable::Absent | Nullable::Null => s.serialize_none(),
            Nullable::Value(v) => s.serialize_some(v),
        }
    }
}
