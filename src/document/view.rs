//! [`ClientView`] and [`CreatedClientView`]: a client as the admin API and the command-line
//! tool show it, with its ETag, and once with its new credential.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     CredentialKind, PlainCredential, Role, RoleSet};
//! use gis_auth::document::CreatedClientView;
//!
//! let account = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::USER]))?;
//! let key = PlainCredential::generate(CredentialKind::ApiKey)?;
//! let client = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web map"),
//!     &account, CredentialDigests::new(key.digest()))?;
//! let view = CreatedClientView::of(&client, &account, &key);
//! let json = serde_json::to_value(&view)?;
//! assert_eq!(json["api_key"], key.expose());
//! assert_eq!(json["etag"], view.view.etag);
//! assert!(json["last_used_at"].is_null(), "a new client was never used");
//! assert!(!format!("{view:?}").contains(key.expose()), "never in Debug");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use super::{ClientDocument, etag};
use crate::client::{Account, Client, ClientKind, PlainCredential};

/// A client as the admin API shows it: the clients file's fields and its ETag.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ClientView {
    /// The client's settings (`roles` always explicit).
    #[serde(flatten)]
    pub client: ClientDocument,
    /// The ETag of this representation (also the `ETag` header). It covers the settings,
    /// not `last_used_at`: using a client does not change it.
    pub etag: String,
    /// When the client was last used, to the minute (RFC 3339); `null` when never, or
    /// when the usage counter cannot tell (see
    /// [`UsageCounter::last_used`](crate::limits::UsageCounter::last_used)).
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<OffsetDateTime>,
}

impl ClientView {
    /// The client as `account` shows it, with no last use known.
    pub fn of(client: &Client, account: &Account) -> ClientView {
        ClientView {
            client: ClientDocument::of(client, account),
            etag: etag(client, account),
            last_used_at: None,
        }
    }

    /// The same view, with the client's last use (`None` for never or not known).
    #[must_use]
    pub fn last_used(mut self, at: Option<OffsetDateTime>) -> ClientView {
        self.last_used_at = at;
        self
    }
}

/// A client just created or regenerated, with its credential: shown this once, never
/// again. `Debug` does not show the credential.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct CreatedClientView {
    /// The client.
    #[serde(flatten)]
    pub view: ClientView,
    /// A JavaScript client's API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// A NativeConfidential client's id, for the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A NativeConfidential client's secret, for the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl CreatedClientView {
    /// The client with its credential, shown once.
    pub fn of(
        client: &Client,
        account: &Account,
        credential: &PlainCredential,
    ) -> CreatedClientView {
        let secret = credential.expose().to_owned();
        let (api_key, client_id, client_secret) = match client.kind() {
            ClientKind::JavaScript => (Some(secret), None, None),
            ClientKind::NativeConfidential => (None, Some(client.id().to_string()), Some(secret)),
        };
        CreatedClientView {
            view: ClientView::of(client, account),
            api_key,
            client_id,
            client_secret,
        }
    }
}

impl fmt::Debug for CreatedClientView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedClientView")
            .field("view", &self.view)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}
