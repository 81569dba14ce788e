//! A client on the wire: [`ClientDocument`] (what is shown and stored, with its [`etag`]),
//! [`NewClient`] and [`ClientPatch`] (what creates and changes one), [`GrantDocument`] and
//! [`RateLimitDocument`].
//!
//! The admin API answers with a `ClientDocument` and parses its request bodies as a
//! `NewClient` or a `ClientPatch`; the command-line tool prints the same documents and maps
//! its flags to a `ClientPatch`; the clients file stores a `ClientDocument` and reads it
//! back as a `ClientPatch`. The ETag is a digest of the document (and of the credential's
//! generation), so any change a caller can see, or a regenerated credential, gives a new
//! ETag.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     KeyDigest, Role, RoleSet};
//! use gis_auth::document::{ClientDocument, ClientPatch, etag};
//!
//! let account = Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?;
//! let client = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web map"),
//!     &account, CredentialDigests::new(KeyDigest::of("gis_apikey_example")))?;
//! let doc = ClientDocument::of(&client, &account);
//! // An all-roles client shows the roles it holds now, explicitly.
//! assert_eq!(doc.roles.as_ref().map(|r| r.len()), Some(2));
//! let json = serde_json::to_value(&doc)?;
//! assert_eq!(json["kind"], "JavaScript");
//! assert!(json.get("api_key").is_none(), "never a credential");
//! assert!(etag(&client, &account).starts_with('"'));
//!
//! let patch: ClientPatch = serde_json::from_str(r#"{"name": "Renamed", "rate_limit": null}"#)?;
//! let mut spec = client.to_spec();
//! patch.apply_to(&mut spec)?;
//! assert_eq!(spec.name, "Renamed");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Nullable;
use super::field::{FieldError, nullable_object, nullable_objects, nullable_time};
use crate::ConfigError;
use crate::client::{
    Account, AccountId, Action, Client, ClientId, ClientKind, ClientSpec, Grant, RateLimit,
    Restriction, RoleSet, ShadowSet, Status, empty_roles,
};

/// The most entries an account holder may put in a client's `allowed_origins`,
/// `allowed_ips`, `privileges` or `grants` (see [`ClientPatch::check_self_service`]).
pub const MAX_SELF_SERVICE_ENTRIES: usize = 100;

/// The longest origin pattern or IP rule, in bytes, wherever it is given.
pub const MAX_RULE_BYTES: usize = 255;

/// A grant as JSON: `{"item": "roads", "actions": ["read", "write"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantDocument {
    /// The item or dataset id.
    pub item: String,
    /// What is allowed on it.
    pub actions: Vec<Action>,
}

impl From<&Grant> for GrantDocument {
    fn from(g: &Grant) -> Self {
        GrantDocument {
            item: g.item().to_owned(),
            actions: g.actions(),
        }
    }
}

impl TryFrom<&GrantDocument> for Grant {
    type Error = ConfigError;

    fn try_from(g: &GrantDocument) -> Result<Grant, ConfigError> {
        Grant::new(g.item.clone(), g.actions.iter().copied())
    }
}

/// A request-rate limit as JSON: `{"per_second": 5, "burst": 20}`; without a burst it
/// bursts at its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimitDocument {
    /// Requests per second, sustained (at least 1).
    #[cfg_attr(feature = "admin", schema(minimum = 1))]
    pub per_second: u32,
    /// How many requests may arrive at once (at least 1; `per_second` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "admin", schema(minimum = 1))]
    pub burst: Option<u32>,
}

impl From<RateLimit> for RateLimitDocument {
    fn from(limit: RateLimit) -> Self {
        RateLimitDocument {
            per_second: limit.per_second.get(),
            burst: Some(limit.burst.get()),
        }
    }
}

impl TryFrom<RateLimitDocument> for RateLimit {
    type Error = ConfigError;

    fn try_from(doc: RateLimitDocument) -> Result<RateLimit, ConfigError> {
        RateLimit::new(doc.per_second, doc.burst.unwrap_or(doc.per_second))
    }
}

