//! [`ClientsFile`]: accounts and clients as JSON, as the example server's `--clients` flag
//! and the file store read them.
//!
//! ```json
//! {
//!   "accounts": [{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"],
//!                 "status": "active", "daily_quota": 10000}],
//!   "clients": [{"id": "web", "account": "acme", "name": "Web map", "kind": "JavaScript",
//!                "allowed_origins": ["https://*.acme.test"], "api_key": "gis_apikey_…"}]
//! }
//! ```
//!
//! An account is an [`AccountDocument`]; a client is a [`ClientDocument`] read as a
//! [`ClientPatch`] (so optional fields take the defaults of [`ClientSpec`], and `roles`
//! absent means all of the account's) plus its credential. A credential is given in
//! plaintext (in the crate's key format; it is hashed on load) or as a digest
//! (`sha256:<64 hex digits>`); a client given none gets a fresh one when it is loaded into
//! a store. Errors name the entry and the field, never the value.
//!
//! ```
//! use gis_auth::document::ClientsFile;
//!
//! let file = r#"{"accounts": [{"id": "acme", "name": "Acme", "roles": ["Evaluator"]}],
//!                "clients": [{"id": "web", "account": "acme", "kind": "JavaScript"}]}"#;
//! let parsed = ClientsFile::from_json(file)?;
//! assert_eq!(parsed.clients[0].id.as_str(), "web");
//!
//! let bad = r#"{"clients": [{"id": "web", "account": "acme", "kind": "Browser"}]}"#;
//! let err = ClientsFile::from_json(bad).unwrap_err();
//! assert!(err.to_string().starts_with("client `web`, field `kind`"));
//! # Ok::<(), gis_auth::document::ClientsFileError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::field::{FieldError, optional_time, read};
use super::{AccountDocument, ClientDocument, ClientPatch, Nullable, field_of};
use crate::client::{
    Account, AccountId, ClientId, ClientKind, ClientSpec, CredentialDigests, CredentialKind,
    KeyDigest, PlainCredential,
};

/// A clients file that could not be read, naming the entry and the field at fault (never
/// the value, which could be a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientsFileError {
    entry: Option<(&'static str, String)>,
    field: Option<String>,
    message: String,
}

