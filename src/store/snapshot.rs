//! The clients file: accounts and clients as JSON, as the example server's `--clients` flag
//! reads them.
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
//! Optional fields take the defaults of [`ClientSpec`]; `roles` absent means all of the
//! account's roles. A credential is given in plaintext (in the crate's key format; it is
//! hashed on load) or as a digest (`sha256:<64 hex digits>`); a client given none gets a
//! fresh one, reported in [`Snapshot::load_into`]'s result. Errors name the client and field.
//!
//! ```
//! use gis_auth::store::{InMemoryStore, Snapshot};
//!
//! let file = r#"{"accounts": [{"id": "acme", "name": "Acme", "roles": ["Evaluator"]}],
//!                "clients": [{"id": "web", "account": "acme", "kind": "JavaScript"}]}"#;
//! let store = InMemoryStore::new();
//! let generated = Snapshot::from_json(file)?.load_into(&store)?;
//! assert_eq!(generated[0].client.as_str(), "web");
//!
//! let bad = r#"{"clients": [{"id": "web", "account": "acme", "kind": "Browser"}]}"#;
//! let err = Snapshot::from_json(bad).unwrap_err();
//! assert!(err.to_string().starts_with("client `web`, field `kind`"));
//! # Ok::<(), gis_auth::store::SnapshotError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::manage::{ManageError, NewCredential};
use super::memory::InMemoryStore;
use crate::client::{
    Account, AccountId, Action, ClientId, ClientKind, ClientSpec, Contact, CredentialKind,
    Credentials, Grant, GrantDocument, KeyDigest, PlainCredential, RateLimit, RoleSet, ShadowSet,
    Status,
};
use crate::error::ConfigError;

/// A clients file that could not be read, naming where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    what: Option<(&'static str, String)>,
    field: Option<String>,
    message: String,
}