/// A client as JSON, in the clients file's field names. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
pub struct ClientDocument {
    /// The id (a NativeConfidential client's `client_id`).
    #[cfg_attr(feature = "admin", schema(value_type = String))]
    pub id: ClientId,
    /// The owning account.
    #[cfg_attr(feature = "admin", schema(value_type = String))]
    pub account: AccountId,
    /// The display name.
    pub name: String,
    /// `JavaScript` or `NativeConfidential`.
    pub kind: ClientKind,
    /// The roles the client holds: explicit in the admin API's answers; absent in a clients
    /// file for a client that follows its account's roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "admin", schema(value_type = Option<Vec<String>>))]
    pub roles: Option<RoleSet>,
    /// `active` or `inactive`.
    pub status: Status,
    /// Allowed origin patterns.
    pub allowed_origins: Vec<String>,
    /// Whether requests with neither `Origin` nor `Referer` pass the origin rules.
    pub allow_missing_origin: bool,
    /// Allowed IP rules.
    pub allowed_ips: Vec<String>,
    /// When the client stops working (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<OffsetDateTime>,
    /// The APIs the client is limited to; `None` is whatever its roles allow.
    pub privileges: Option<Vec<String>>,
    /// Grants on items and datasets.
    pub grants: Vec<GrantDocument>,
    /// A request-rate limit.
    pub rate_limit: Option<RateLimitDocument>,
    /// The restrictions run report-only.
    pub shadow: Vec<Restriction>,
}

impl ClientDocument {
    /// The client as the admin API shows it: `roles` explicit.
    pub fn of(client: &Client, account: &Account) -> ClientDocument {
        let mut doc = Self::stored(client);
        doc.roles = Some(client.effective_roles(account));
        doc
    }

    /// The client as a clients file stores it: `roles` absent when it follows its
    /// account's.
    pub fn stored(client: &Client) -> ClientDocument {
        Self::of_spec(client.id(), client.account_id(), client.to_spec())
    }

    /// The settings `spec` of client `id` of `account`.
    pub fn of_spec(id: &ClientId, account: &AccountId, spec: ClientSpec) -> ClientDocument {
        ClientDocument {
            id: id.clone(),
            account: account.clone(),
            name: spec.name,
            kind: spec.kind,
            roles: spec.roles,
            status: spec.status,
            allowed_origins: spec.allowed_origins,
            allow_missing_origin: spec.allow_missing_origin,
            allowed_ips: spec.allowed_ips,
            expires_at: spec.expires_at,
            privileges: spec.privileges,
            grants: spec.grants.iter().map(GrantDocument::from).collect(),
            rate_limit: spec.rate_limit.map(RateLimitDocument::from),
            shadow: spec.shadow.iter().collect(),
        }
    }
}

/// The strong ETag of a client as `account` shows it: a quoted digest of its
/// [`ClientDocument`] and its credential's generation.
pub fn etag(client: &Client, account: &Account) -> String {
    let doc = ClientDocument::of(client, account);
    let mut hash = Sha256::new();
    // Serialising a plain struct of strings, numbers and lists cannot fail.
    hash.update(serde_json::to_vec(&doc).unwrap_or_default());
    hash.update(client.credentials().generation().to_be_bytes());
    if let Some((_, until)) = client.credentials().previous() {
        hash.update(until.unix_timestamp().to_be_bytes());
    }
    let digest = hash.finalize();
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for b in &digest[..16] {
        tag.push_str(&format!("{b:02x}"));
    }
    tag.push('"');
    tag
}

