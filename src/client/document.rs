//! [`ClientDocument`]: a client as JSON, with the field names of the clients file, and its
//! [`etag`].
//!
//! The admin API answers with it, the command-line tool prints it, and the file store
//! writes it back; the ETag is a digest of it (and of the credential's generation), so any
//! change to what a caller can see, or a regenerated credential, gives a new ETag.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientDocument, ClientId, ClientSpec,
//!     Credentials, KeyDigest, Role, RoleSet};
//!
//! let account = Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?;
//! let client = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web map"),
//!     &account, Credentials::new(KeyDigest::of("gis_apikey_example")))?;
//! let doc = ClientDocument::of(&client, &account);
//! // An all-roles client shows the roles it holds now, explicitly.
//! assert_eq!(doc.roles.as_ref().map(|r| r.len()), Some(2));
//! let json = serde_json::to_value(&doc).unwrap();
//! assert_eq!(json["kind"], "JavaScript");
//! assert!(json.get("api_key").is_none(), "never a credential");
//! assert!(gis_auth::client::etag(&client, &account).starts_with('"'));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::access::{Action, Grant, RateLimit};
use super::{Account, AccountId, Client, ClientId, ClientKind, ClientSpec, RoleSet, Status};
use crate::error::ConfigError;

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

/// A client as JSON, in the clients file's field names. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The roles the client holds: explicit in the admin API's answers; `None` in a clients
    /// file for a client that follows its account's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    pub expires_at: Option<OffsetDateTime>,
    /// The APIs the client is limited to; `None` is whatever its roles allow.
    pub privileges: Option<Vec<String>>,
    /// Grants on items and datasets.
    pub grants: Vec<GrantDocument>,
    /// A request-rate limit.
    pub rate_limit: Option<RateLimit>,
    /// The restrictions run report-only.
    pub shadow: Vec<String>,
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
        let spec = client.to_spec();
        ClientDocument {
            id: client.id().clone(),
            account: client.account_id().clone(),
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
            rate_limit: spec.rate_limit,
            shadow: spec.shadow.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }

    /// The settings as a [`ClientSpec`], validated as far as they can be without the
    /// account (grants and report-only names).
    pub fn to_spec(&self) -> Result<ClientSpec, ConfigError> {
        Ok(ClientSpec {
            id: Some(self.id.clone()),
            name: self.name.clone(),
            kind: self.kind,
            roles: self.roles.clone(),
            status: self.status,
            allowed_origins: self.allowed_origins.clone(),
            allow_missing_origin: self.allow_missing_origin,
            allowed_ips: self.allowed_ips.clone(),
            expires_at: self.expires_at,
            privileges: self.privileges.clone(),
            grants: self
                .grants
                .iter()
                .map(Grant::try_from)
                .collect::<Result<_, _>>()?,
            rate_limit: self.rate_limit,
            shadow: super::ShadowSet::parse(&self.shadow)?,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Credentials, KeyDigest, Role};

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
            Credentials::new(KeyDigest::of("k")),
        )
        .unwrap()
    }

    #[test]
    fn a_document_round_trips_through_json_and_back_to_the_same_client() {
        let spec = ClientSpec::javascript("Web")
            .allowed_origins(["https://*.acme.test"])
            .grants([Grant::new("roads", [Action::Read]).unwrap()])
            .rate_limit(Some(RateLimit::new(5, 10).unwrap()))
            .shadow([crate::client::Restriction::Origins]);
        let c = client(&spec);
        let doc = ClientDocument::stored(&c);
        let back: ClientDocument =
            serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(back, doc);
        let rebuilt = client(&back.to_spec().unwrap());
        assert_eq!(ClientDocument::stored(&rebuilt), doc);
        assert!(doc.roles.is_none(), "follows the account's roles");
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