impl SnapshotError {
    fn at(
        what: &'static str,
        id: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            what: Some((what, id.into())),
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn file(message: impl Into<String>) -> Self {
        Self {
            what: None,
            field: None,
            message: message.into(),
        }
    }

    /// The client id (or account id) the problem is in, if any.
    pub fn entry(&self) -> Option<&str> {
        self.what.as_ref().map(|(_, id)| id.as_str())
    }

    /// The field the problem is in, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((what, id)) = &self.what {
            write!(f, "{what} `{id}`, ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SnapshotError {}

/// A credential generated while loading a file: the plaintext, shown once.
#[derive(Debug, Clone)]
pub struct GeneratedCredential {
    /// The client it belongs to.
    pub client: ClientId,
    /// Its kind.
    pub kind: ClientKind,
    /// The plaintext.
    pub credential: PlainCredential,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    accounts: Vec<serde_json::Map<String, Value>>,
    #[serde(default)]
    clients: Vec<serde_json::Map<String, Value>>,
}

/// Validated accounts and clients, ready to load.
#[derive(Debug, Clone)]
pub struct Snapshot {
    accounts: Vec<Account>,
    clients: Vec<ClientEntry>,
}

#[derive(Debug, Clone)]
struct ClientEntry {
    account: AccountId,
    spec: ClientSpec,
    credential: NewCredential,
}

const ACCOUNT_FIELDS: &[&str] = &[
    "id",
    "name",
    "roles",
    "status",
    "daily_quota",
    "contact_name",
    "contact_email",
    "contact_phone",
];
const CLIENT_FIELDS: &[&str] = &[
    "id",
    "account",
    "name",
    "kind",
    "roles",
    "status",
    "allowed_origins",
    "allow_missing_origin",
    "allowed_ips",
    "expires_at",
    "privileges",
    "grants",
    "rate_limit",
    "shadow",
    "api_key",
    "client_secret",
    "previous_api_key",
    "previous_client_secret",
    "previous_expires_at",
    "credential_generation",
];

/// Field access with errors that name the entry and the field.
struct Entry<'a> {
    what: &'static str,
    id: String,
    map: &'a serde_json::Map<String, Value>,
}

impl<'a> Entry<'a> {
    fn new(
        what: &'static str,
        index: usize,
        map: &'a serde_json::Map<String, Value>,
        known: &[&str],
    ) -> Result<Self, SnapshotError> {
        let id = match map.get("id") {
            Some(Value::String(s)) => s.clone(),
            _ => format!("#{}", index + 1),
        };
        let entry = Entry { what, id, map };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(entry.err(unknown, "unknown field"));
        }
        Ok(entry)
    }

    fn err(&self, field: &str, message: impl Into<String>) -> SnapshotError {
        SnapshotError::at(self.what, self.id.clone(), field, message)
    }

    fn config(&self, field: &str, e: ConfigError) -> SnapshotError {
        self.err(field, e.to_string())
    }

    fn str(&self, field: &str) -> Result<Option<&'a str>, SnapshotError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(field, "expected a string")),
        }
    }

    fn required_str(&self, field: &str) -> Result<&'a str, SnapshotError> {
        self.str(field)?.ok_or_else(|| self.err(field, "required"))
    }

    fn strings(&self, field: &str) -> Result<Option<Vec<&'a str>>, SnapshotError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| self.err(field, "expected a list of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.err(field, "expected a list of strings")),
        }
    }

    fn bool(&self, field: &str) -> Result<bool, SnapshotError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err(field, "expected true or false")),
        }
    }

    fn status(&self) -> Result<Status, SnapshotError> {
        match self.str("status")? {
            None | Some("active") => Ok(Status::Active),
            Some("inactive") => Ok(Status::Inactive),
            Some(other) => {
                Err(self.err("status", format!("`{other}` is not `active` or `inactive`")))
            }
        }
    }

    fn grants(&self) -> Result<Vec<Grant>, SnapshotError> {
        const SHAPE: &str = r#"expected a list of {"item": "<id>", "actions": ["read", "write"]}"#;
        let items = match self.map.get("grants") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(self.err("grants", SHAPE)),
        };
        items
            .iter()
            .map(|g| {
                let obj = g.as_object().ok_or_else(|| self.err("grants", SHAPE))?;
                if obj.keys().any(|k| k != "item" && k != "actions") {
                    return Err(self.err("grants", SHAPE));
                }
                let item = obj
                    .get("item")
                    .and_then(Value::as_str)
                    .ok_or_else(|| self.err("grants", SHAPE))?;
                let actions = obj
                    .get("actions")
                    .and_then(Value::as_array)
                    .ok_or_else(|| self.err("grants", SHAPE))?
                    .iter()
                    .map(|a| {
                        a.as_str()
                            .ok_or_else(|| self.err("grants", SHAPE))?
                            .parse::<Action>()
                            .map_err(|e| self.config("grants", e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Grant::new(item, actions).map_err(|e| self.config("grants", e))
            })
            .collect()
    }

    fn rate_limit(&self) -> Result<Option<RateLimit>, SnapshotError> {
        const SHAPE: &str =
            r#"expected {"per_second": <n>, "burst": <n>} with whole numbers from 1"#;
        let obj = match self.map.get("rate_limit") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(obj)) => obj,
            Some(_) => return Err(self.err("rate_limit", SHAPE)),
        };
        if obj.keys().any(|k| k != "per_second" && k != "burst") {
            return Err(self.err("rate_limit", SHAPE));
        }
        let number = |name: &str| {
            obj.get(name)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| self.err("rate_limit", SHAPE))
        };
        let per_second = number("per_second")?;
        let burst = match obj.get("burst") {
            None | Some(Value::Null) => per_second,
            Some(_) => number("burst")?,
        };
        RateLimit::new(per_second, burst)
            .map(Some)
            .map_err(|e| self.config("rate_limit", e))
    }

    fn roles(&self) -> Result<Option<RoleSet>, SnapshotError> {
        self.strings("roles")?
            .map(|names| RoleSet::parse(names).map_err(|e| self.config("roles", e)))
            .transpose()
    }
}