/// `NewClient` and `ClientPatch` from one list of the settings both take (each may be
/// absent), with the conversion from one to the other: the two request bodies cannot drift
/// apart.
macro_rules! client_inputs {
    ($($(#[$attr:meta])* $field:ident: $type:ty,)*) => {
        /// A new client (`POST /account/clients`): `name` is required; everything else has
        /// a default (`kind` JavaScript, `roles` all of the account's, `status` active, no
        /// restrictions), which `null` also gives.
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
        #[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct NewClient {
            /// The id; generated when absent. The admin API refuses it (the server assigns
            /// ids there); the command-line tool takes it.
            #[serde(default)]
            #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
            pub id: Option<ClientId>,
            /// A display name.
            pub name: String,
            /// `JavaScript` (default) or `NativeConfidential`.
            #[serde(default)]
            pub kind: Option<ClientKind>,
            $(#[serde(default)] $(#[$attr])* pub $field: $type,)*
        }

        /// A change to a client (`PATCH /account/clients/{id}`, `gis-auth client update`):
        /// the fields present replace the client's, `null` resets one to its default
        /// (`roles` back to all of the account's; no expiry, API limit, grants or rate
        /// limit). `id`, `account` and `kind` may be sent back unchanged (as a document
        /// read with `GET` has them), never changed; `last_used_at` may be sent back with
        /// any value, and is ignored (the usage counter records it).
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
        #[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct ClientPatch {
            /// The id (read-only).
            #[serde(default)]
            #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
            pub id: Option<ClientId>,
            /// The owning account (read-only).
            #[serde(default)]
            #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
            pub account: Option<AccountId>,
            /// The kind (read-only).
            #[serde(default)]
            pub kind: Option<ClientKind>,
            /// When the client was last used (read-only: ignored).
            #[serde(default)]
            #[cfg_attr(feature = "admin", schema(value_type = Option<String>, format = DateTime))]
            pub last_used_at: Option<ReadOnly>,
            /// A display name.
            #[serde(default)]
            #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
            pub name: Nullable<String>,
            $(#[serde(default)] $(#[$attr])* pub $field: $type,)*
        }

        impl From<NewClient> for ClientPatch {
            fn from(new: NewClient) -> ClientPatch {
                ClientPatch {
                    id: new.id,
                    account: None,
                    kind: new.kind,
                    last_used_at: None,
                    name: Nullable::Value(new.name),
                    $($field: new.$field,)*
                }
            }
        }
    };
}

client_inputs! {
    /// Roles, at most the account's, at least one; absent (or `null`) is all of them, as
    /// they change. An empty list is refused.
    #[cfg_attr(feature = "admin", schema(value_type = Option<Vec<String>>))]
    roles: Nullable<RoleSet>,
    /// `active` (the default) or `inactive`: an inactive client is refused on its next
    /// request.
    #[cfg_attr(feature = "admin", schema(value_type = Option<Status>))]
    status: Nullable<Status>,
    /// Origin patterns (`https://maps.example.com`, `https://*.example.com`); JavaScript
    /// clients only.
    #[cfg_attr(feature = "admin", schema(value_type = Option<Vec<String>>))]
    allowed_origins: Nullable<Vec<String>>,
    /// Whether requests with neither `Origin` nor `Referer` pass the origin rules.
    #[cfg_attr(feature = "admin", schema(value_type = Option<bool>))]
    allow_missing_origin: Nullable<bool>,
    /// IP rules (`203.0.113.7`, `203.0.113.*`, `203.0.113.0/24`, `2001:db8::/32`).
    #[cfg_attr(feature = "admin", schema(value_type = Option<Vec<String>>))]
    allowed_ips: Nullable<Vec<String>>,
    /// When the client stops working (RFC 3339).
    #[serde(deserialize_with = "nullable_time")]
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>, format = DateTime))]
    expires_at: Nullable<OffsetDateTime>,
    /// The APIs the client is limited to (`Geocoder`, `WorldStreets`, …); `null` is
    /// whatever its roles allow.
    #[cfg_attr(feature = "admin", schema(value_type = Option<Vec<String>>))]
    privileges: Nullable<Vec<String>>,
    /// Grants on items and datasets.
    #[serde(deserialize_with = "nullable_objects")]
    #[cfg_attr(feature = "admin", schema(value_type = Option<Vec<GrantDocument>>))]
    grants: Nullable<Vec<GrantDocument>>,
    /// A request-rate limit.
    #[serde(deserialize_with = "nullable_object")]
    #[cfg_attr(feature = "admin", schema(value_type = Option<RateLimitDocument>))]
    rate_limit: Nullable<RateLimitDocument>,
    /// Restrictions to run report-only (`origins`, `ips`, `privileges`, `grants`; `quota`
    /// only by the operator, never through the admin API).
    #[cfg_attr(feature = "admin", schema(value_type = Option<Vec<Restriction>>))]
    shadow: Nullable<Vec<Restriction>>,
}

/// A read-only field a document may send back: accepted with any value, and ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOnly;

impl<'de> Deserialize<'de> for ReadOnly {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| ReadOnly)
    }
}

impl NewClient {
    /// Refuses what an account holder may not ask for through the admin API: an `id` (the
    /// server assigns it), and anything [`ClientPatch::check_self_service`] refuses.
    pub fn check_self_service(&self) -> Result<(), FieldError> {
        if self.id.is_some() {
            return Err(FieldError::new(
                "id",
                "ids are assigned by the server: leave `id` out",
            ));
        }
        ClientPatch::from(self.clone()).check_self_service()
    }

    /// The new client's settings, checked as far as they can be without its account.
    pub fn to_spec(self) -> Result<ClientSpec, ConfigError> {
        let mut spec = ClientSpec::new(self.kind.unwrap_or_default(), String::new());
        spec.id = self.id.clone();
        ClientPatch::from(self).apply_to(&mut spec)?;
        Ok(spec)
    }
}

