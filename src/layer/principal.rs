//! The authenticated caller, as handlers see it.
//!
//! ```
//! use gis_auth::Principal;
//!
//! // Handlers behind the layer read the caller from the request extensions.
//! fn caller(req: &http::Request<()>) -> Option<&str> {
//!     req.extensions().get::<Principal>().map(|p| p.account_id().as_str())
//! }
//! assert_eq!(caller(&http::Request::new(())), None);
//! ```

use std::sync::Arc;

use crate::client::{AccountId, Client, ClientId, ClientKind, Grant, Privileges, RoleSet};

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// The API key query parameter.
    ApiKey,
    /// An `Authorization: Bearer` access token.
    BearerToken,
}

/// The caller of an authorised request, inserted into the request's extensions.
///
/// ```
/// # use gis_auth::layer::Principal;
/// async fn handler(req: http::Request<()>) -> String {
///     let who = req.extensions().get::<Principal>().expect("behind AuthLayer");
///     format!("{} of {}", who.client_id(), who.account_id())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub(crate) client_id: ClientId,
    pub(crate) account_id: AccountId,
    pub(crate) kind: ClientKind,
    pub(crate) roles: RoleSet,
    pub(crate) api: Arc<str>,
    pub(crate) source: CredentialSource,
    pub(crate) item: Option<String>,
    pub(crate) client: Arc<Client>,
}

impl Principal {
    /// The client's id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The owning account's id.
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }

    /// The client's kind.
    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    /// The roles in force for this request.
    pub fn roles(&self) -> &RoleSet {
        &self.roles
    }

    /// The API the request is for.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// How the caller authenticated.
    pub fn source(&self) -> CredentialSource {
        self.source
    }

    /// The item the request is for, on routes that declare one (granted, or the grants
    /// rule runs report-only).
    pub fn item(&self) -> Option<&str> {
        self.item.as_deref()
    }

    /// The client's grants on items and datasets.
    pub fn grants(&self) -> &[Grant] {
        self.client.grants()
    }

    /// The APIs the client is limited to, if any.
    pub fn privileges(&self) -> Option<&Privileges> {
        self.client.privileges()
    }
}