impl Snapshot {
    /// Reads and validates a clients file.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let raw: RawFile = serde_json::from_str(text)
            // serde's message can quote a value, which could be a credential: give the place.
            .map_err(|e| {
                SnapshotError::file(format!(
                    "not a clients file: expected {{\"accounts\": [...], \"clients\": [...]}} (problem at line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
        let mut accounts = Vec::with_capacity(raw.accounts.len());
        for (i, map) in raw.accounts.iter().enumerate() {
            let e = Entry::new("account", i, map, ACCOUNT_FIELDS)?;
            let id = AccountId::new(e.required_str("id")?).map_err(|err| e.config("id", err))?;
            let name = e.str("name")?.unwrap_or(id.as_str()).to_owned();
            let roles = e.roles()?.ok_or_else(|| e.err("roles", "required"))?;
            let quota = match map.get("daily_quota") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    e.err(
                        "daily_quota",
                        "expected a whole number of transactions, or null",
                    )
                })?),
            };
            let contact = Contact {
                contact_name: e.str("contact_name")?.map(str::to_owned),
                contact_email: e.str("contact_email")?.map(str::to_owned),
                contact_phone: e.str("contact_phone")?.map(str::to_owned),
            };
            contact.validate().map_err(|err| match &err {
                ConfigError::InvalidField { field, .. } => e.config(field, err),
                _ => e.config("contact_name", err),
            })?;
            let account = Account::new(id, name, roles)
                .map_err(|err| e.config("name", err))?
                .with_status(e.status()?)
                .with_daily_quota(quota)
                .with_contact(contact);
            accounts.push(account);
        }
        let mut clients = Vec::with_capacity(raw.clients.len());
        for (i, map) in raw.clients.iter().enumerate() {
            clients.push(Self::client_entry(&Entry::new(
                "client",
                i,
                map,
                CLIENT_FIELDS,
            )?)?);
        }
        Ok(Snapshot { accounts, clients })
    }

    /// The previous credential of a rotation in progress and the generation, as a store
    /// writes them back: `previous_<field>` (a digest), `previous_expires_at`,
    /// `credential_generation`.
    fn rotation(
        e: &Entry<'_>,
        field: &str,
        credential: NewCredential,
    ) -> Result<NewCredential, SnapshotError> {
        let previous_field = format!("previous_{field}");
        let other = if field == "api_key" {
            "previous_client_secret"
        } else {
            "previous_api_key"
        };
        if e.map.contains_key(other) {
            return Err(e.err(other, format!("this client's credential is a `{field}`")));
        }
        let previous = e
            .str(&previous_field)?
            .map(|text| {
                KeyDigest::from_prefixed_hex(text).ok_or_else(|| {
                    e.err(&previous_field, "a digest is `sha256:` and 64 hex digits")
                })
            })
            .transpose()?;
        let until = e
            .str("previous_expires_at")?
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                    e.err(
                        "previous_expires_at",
                        format!("`{s}` is not an RFC 3339 time"),
                    )
                })
            })
            .transpose()?;
        let generation = match e.map.get("credential_generation") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| e.err("credential_generation", "expected a whole number"))?,
            ),
        };
        if previous.is_none() && until.is_none() && generation.is_none() {
            return Ok(credential);
        }
        let current = match credential {
            NewCredential::Digest(d) => d,
            NewCredential::Plain(p) => p.digest(),
            _ => {
                return Err(e.err(
                    field,
                    "a client with a previous credential or a generation has a current one",
                ));
            }
        };
        let previous = match (previous, until) {
            (Some(d), Some(t)) => Some((d, t)),
            (None, None) => None,
            _ => {
                return Err(e.err(
                    "previous_expires_at",
                    format!("`{previous_field}` and `previous_expires_at` go together"),
                ));
            }
        };
        Ok(NewCredential::Restored(Credentials::restored(
            current,
            previous,
            generation.unwrap_or(u64::from(previous.is_some())),
        )))
    }

    /// The accounts and clients of `store`, with credentials as digests only: what a file
    /// store writes back.
    pub fn of_store(store: &InMemoryStore) -> Snapshot {
        let accounts: Vec<Account> = store.accounts().iter().map(|a| Account::clone(a)).collect();
        let clients = accounts
            .iter()
            .flat_map(|a| store.clients_of(&a.id))
            .map(|c| ClientEntry {
                account: c.account_id().clone(),
                spec: c.to_spec(),
                credential: NewCredential::Restored(c.credentials().clone()),
            })
            .collect();
        Snapshot { accounts, clients }
    }

    /// The snapshot as a clients file, pretty-printed. Credentials are written as digests
    /// (`sha256:…`), never in plaintext; a client whose credential is still to be generated
    /// is written without one.
    pub fn to_json(&self) -> String {
        let accounts: Vec<Value> = self.accounts.iter().map(account_json).collect();
        let clients: Vec<Value> = self.clients.iter().map(client_json).collect();
        let file = serde_json::json!({"accounts": accounts, "clients": clients});
        // A tree of strings, numbers and lists always serialises.
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    fn client_entry(e: &Entry<'_>) -> Result<ClientEntry, SnapshotError> {
        let id = ClientId::new(e.required_str("id")?).map_err(|err| e.config("id", err))?;
        let account =
            AccountId::new(e.required_str("account")?).map_err(|err| e.config("account", err))?;
        let kind = match e.required_str("kind")? {
            "NativeConfidential" | "native_confidential" => ClientKind::NativeConfidential,
            "JavaScript" | "javascript" => ClientKind::JavaScript,
            other => {
                return Err(e.err(
                    "kind",
                    format!("`{other}` is not `NativeConfidential` or `JavaScript`"),
                ));
            }
        };
        let expires_at = e
            .str("expires_at")?
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|_| e.err("expires_at", format!("`{s}` is not an RFC 3339 time")))
            })
            .transpose()?;
        let (field, other, cred_kind) = match kind {
            ClientKind::JavaScript => ("api_key", "client_secret", CredentialKind::ApiKey),
            ClientKind::NativeConfidential => {
                ("client_secret", "api_key", CredentialKind::ClientSecret)
            }
        };
        if e.map.contains_key(other) {
            return Err(e.err(
                other,
                format!("a {kind:?} client has a `{field}`, not a `{other}`"),
            ));
        }
        let credential = match e.str(field)? {
            None => NewCredential::Generate,
            Some(text) if text.starts_with("sha256:") => NewCredential::Digest(
                KeyDigest::from_prefixed_hex(text)
                    .ok_or_else(|| e.err(field, "a digest is `sha256:` and 64 hex digits"))?,
            ),
            Some(text) => NewCredential::Plain(
                PlainCredential::parse(cred_kind, text, id.as_str())
                    .map_err(|err| e.config(field, err))?,
            ),
        };
        let credential = Self::rotation(e, field, credential)?;
        let spec = ClientSpec {
            id: Some(id.clone()),
            name: e.str("name")?.unwrap_or(id.as_str()).to_owned(),
            kind,
            roles: e.roles()?,
            status: e.status()?,
            allowed_origins: e
                .strings("allowed_origins")?
                .unwrap_or_default()
                .into_iter()
                .map(String::from)
                .collect(),
            allow_missing_origin: e.bool("allow_missing_origin")?,
            allowed_ips: e
                .strings("allowed_ips")?
                .unwrap_or_default()
                .into_iter()
                .map(String::from)
                .collect(),
            expires_at,
            privileges: e
                .strings("privileges")?
                .map(|names| names.into_iter().map(String::from).collect()),
            grants: e.grants()?,
            rate_limit: e.rate_limit()?,
            shadow: e
                .strings("shadow")?
                .map(|names| ShadowSet::parse(names).map_err(|err| e.config("shadow", err)))
                .transpose()?
                .unwrap_or_default(),
        };
        Ok(ClientEntry {
            account,
            spec,
            credential,
        })
    }

    /// Loads every account, then every client, into `store`; gives the credentials it
    /// generated for clients that had none. The first invalid entry stops the load with an
    /// error naming it (entries before it stay loaded).
    pub fn load_into(
        self,
        store: &InMemoryStore,
    ) -> Result<Vec<GeneratedCredential>, SnapshotError> {
        for account in self.accounts {
            let id = account.id.to_string();
            store
                .insert_account(account)
                .map_err(|e| SnapshotError::at("account", id, "id", e.to_string()))?;
        }
        let mut generated = Vec::new();
        for entry in self.clients {
            let id = entry.spec.id.clone();
            let kind = entry.spec.kind;
            let id_str = id.as_ref().map(ToString::to_string).unwrap_or_default();
            let (client, plain) = store
                .insert_client(&entry.account, entry.spec, entry.credential)
                .map_err(|e| {
                    let field = match &e {
                        ManageError::NotFound { .. } => "account",
                        ManageError::Invalid(
                            ConfigError::RoleNotHeld { .. } | ConfigError::InvalidRole { .. },
                        ) => "roles",
                        ManageError::Invalid(
                            ConfigError::InvalidOrigin { .. }
                            | ConfigError::OriginsOnConfidentialClient { .. },
                        ) => "allowed_origins",
                        ManageError::Invalid(ConfigError::InvalidIpRule { .. }) => "allowed_ips",
                        ManageError::Invalid(ConfigError::InvalidCredential { field, .. }) => field,
                        ManageError::Invalid(ConfigError::InvalidField { field, .. })
                            if CLIENT_FIELDS.contains(field) =>
                        {
                            field
                        }
                        _ => "id",
                    };
                    SnapshotError::at("client", id_str.clone(), field, e.to_string())
                })?;
            if let Some(credential) = plain {
                generated.push(GeneratedCredential {
                    client: client.id().clone(),
                    kind,
                    credential,
                });
            }
        }
        Ok(generated)
    }
}