impl ClientPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ClientPatch::default()
    }

    /// Refuses a change to the read-only `id`, `account` or `kind` of `client`.
    pub fn check_read_only(&self, client: &Client) -> Result<(), FieldError> {
        let cannot_change =
            |field| FieldError::new(field, format!("a client's `{field}` cannot change"));
        if self.id.as_ref().is_some_and(|id| id != client.id()) {
            return Err(cannot_change("id"));
        }
        if self
            .account
            .as_ref()
            .is_some_and(|a| a != client.account_id())
        {
            return Err(cannot_change("account"));
        }
        if self.kind.is_some_and(|kind| kind != client.kind()) {
            return Err(cannot_change("kind"));
        }
        Ok(())
    }

    /// Refuses what an account holder may not set through the admin API, naming the field:
    /// a `shadow` list naming a restriction that is the operator's (`quota`; see
    /// [`Restriction::is_self_service`]), and more than [`MAX_SELF_SERVICE_ENTRIES`] entries
    /// in `allowed_origins`, `allowed_ips`, `privileges` or `grants`. The clients file and
    /// the command-line tool, the operator's, are not bound by it.
    pub fn check_self_service(&self) -> Result<(), FieldError> {
        if let Nullable::Value(shadow) = &self.shadow
            && let Some(r) = shadow.iter().find(|r| !r.is_self_service())
        {
            return Err(FieldError::new(
                "shadow",
                format!(
                    "`{r}` is the operator's to run report-only, never self-service; \
                     `shadow` may name origins, ips, privileges and grants"
                ),
            ));
        }
        let counts = [
            ("allowed_origins", nullable_len(&self.allowed_origins)),
            ("allowed_ips", nullable_len(&self.allowed_ips)),
            ("privileges", nullable_len(&self.privileges)),
            ("grants", nullable_len(&self.grants)),
        ];
        if let Some((field, _)) = counts
            .into_iter()
            .find(|(_, n)| *n > MAX_SELF_SERVICE_ENTRIES)
        {
            return Err(FieldError::new(
                field,
                format!("at most {MAX_SELF_SERVICE_ENTRIES} entries"),
            ));
        }
        Ok(())
    }

    /// Applies the settings given to `spec`, checked as far as they can be without the
    /// account (the store checks the result as a whole). The read-only fields are not
    /// applied: see [`check_read_only`](Self::check_read_only). An empty `roles` list and an
    /// origin pattern or IP rule longer than [`MAX_RULE_BYTES`] are refused.
    pub fn apply_to(self, spec: &mut ClientSpec) -> Result<(), ConfigError> {
        if matches!(&self.roles, Nullable::Value(roles) if roles.is_empty()) {
            return Err(empty_roles());
        }
        for (field, rules) in [
            ("allowed_origins", &self.allowed_origins),
            ("allowed_ips", &self.allowed_ips),
        ] {
            if let Nullable::Value(rules) = rules
                && let Some(long) = rules.iter().find(|r| r.len() > MAX_RULE_BYTES)
            {
                return Err(ConfigError::InvalidField {
                    field,
                    value: format!("{}…", long.chars().take(32).collect::<String>()),
                    reason: "an origin pattern or IP rule has at most 255 bytes",
                });
            }
        }
        let grants = self.grants.try_map(|grants| {
            grants
                .iter()
                .map(Grant::try_from)
                .collect::<Result<Vec<_>, _>>()
        })?;
        let rate_limit = self.rate_limit.try_map(RateLimit::try_from)?;
        match self.name {
            Nullable::Absent => {}
            Nullable::Null => {
                return Err(ConfigError::InvalidField {
                    field: "name",
                    value: "null".to_owned(),
                    reason: "a client always has a name",
                });
            }
            Nullable::Value(name) => spec.name = name,
        }
        self.roles.apply(&mut spec.roles);
        self.status.apply_or_default(&mut spec.status);
        self.allowed_origins
            .apply_or_default(&mut spec.allowed_origins);
        self.allow_missing_origin
            .apply_or_default(&mut spec.allow_missing_origin);
        self.allowed_ips.apply_or_default(&mut spec.allowed_ips);
        self.expires_at.apply(&mut spec.expires_at);
        self.privileges.apply(&mut spec.privileges);
        grants.apply_or_default(&mut spec.grants);
        rate_limit.apply(&mut spec.rate_limit);
        self.shadow
            .map(ShadowSet::from_iter)
            .apply_or_default(&mut spec.shadow);
        Ok(())
    }
}

