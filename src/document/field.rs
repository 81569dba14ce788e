//! Reading a document with errors that name the field and never quote the value.
//!
//! serde's own messages can quote what was given (`invalid type: string "…", expected a
//! sequence`), and what was given can be a credential pasted into the wrong field. So a
//! document is read through [`serde_path_to_error`], the field is taken from the path, and
//! of serde's message only what it expects is kept; the crate's own validators (the
//! `FromStr` of an enum, a role or an id) explain themselves as [`ConfigError`] does.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_json::{Map, Value};

use super::Nullable;
use crate::error::ConfigError;

/// A field of a document that could not be read: which field (by its top-level name) and
/// why. It never quotes the value serde was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    field: String,
    reason: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A configuration error about `field`, with its message.
    pub fn config(field: impl Into<String>, e: &ConfigError) -> Self {
        FieldError::new(field, e.to_string())
    }

    /// The field, as the document names it.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

/// Reads the JSON object `value` as the document `T`, naming the field at fault and never
/// quoting the value.
///
/// ```
/// use gis_auth::document::{ClientPatch, read};
///
/// let body = serde_json::json!({"allowed_ips": "gis_secret_pasted_here"});
/// let err = read::<ClientPatch>(&body).unwrap_err();
/// assert_eq!(err.field(), "allowed_ips");
/// assert!(!err.to_string().contains("gis_secret"));
/// ```
pub fn read<T: DeserializeOwned>(value: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let top = e.path().iter().find_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        let message = e.inner().to_string();
        match (top, named_field(&message)) {
            // A field inside a field (`rate_limit.window`): name the outer, say the inner.
            (Some(top), Some((named, nested, _))) if top != named => {
                FieldError::new(top, nested.replace("{}", &named))
            }
            (Some(field), Some((_, _, reason))) | (None, Some((field, _, reason))) => {
                FieldError::new(field, reason)
            }
            (Some(top), None) => FieldError::new(top, expectation(&message)),
            (None, None) => FieldError::new("body", expectation(&message)),
        }
    })
}

/// The field serde's message names (a missing, unknown or repeated one), with what to say
/// about it when it is inside another field (`{}` is its name) and when it is not.
fn named_field(message: &str) -> Option<(String, &'static str, &'static str)> {
    [
        ("missing field `", "`{}` is required", "required"),
        ("unknown field `", "unknown field `{}`", "unknown field"),
        ("duplicate field `", "`{}` is given twice", "given twice"),
    ]
    .into_iter()
    .find_map(|(prefix, nested, reason)| {
        let rest = message.strip_prefix(prefix)?;
        let name = rest.split('`').next().unwrap_or_default();
        Some((name.to_owned(), nested, reason))
    })
}

/// What serde expected, without the value it may quote (`invalid type: <the value>,
/// expected <what>`); the crate's own messages as they are.
fn expectation(message: &str) -> String {
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("expected {expected}"),
        None => message.to_owned(),
    }
}

/// For `#[serde(deserialize_with)]`: `null` is the default, as absent is.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Reads one JSON object as a `T`; serde's derive would also take a list of the fields'
/// values (`[5, 10]` for a rate limit), which no document means.
fn object<E: serde::de::Error, T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, E> {
    serde_json::from_value(Value::Object(map)).map_err(E::custom)
}

/// For `#[serde(deserialize_with)]`: a nullable object.
pub(crate) fn nullable_object<'de, D, T>(d: D) -> Result<Nullable<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Map<String, Value>>::deserialize(d)? {
        None => Ok(Nullable::Null),
        Some(map) => object(map).map(Nullable::Value),
    }
}

/// For `#[serde(deserialize_with)]`: a nullable list of objects.
pub(crate) fn nullable_objects<'de, D, T>(d: D) -> Result<Nullable<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Vec<Map<String, Value>>>::deserialize(d)? {
        None => Ok(Nullable::Null),
        Some(maps) => maps
            .into_iter()
            .map(object)
            .collect::<Result<_, _>>()
            .map(Nullable::Value),
    }
}

/// For `#[serde(deserialize_with)]`: a nullable RFC 3339 time.
pub(crate) fn nullable_time<'de, D>(d: D) -> Result<Nullable<time::OffsetDateTime>, D::Error>
where
    D: Deserializer<'de>,
{
    time::serde::rfc3339::option::deserialize(d)
        .map(Nullable::from)
        .map_err(|_| D::Error::custom("expected an RFC 3339 time such as 2027-12-31T23:59:59Z"))
}

/// For `#[serde(deserialize_with)]`: an optional RFC 3339 time (`null` is none).
pub(crate) fn optional_time<'de, D>(d: D) -> Result<Option<time::OffsetDateTime>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match nullable_time(d)? {
        Nullable::Value(t) => Some(t),
        Nullable::Absent | Nullable::Null => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        #[serde(default)]
        ips: Vec<String>,
        #[serde(default, deserialize_with = "nullable_object")]
        limit: Nullable<Limit>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limit {
        per_second: u32,
    }

    fn refused(json: Value) -> FieldError {
        read::<Sample>(&json).expect_err("refused")
    }

    #[test]
    fn errors_name_the_top_level_field_and_never_the_value() {
        let secret = "gis_secret_0123456789";
        for (json, field) in [
            (serde_json::json!({"name": "x", "ips": secret}), "ips"),
            (serde_json::json!({"name": "x", "ips": [secret, 7]}), "ips"),
            (serde_json::json!({"name": 7}), "name"),
            (
                serde_json::json!({"name": "x", "limit": {"per_second": secret}}),
                "limit",
            ),
            (serde_json::json!({"name": "x", "limit": [5]}), "limit"),
            (
                serde_json::json!({"name": "x", "limit": {"burst": 1}}),
                "limit",
            ),
            (serde_json::json!({"name": "x", "colour": secret}), "colour"),
            (serde_json::json!({}), "name"),
        ] {
            let err = refused(json);
            assert_eq!(err.field(), field, "{err}");
            assert!(!err.to_string().contains(secret), "{err}");
        }
        assert_eq!(refused(serde_json::json!({})).reason(), "required");
        assert_eq!(
            refused(serde_json::json!({"name": "x", "limit": {"per_second": 1, "burst": 1}}))
                .reason(),
            "unknown field `burst`"
        );
    }
}