fn account_json(a: &Account) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), Value::from(a.id.as_str()));
    obj.insert("name".into(), Value::from(a.name.as_str()));
    obj.insert(
        "roles".into(),
        serde_json::to_value(&a.roles).unwrap_or_default(),
    );
    obj.insert(
        "status".into(),
        serde_json::to_value(a.status).unwrap_or_default(),
    );
    obj.insert(
        "daily_quota".into(),
        serde_json::to_value(a.daily_quota).unwrap_or_default(),
    );
    if let Ok(Value::Object(contact)) = serde_json::to_value(&a.contact) {
        obj.extend(contact);
    }
    Value::Object(obj)
}

fn client_json(entry: &ClientEntry) -> Value {
    let spec = &entry.spec;
    let field = match spec.kind {
        ClientKind::JavaScript => "api_key",
        ClientKind::NativeConfidential => "client_secret",
    };
    let mut obj = serde_json::Map::new();
    if let Some(id) = &spec.id {
        obj.insert("id".into(), Value::from(id.as_str()));
    }
    obj.insert("account".into(), Value::from(entry.account.as_str()));
    obj.insert("name".into(), Value::from(spec.name.as_str()));
    obj.insert(
        "kind".into(),
        serde_json::to_value(spec.kind).unwrap_or_default(),
    );
    if let Some(roles) = &spec.roles {
        obj.insert(
            "roles".into(),
            serde_json::to_value(roles).unwrap_or_default(),
        );
    }
    obj.insert(
        "status".into(),
        serde_json::to_value(spec.status).unwrap_or_default(),
    );
    obj.insert(
        "allowed_origins".into(),
        Value::from(spec.allowed_origins.clone()),
    );
    obj.insert(
        "allow_missing_origin".into(),
        Value::from(spec.allow_missing_origin),
    );
    obj.insert("allowed_ips".into(), Value::from(spec.allowed_ips.clone()));
    if let Some(t) = spec.expires_at.and_then(|t| t.format(&Rfc3339).ok()) {
        obj.insert("expires_at".into(), Value::from(t));
    }
    if let Some(p) = &spec.privileges {
        obj.insert("privileges".into(), Value::from(p.clone()));
    }
    let grants: Vec<GrantDocument> = spec.grants.iter().map(GrantDocument::from).collect();
    obj.insert(
        "grants".into(),
        serde_json::to_value(grants).unwrap_or_default(),
    );
    if let Some(limit) = spec.rate_limit {
        obj.insert(
            "rate_limit".into(),
            serde_json::to_value(limit).unwrap_or_default(),
        );
    }
    let shadow: Vec<&str> = spec.shadow.iter().map(|r| r.as_str()).collect();
    obj.insert("shadow".into(), Value::from(shadow));
    let credentials = match &entry.credential {
        NewCredential::Generate => None,
        NewCredential::Plain(p) => Some(Credentials::new(p.digest())),
        NewCredential::Digest(d) => Some(Credentials::new(*d)),
        NewCredential::Restored(c) => Some(c.clone()),
    };
    if let Some(c) = credentials {
        obj.insert(field.into(), Value::from(c.current().to_prefixed_hex()));
        if let Some((previous, until)) = c.previous() {
            obj.insert(
                format!("previous_{field}"),
                Value::from(previous.to_prefixed_hex()),
            );
            if let Ok(t) = until.format(&Rfc3339) {
                obj.insert("previous_expires_at".into(), Value::from(t));
            }
        }
        if c.generation() > 0 {
            obj.insert("credential_generation".into(), Value::from(c.generation()));
        }
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_written_back_loads_into_the_same_clients_with_digests_only() {
        let (store, generated) = load(&with_client(
            r#"{"id": "web", "account": "acme", "kind": "JavaScript",
                "allowed_origins": ["https://*.acme.test"], "shadow": ["origins"],
                "grants": [{"item": "roads", "actions": ["read"]}],
                "rate_limit": {"per_second": 5, "burst": 9}}"#,
        ))
        .unwrap();
        let id = ClientId::new("web").unwrap();
        store
            .regenerate(&id, Some(time::Duration::hours(1)))
            .unwrap();
        store
            .change_account(&AccountId::new("acme").unwrap(), |a| {
                a.contact.contact_email = Some("ops@acme.test".into());
            })
            .unwrap();
        let text = Snapshot::of_store(&store).to_json();
        assert!(!text.contains(generated[0].credential.expose()));
        assert!(!text.contains("gis_apikey_"), "{text}");
        let (again, none) = load(&text).unwrap();
        assert!(none.is_empty());
        let (a, b) = (store.client(&id).unwrap(), again.client(&id).unwrap());
        assert_eq!(a.credentials(), b.credentials());
        assert_eq!(a.to_spec(), b.to_spec());
        assert_eq!(
            again
                .account_now(&AccountId::new("acme").unwrap())
                .unwrap()
                .contact
                .contact_email
                .as_deref(),
            Some("ops@acme.test")
        );
        assert_eq!(Snapshot::of_store(&again).to_json(), text);
    }

    fn load(text: &str) -> Result<(InMemoryStore, Vec<GeneratedCredential>), SnapshotError> {
        let store = InMemoryStore::new();
        let generated = Snapshot::from_json(text)?.load_into(&store)?;
        Ok((store, generated))
    }

    const ACCOUNT: &str = r#"{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"]}"#;

    fn with_client(client: &str) -> String {
        format!(r#"{{"accounts": [{ACCOUNT}], "clients": [{client}]}}"#)
    }

    #[test]
    fn a_full_file_loads_with_defaults() {
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        let text = with_client(&format!(
            r#"{{"id": "web", "account": "acme", "name": "Web", "kind": "JavaScript",
                "roles": ["Evaluator"], "status": "active",
                "allowed_origins": ["https://*.acme.test"], "allow_missing_origin": true,
                "allowed_ips": ["203.0.113.0/24"], "expires_at": "2030-01-01T00:00:00Z",
                "api_key": "{}"}}"#,
            key.expose()
        ));
        let (store, generated) = load(&text).unwrap();
        assert!(generated.is_empty());
        let c = store.client(&ClientId::new("web").unwrap()).unwrap();
        assert!(
            c.credentials()
                .accepts(&key.digest(), OffsetDateTime::UNIX_EPOCH)
        );
        assert!(c.allows_missing_origin());
        assert_eq!(c.roles().len(), 1);
    }

    #[test]
    fn clients_without_credentials_get_fresh_ones() {
        let text = with_client(r#"{"id": "srv", "account": "acme", "kind": "NativeConfidential"}"#);
        let (store, generated) = load(&text).unwrap();
        assert_eq!(generated.len(), 1);
        assert_eq!(generated[0].credential.kind(), CredentialKind::ClientSecret);
        let c = store.client(&ClientId::new("srv").unwrap()).unwrap();
        assert_eq!(c.roles().len(), 2, "no roles means all of the account's");
    }

    #[test]
    fn digests_are_accepted() {
        let digest = KeyDigest::of("x").to_prefixed_hex();
        let text = with_client(&format!(
            r#"{{"id": "web", "account": "acme", "kind": "JavaScript", "api_key": "{digest}"}}"#
        ));
        let (_, generated) = load(&text).unwrap();
        assert!(generated.is_empty());
    }

    #[test]
    fn errors_name_the_client_and_field() {
        let cases = [
            (
                r#"{"id": "w", "account": "acme", "kind": "Browser"}"#,
                "client `w`, field `kind`",
            ),
            (
                r#"{"id": "w", "account": "nope", "kind": "JavaScript"}"#,
                "client `w`, field `account`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "roles": ["Subscriber"]}"#,
                "client `w`, field `roles`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_origins": ["*.com"]}"#,
                "client `w`, field `allowed_origins`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "NativeConfidential", "allowed_origins": ["a.com"]}"#,
                "client `w`, field `allowed_origins`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_ips": ["1.2.3.4/40"]}"#,
                "client `w`, field `allowed_ips`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "nope"}"#,
                "client `w`, field `api_key`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "client_secret": "x"}"#,
                "client `w`, field `client_secret`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "expires_at": "tomorrow"}"#,
                "client `w`, field `expires_at`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "status": "paused"}"#,
                "client `w`, field `status`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "colour": "red"}"#,
                "client `w`, field `colour`",
            ),
            (
                r#"{"account": "acme", "kind": "JavaScript"}"#,
                "client `#1`, field `id`",
            ),
        ];
        for (client, expected) in cases {
            let err = load(&with_client(client)).unwrap_err();
            assert!(err.to_string().starts_with(expected), "{err} / {expected}");
        }
    }

    #[test]
    fn plaintext_credentials_never_appear_in_errors() {
        let secret = PlainCredential::generate(CredentialKind::ClientSecret).unwrap();
        let text = with_client(&format!(
            r#"{{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "{}"}}"#,
            secret.expose()
        ));
        let err = load(&text).unwrap_err();
        assert!(!err.to_string().contains(secret.expose()));
    }

    #[test]
    fn not_json_is_a_file_error() {
        let err = Snapshot::from_json("{").unwrap_err();
        assert!(err.to_string().starts_with("not a clients file"));
        assert!(Snapshot::from_json(r#"{"users": []}"#).is_err());
    }

    /// A file with client `w` of `acme`, with `fields` added to it.
    fn web_with(fields: &str) -> String {
        with_client(&format!(
            r#"{{"id": "w", "account": "acme", "kind": "JavaScript", {fields}}}"#
        ))
    }

    /// Loads client `w` with `fields`, checks that the error names `w` and `field`, and
    /// gives it.
    fn refused(fields: &str, field: &str) -> SnapshotError {
        let err = load(&web_with(fields)).unwrap_err();
        assert_eq!(
            (err.entry(), err.field()),
            (Some("w"), Some(field)),
            "{fields}: {err}"
        );
        let prefix = format!("client `w`, field `{field}`: ");
        assert!(err.to_string().starts_with(&prefix), "{err}");
        err
    }

    fn grants_json(n: usize) -> String {
        let grants: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"item": "item-{i}", "actions": ["read"]}}"#))
            .collect();
        format!(r#""grants": [{}]"#, grants.join(", "))
    }

    #[test]
    fn privileges_grants_rate_limit_and_shadow_reach_the_client() {
        let text = web_with(
            r#""privileges": ["WorldStreets", "Items"],
                "grants": [{"item": "roads-2026", "actions": ["read"]},
                           {"item": "parcels", "actions": ["write", "read"]}],
                "rate_limit": {"per_second": 5, "burst": 20},
                "shadow": ["quota", "origins"]"#,
        );
        let (store, _) = load(&text).unwrap();
        let c = store.client(&ClientId::new("w").unwrap()).unwrap();
        let privileges: Vec<&str> = c.privileges().unwrap().names().collect();
        assert_eq!(privileges, ["WorldStreets", "Items"]);
        assert_eq!(
            c.grants(),
            [
                Grant::new("roads-2026", [Action::Read]).unwrap(),
                Grant::new("parcels", [Action::Read, Action::Write]).unwrap(),
            ]
        );
        assert!(c.allows_item("parcels", Action::Write));
        assert!(!c.allows_item("roads-2026", Action::Write));
        assert_eq!(c.rate_limit(), Some(RateLimit::new(5, 20).unwrap()));
        assert_eq!(
            c.shadow(),
            ShadowSet::from_iter([
                crate::client::Restriction::Origins,
                crate::client::Restriction::Quota
            ])
        );
    }

    #[test]
    fn a_null_burst_is_an_absent_burst() {
        let file = format!(
            r#"{{"accounts": [{ACCOUNT}], "clients": [{{"id": "w", "account": "acme", "kind": "JavaScript", "rate_limit": {{"per_second": 5, "burst": null}}}}]}}"#
        );
        let store = InMemoryStore::new();
        Snapshot::from_json(&file)
            .unwrap()
            .load_into(&store)
            .unwrap();
        let limit = store
            .client(&ClientId::new("w").unwrap())
            .unwrap()
            .rate_limit()
            .unwrap();
        assert_eq!(limit.burst.get(), 5);
    }

    #[test]
    fn a_rate_limit_without_a_burst_bursts_at_its_rate() {
        let (store, _) = load(&web_with(r#""rate_limit": {"per_second": 7}"#)).unwrap();
        let c = store.client(&ClientId::new("w").unwrap()).unwrap();
        assert_eq!(c.rate_limit(), Some(RateLimit::new(7, 7).unwrap()));
    }

    #[test]
    fn absent_or_null_access_rules_leave_the_client_unrestricted() {
        let text =
            web_with(r#""privileges": null, "grants": null, "rate_limit": null, "shadow": null"#);
        let (store, _) = load(&text).unwrap();
        let c = store.client(&ClientId::new("w").unwrap()).unwrap();
        assert!(c.privileges().is_none() && c.grants().is_empty());
        assert!(c.rate_limit().is_none() && c.shadow().is_empty());
    }

    #[test]
    fn a_grant_with_an_unknown_action_names_the_client_field_and_action() {
        let err = refused(
            r#""grants": [{"item": "roads", "actions": ["delete"]}]"#,
            "grants",
        );
        assert!(err.to_string().contains("`delete`"), "{err}");
    }

    #[test]
    fn malformed_grants_name_the_client_and_field() {
        for fields in [
            r#""grants": [{"actions": ["read"]}]"#,
            r#""grants": [{"item": "roads", "actions": ["read"], "scope": "all"}]"#,
            r#""grants": [{"item": "roads"}]"#,
            r#""grants": [{"item": "roads", "actions": []}]"#,
            r#""grants": [{"item": "roads", "actions": "read"}]"#,
            r#""grants": [{"item": 7, "actions": ["read"]}]"#,
            r#""grants": [{"item": "", "actions": ["read"]}]"#,
            r#""grants": ["roads"]"#,
            r#""grants": {"item": "roads", "actions": ["read"]}"#,
            r#""grants": [{"item": "roads", "actions": ["read"]},
                          {"item": "roads", "actions": ["write"]}]"#,
        ] {
            refused(fields, "grants");
        }
    }

    #[test]
    fn more_than_a_hundred_grants_name_the_client_and_field() {
        assert!(load(&web_with(&grants_json(100))).is_ok());
        let err = refused(&grants_json(101), "grants");
        assert!(err.to_string().contains("`101`"), "{err}");
    }

    #[test]
    fn malformed_rate_limits_name_the_client_and_field() {
        for fields in [
            r#""rate_limit": {"per_second": 0}"#,
            r#""rate_limit": {"per_second": 5, "burst": 0}"#,
            r#""rate_limit": {"per_second": -1}"#,
            r#""rate_limit": {"per_second": 4294967296}"#,
            r#""rate_limit": {"per_second": 2.5}"#,
            r#""rate_limit": {"burst": 5}"#,
            r#""rate_limit": {"per_second": 5, "window": 60}"#,
            r#""rate_limit": 5"#,
            r#""rate_limit": [5, 10]"#,
            r#""rate_limit": "5/s""#,
        ] {
            refused(fields, "rate_limit");
        }
    }

    #[test]
    fn an_unknown_shadow_name_names_the_client_field_and_name() {
        let err = refused(r#""shadow": ["origins", "referrers"]"#, "shadow");
        assert!(err.to_string().contains("`referrers`"), "{err}");
        refused(r#""shadow": "quota""#, "shadow");
    }

    #[test]
    fn privileges_that_are_not_a_list_of_api_names_name_the_client_and_field() {
        for fields in [
            r#""privileges": "WorldStreets""#,
            r#""privileges": ["WorldStreets", 3]"#,
            r#""privileges": {"WorldStreets": true}"#,
            r#""privileges": ["WorldStreets", "WorldStreets"]"#,
            r#""privileges": [" "]"#,
        ] {
            refused(fields, "privileges");
        }
    }
}