/// How many entries a list field gives (none when absent or `null`).
fn nullable_len<T>(list: &Nullable<Vec<T>>) -> usize {
    match list {
        Nullable::Value(list) => list.len(),
        Nullable::Absent | Nullable::Null => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{CredentialDigests, KeyDigest, Role};
    use crate::document::field::read;

    fn account() -> Account {
        Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
        )
        .unwrap()
    }

    fn client(spec: &ClientSpec) -> Client {
        Client::build(
            ClientId::new("web").unwrap(),
            spec,
            &account(),
            CredentialDigests::new(KeyDigest::of("k")),
        )
        .unwrap()
    }

    #[test]
    fn a_document_read_back_as_a_patch_gives_the_same_client() {
        let spec = ClientSpec::javascript("Web")
            .allowed_origins(["https://*.acme.test"])
            .grants([Grant::new("roads", [Action::Read]).unwrap()])
            .rate_limit(Some(RateLimit::new(5, 10).unwrap()))
            .expires_at(Some(OffsetDateTime::UNIX_EPOCH))
            .shadow([Restriction::Origins]);
        let c = client(&spec);
        let doc = ClientDocument::stored(&c);
        assert!(doc.roles.is_none(), "follows the account's roles");
        let patch: ClientPatch = read(&serde_json::to_value(&doc).unwrap()).unwrap();
        patch.check_read_only(&c).unwrap();
        let mut back = ClientSpec::javascript("");
        back.id = spec.id.clone();
        patch.apply_to(&mut back).unwrap();
        assert_eq!(back, spec);
        assert_eq!(ClientDocument::stored(&client(&back)), doc);
    }

    #[test]
    fn null_resets_a_setting_and_absent_leaves_it() {
        let mut spec = ClientSpec::javascript("W")
            .rate_limit(Some(RateLimit::new(1, 1).unwrap()))
            .allowed_ips(["203.0.113.7"]);
        let patch: ClientPatch = read(&serde_json::json!({"name": "X"})).unwrap();
        patch.apply_to(&mut spec).unwrap();
        assert!(spec.rate_limit.is_some() && !spec.allowed_ips.is_empty());
        let patch: ClientPatch =
            read(&serde_json::json!({"rate_limit": null, "allowed_ips": null})).unwrap();
        patch.apply_to(&mut spec).unwrap();
        assert!(spec.rate_limit.is_none() && spec.allowed_ips.is_empty());
        assert_eq!(spec.name, "X");
    }

    #[test]
    fn a_new_client_needs_a_name_and_takes_no_account_or_credential() {
        for (body, field) in [
            (serde_json::json!({}), "name"),
            (
                serde_json::json!({"name": "W", "account": "acme"}),
                "account",
            ),
            (
                serde_json::json!({"name": "W", "api_key": "gis_apikey_x"}),
                "api_key",
            ),
            (serde_json::json!({"name": "W", "kind": "Browser"}), "kind"),
            (
                serde_json::json!({"name": "W", "rate_limit": [5, 10]}),
                "rate_limit",
            ),
            (
                serde_json::json!({"name": "W", "grants": [["a", ["read"]]]}),
                "grants",
            ),
        ] {
            let err = read::<NewClient>(&body).expect_err("refused");
            assert_eq!(err.field(), field, "{body}: {err}");
        }
        let new: NewClient =
            read(&serde_json::json!({"name": "W", "rate_limit": {"per_second": 7}})).unwrap();
        let spec = new.to_spec().unwrap();
        assert_eq!(spec.rate_limit, Some(RateLimit::new(7, 7).unwrap()));
        assert_eq!(spec.kind, ClientKind::JavaScript);
    }

    #[test]
    fn an_empty_role_list_and_an_overlong_rule_are_refused_by_every_front() {
        let refused = |body: serde_json::Value| {
            let patch: ClientPatch = read(&body).unwrap();
            match patch.apply_to(&mut ClientSpec::javascript("W")) {
                Err(ConfigError::InvalidField { field, .. }) => field,
                other => panic!("{body}: {other:?}"),
            }
        };
        assert_eq!(refused(serde_json::json!({"roles": []})), "roles");
        // A valid origin (labels of 60, a host of 248 bytes), but a rule of 256 bytes.
        let long = format!("https://{}.test", vec!["a".repeat(60); 4].join("."));
        assert_eq!(long.len(), MAX_RULE_BYTES + 1);
        assert!(crate::restrict::OriginRules::compile(std::slice::from_ref(&long)).is_ok());
        assert_eq!(
            refused(serde_json::json!({"allowed_origins": [long]})),
            "allowed_origins"
        );
        let ip = format!("203.0.113.7{}", " ".repeat(MAX_RULE_BYTES));
        assert_eq!(
            refused(serde_json::json!({"allowed_ips": [ip]})),
            "allowed_ips"
        );
        // `null` follows the account's roles, as leaving `roles` out does.
        let mut spec = ClientSpec::javascript("W").roles(RoleSet::from_iter([Role::USER]));
        let patch: ClientPatch = read(&serde_json::json!({"roles": null})).unwrap();
        patch.apply_to(&mut spec).unwrap();
        assert_eq!(spec.roles, None);
    }

    #[test]
    fn self_service_refuses_an_id_the_operators_restrictions_and_long_lists() {
        let new = |body: serde_json::Value| read::<NewClient>(&body).unwrap().check_self_service();
        assert_eq!(
            new(serde_json::json!({"name": "W", "id": "mine"}))
                .unwrap_err()
                .field(),
            "id"
        );
        assert_eq!(
            new(serde_json::json!({"name": "W", "shadow": ["origins", "quota"]}))
                .unwrap_err()
                .field(),
            "shadow"
        );
        assert!(new(serde_json::json!({"name": "W", "shadow": ["origins", "ips", "privileges", "grants"]})).is_ok());
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
                .collect::<Vec<_>>()
        };
        let grants = |n: usize| {
            (0..n)
                .map(|i| serde_json::json!({"item": format!("i{i}"), "actions": ["read"]}))
                .collect::<Vec<_>>()
        };
        for field in ["allowed_origins", "allowed_ips", "privileges"] {
            let patch = |n| {
                read::<ClientPatch>(&serde_json::json!({ field: many(n) }))
                    .unwrap()
                    .check_self_service()
            };
            assert!(patch(MAX_SELF_SERVICE_ENTRIES).is_ok());
            assert_eq!(
                patch(MAX_SELF_SERVICE_ENTRIES + 1).unwrap_err().field(),
                field
            );
        }
        let patch = |n| {
            read::<ClientPatch>(&serde_json::json!({"grants": grants(n)}))
                .unwrap()
                .check_self_service()
        };
        assert!(patch(MAX_SELF_SERVICE_ENTRIES).is_ok());
        assert_eq!(
            patch(MAX_SELF_SERVICE_ENTRIES + 1).unwrap_err().field(),
            "grants"
        );
        // The operator's documents are not bound by it: a file may shadow the quota.
        let from_file: ClientPatch = read(&serde_json::json!({"shadow": ["quota"]})).unwrap();
        let mut spec = ClientSpec::javascript("W");
        from_file.apply_to(&mut spec).unwrap();
        assert!(spec.shadow.contains(Restriction::Quota));
    }

    #[test]
    fn a_patch_refuses_changes_to_read_only_fields() {
        let c = client(&ClientSpec::javascript("Web"));
        for (body, field) in [
            (serde_json::json!({"id": "other"}), "id"),
            (serde_json::json!({"account": "globex"}), "account"),
            (serde_json::json!({"kind": "NativeConfidential"}), "kind"),
        ] {
            let patch: ClientPatch = read(&body).unwrap();
            assert_eq!(patch.check_read_only(&c).unwrap_err().field(), field);
        }
        let same: ClientPatch =
            read(&serde_json::json!({"id": "web", "kind": "JavaScript"})).unwrap();
        assert!(same.check_read_only(&c).is_ok());
    }

    #[test]
    fn the_etag_changes_with_any_visible_setting_and_with_a_new_credential() {
        let a = account();
        let base = client(&ClientSpec::javascript("Web"));
        let renamed = client(&ClientSpec::javascript("Web 2"));
        assert_eq!(
            etag(&base, &a),
            etag(&client(&ClientSpec::javascript("Web")), &a)
        );
        assert_ne!(etag(&base, &a), etag(&renamed, &a));
        let spec = base.to_spec();
        let rotated = base
            .rebuilt(&spec, &a, 100)
            .unwrap()
            .with_credentials(base.credentials().rotated(KeyDigest::of("k2"), None));
        assert_ne!(etag(&base, &a), etag(&rotated, &a));
    }
}