impl ClientsFileError {
    /// A problem with `field` of the `what` (`account` or `client`) named `id`.
    pub(crate) fn at(
        what: &'static str,
        id: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            entry: Some((what, id.into())),
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn in_entry(what: &'static str, id: &str, e: FieldError) -> Self {
        Self::at(what, id, e.field(), e.reason())
    }

    /// The client id (or account id) the problem is in, if any.
    pub fn entry(&self) -> Option<&str> {
        self.entry.as_ref().map(|(_, id)| id.as_str())
    }

    /// The field the problem is in, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl fmt::Display for ClientsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((what, id)) = &self.entry {
            write!(f, "{what} `{id}`, ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientsFileError {}

/// The accounts and clients of a clients file, checked as far as they can be without a
/// store (a client's account, its roles and its rules are checked when it is stored).
#[derive(Debug, Clone, Default)]
pub struct ClientsFile {
    /// The accounts.
    pub accounts: Vec<Account>,
    /// The clients.
    pub clients: Vec<FileClient>,
}

/// A client of a clients file.
#[derive(Debug, Clone)]
pub struct FileClient {
    /// Its id.
    pub id: ClientId,
    /// Its account.
    pub account: AccountId,
    /// Its settings.
    pub spec: ClientSpec,
    /// Its credentials; `None` for a client that gets a fresh one when it is stored.
    pub credentials: Option<CredentialDigests>,
}

impl ClientsFile {
    /// Reads and checks a clients file.
    pub fn from_json(text: &str) -> Result<ClientsFile, ClientsFileError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entries {
            #[serde(default)]
            accounts: Vec<Map<String, Value>>,
            #[serde(default)]
            clients: Vec<Map<String, Value>>,
        }
        // serde's message can quote a value, which could be a credential: give the place.
        let entries: Entries = serde_json::from_str(text).map_err(|e| ClientsFileError {
            entry: None,
            field: None,
            message: format!(
                "not a clients file: expected {{\"accounts\": [...], \"clients\": [...]}} \
                 (problem at line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
        let name = |map: &Map<String, Value>, i: usize| match map.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ => format!("#{}", i + 1),
        };
        let mut file = ClientsFile::default();
        for (i, map) in entries.accounts.into_iter().enumerate() {
            let id = name(&map, i);
            let account = read::<AccountDocument>(&Value::Object(map))
                .and_then(|doc| doc.to_account())
                .map_err(|e| ClientsFileError::in_entry("account", &id, e))?;
            file.accounts.push(account);
        }
        for (i, map) in entries.clients.into_iter().enumerate() {
            let id = name(&map, i);
            let client =
                FileClient::of(map).map_err(|e| ClientsFileError::in_entry("client", &id, e))?;
            file.clients.push(client);
        }
        Ok(file)
    }

    /// The file as JSON, pretty-printed. Credentials are written as digests (`sha256:…`),
    /// never in plaintext; a client whose credential is still to be generated is written
    /// without one.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Entries {
            accounts: Vec<AccountDocument>,
            clients: Vec<ClientEntry>,
        }
        #[derive(Serialize)]
        struct ClientEntry {
            #[serde(flatten)]
            settings: ClientDocument,
            #[serde(flatten)]
            credential: CredentialFields,
        }
        let entries = Entries {
            accounts: self.accounts.iter().map(AccountDocument::of).collect(),
            clients: self
                .clients
                .iter()
                .map(|c| ClientEntry {
                    settings: ClientDocument::of_spec(&c.id, &c.account, c.spec.clone()),
                    credential: CredentialFields::of(c.spec.kind, c.credentials.as_ref()),
                })
                .collect(),
        };
        // Documents of strings, numbers and lists always serialise. Through a `Value`, the
        // keys are written in order and a client's unset settings left out, as they always
        // were.
        let mut value = serde_json::to_value(&entries).unwrap_or_default();
        if let Some(clients) = value["clients"].as_array_mut() {
            for client in clients.iter_mut().filter_map(Value::as_object_mut) {
                client.retain(|_, v| !v.is_null());
            }
        }
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

impl FileClient {
    /// A client entry: its settings as a [`ClientPatch`] on the defaults, `id`, `account`
    /// and `kind` required, and its credential fields.
    fn of(mut entry: Map<String, Value>) -> Result<FileClient, FieldError> {
        let credential: Map<String, Value> = CREDENTIAL_FIELDS
            .iter()
            .filter_map(|field| entry.remove_entry(*field))
            .collect();
        let mut patch: ClientPatch = read(&Value::Object(entry))?;
        let required = |field| FieldError::new(field, "required");
        let id = patch.id.take().ok_or_else(|| required("id"))?;
        let account = patch.account.take().ok_or_else(|| required("account"))?;
        let kind = patch.kind.take().ok_or_else(|| required("kind"))?;
        let name = match std::mem::take(&mut patch.name) {
            Nullable::Value(name) => name,
            Nullable::Absent | Nullable::Null => id.to_string(),
        };
        let mut spec = ClientSpec::new(kind, name).id(id.clone());
        patch
            .apply_to(&mut spec)
            .map_err(|e| FieldError::config(field_of(&e).unwrap_or("id"), &e))?;
        let credentials =
            read::<CredentialFields>(&Value::Object(credential))?.credentials(kind, &id)?;
        Ok(FileClient {
            id,
            account,
            spec,
            credentials,
        })
    }
}

/// The credential fields of a client entry, which no other document has.
const CREDENTIAL_FIELDS: [&str; 6] = [
    "api_key",
    "client_secret",
    "previous_api_key",
    "previous_client_secret",
    "previous_expires_at",
    "credential_generation",
];

/// A client's credential in a clients file: the current one in plaintext or as a digest,
/// and a rotation in progress and the generation, as a store writes them back.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<CredentialText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<CredentialText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_client_secret: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_time",
        serialize_with = "time::serde::rfc3339::option::serialize"
    )]
    previous_expires_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential_generation: Option<u64>,
}

/// A credential as the file gives it: plaintext or a digest. `Debug` never shows it.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct CredentialText(String);

impl fmt::Debug for CredentialText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialText(..)")
    }
}

impl CredentialFields {
    /// The fields of `credentials` for a client of `kind`: digests only.
    fn of(kind: ClientKind, credentials: Option<&CredentialDigests>) -> CredentialFields {
        let Some(c) = credentials else {
            return CredentialFields::default();
        };
        let current = Some(CredentialText(c.current().to_prefixed_hex()));
        let previous = c.previous().map(|(digest, _)| digest.to_prefixed_hex());
        let mut fields = CredentialFields {
            previous_expires_at: c.previous().map(|(_, until)| *until),
            credential_generation: (c.generation() > 0).then_some(c.generation()),
            ..CredentialFields::default()
        };
        match kind {
            ClientKind::JavaScript => {
                (fields.api_key, fields.previous_api_key) = (current, previous)
            }
            ClientKind::NativeConfidential => {
                (fields.client_secret, fields.previous_client_secret) = (current, previous);
            }
        }
        fields
    }

    /// The credentials of client `id` of `kind`; `None` when it is to get a fresh one.
    fn credentials(
        self,
        kind: ClientKind,
        id: &ClientId,
    ) -> Result<Option<CredentialDigests>, FieldError> {
        let (field, current, previous, other, previous_other, credential_kind) = match kind {
            ClientKind::JavaScript => (
                "api_key",
                self.api_key,
                self.previous_api_key,
                ("client_secret", self.client_secret.is_some()),
                (
                    "previous_client_secret",
                    self.previous_client_secret.is_some(),
                ),
                CredentialKind::ApiKey,
            ),
            ClientKind::NativeConfidential => (
                "client_secret",
                self.client_secret,
                self.previous_client_secret,
                ("api_key", self.api_key.is_some()),
                ("previous_api_key", self.previous_api_key.is_some()),
                CredentialKind::ClientSecret,
            ),
        };
        if let (other, true) = other {
            return Err(FieldError::new(
                other,
                format!("a {kind} client has a `{field}`, not a `{other}`"),
            ));
        }
        if let (previous_other, true) = previous_other {
            return Err(FieldError::new(
                previous_other,
                format!("this client's credential is a `{field}`"),
            ));
        }
        let previous_field = format!("previous_{field}");
        let digest = |field: &str, text: &str| {
            KeyDigest::from_prefixed_hex(text)
                .ok_or_else(|| FieldError::new(field, "a digest is `sha256:` and 64 hex digits"))
        };
        let current = match current {
            None => None,
            Some(CredentialText(text)) if text.starts_with("sha256:") => {
                Some(digest(field, &text)?)
            }
            Some(CredentialText(text)) => Some(
                PlainCredential::parse(credential_kind, &text, id.as_str())
                    .map_err(|e| FieldError::config(field, &e))?
                    .digest(),
            ),
        };
        let previous = previous
            .map(|text| digest(&previous_field, &text))
            .transpose()?;
        let previous = match (previous, self.previous_expires_at) {
            (Some(d), Some(until)) => Some((d, until)),
            (None, None) => None,
            _ => {
                return Err(FieldError::new(
                    "previous_expires_at",
                    format!("`{previous_field}` and `previous_expires_at` go together"),
                ));
            }
        };
        match (current, previous, self.credential_generation) {
            (None, None, None) => Ok(None),
            (None, _, _) => Err(FieldError::new(
                field,
                "a client with a previous credential or a generation has a current one",
            )),
            (Some(current), previous, generation) => Ok(Some(CredentialDigests::restored(
                current,
                previous,
                generation.unwrap_or(u64::from(previous.is_some())),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_field_list_is_every_field_of_a_credential() {
        let fields = CredentialFields {
            api_key: Some(CredentialText("a".into())),
            client_secret: Some(CredentialText("b".into())),
            previous_api_key: Some("c".into()),
            previous_client_secret: Some("d".into()),
            previous_expires_at: Some(OffsetDateTime::UNIX_EPOCH),
            credential_generation: Some(1),
        };
        let json = serde_json::to_value(&fields).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = CREDENTIAL_FIELDS.to_vec();
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_bad_credential_is_named_and_never_quoted() {
        let secret = PlainCredential::generate(CredentialKind::ClientSecret).unwrap();
        let api_key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        for (credential, field) in [
            // a secret where a key belongs
            (format!(r#""api_key": "{}""#, secret.expose()), "api_key"),
            (format!(r#""api_key": ["{}"]"#, secret.expose()), "api_key"),
            (
                format!(r#""client_secret": "{}""#, secret.expose()),
                "client_secret",
            ),
            (
                format!(r#""previous_api_key": "{}""#, secret.expose()),
                "previous_api_key",
            ),
            (
                format!(
                    r#""api_key": "{}", "credential_generation": "{}""#,
                    api_key.expose(),
                    secret.expose()
                ),
                "credential_generation",
            ),
            (
                format!(
                    r#""api_key": "{}", "previous_expires_at": "{}""#,
                    api_key.expose(),
                    secret.expose()
                ),
                "previous_expires_at",
            ),
        ] {
            let text = format!(
                r#"{{"clients": [{{"id": "w", "account": "acme", "kind": "JavaScript", {credential}}}]}}"#
            );
            let err = ClientsFile::from_json(&text).unwrap_err();
            assert_eq!(
                (err.entry(), err.field()),
                (Some("w"), Some(field)),
                "{err}"
            );
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(secret.expose()), "{shown}");
            assert!(!shown.contains(api_key.expose()), "{shown}");
        }
    }
}
