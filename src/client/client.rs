//! Clients: what they are allowed, and how they are described before they are stored.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     KeyDigest, Role, RoleSet};
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::USER]))?;
//! let spec = ClientSpec::native("Batch geocoder").allowed_ips(["203.0.113.0/24"]);
//! let client = Client::build(ClientId::new("batch")?, &spec, &acme,
//!     CredentialDigests::new(KeyDigest::of("…")))?;
//! assert!(client.ips().allows("203.0.113.7".parse().unwrap()));
//! // origins are for JavaScript clients only
//! let spec = ClientSpec::native("Batch geocoder").allowed_origins(["https://acme.test"]);
//! assert!(Client::build(ClientId::new("batch")?, &spec, &acme,
//!     CredentialDigests::new(KeyDigest::of("…"))).is_err());
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use time::OffsetDateTime;

use super::access::{
    Action, DEFAULT_MAX_GRANTS, Grant, Grants, Privileges, RateLimit, Restriction, ShadowSet,
};
use super::account::{Account, AccountId, ClientId, Status, validate_name};
use super::key::KeyDigest;
use super::role::RoleSet;
use crate::error::ConfigError;
use crate::restrict::{IpRules, OriginRules};

/// The two kinds of client.
///
/// Its text (`JavaScript`, `NativeConfidential`) is written once, in [`ClientKind::as_str`];
/// `Display`, `FromStr` and serde go through it (reading also takes `javascript` and
/// `native_confidential`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientKind {
    /// A server-side client with a client id and secret, exchanged for bearer tokens; full
    /// access up to its roles.
    NativeConfidential,
    /// A browser client with one public API key in the query string; plugin APIs only.
    #[default]
    JavaScript,
}

impl ClientKind {
    /// Both kinds.
    pub const ALL: [ClientKind; 2] = [ClientKind::NativeConfidential, ClientKind::JavaScript];

    /// The name, as in the clients file: `JavaScript` or `NativeConfidential`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::NativeConfidential => "NativeConfidential",
            ClientKind::JavaScript => "JavaScript",
        }
    }

    /// The other spelling `FromStr` accepts.
    fn snake_case(self) -> &'static str {
        match self {
            ClientKind::NativeConfidential => "native_confidential",
            ClientKind::JavaScript => "javascript",
        }
    }
}

super::text_enum!(
    ClientKind,
    "kind",
    "it is `JavaScript` or `NativeConfidential`",
    also snake_case
);

/// The credential digests a client holds: the current one and, during a rotation's grace
/// period, the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialDigests {
    current: KeyDigest,
    previous: Option<(KeyDigest, OffsetDateTime)>,
    generation: u64,
}

impl CredentialDigests {
    /// Credentials with one digest, at generation 0.
    pub fn new(current: KeyDigest) -> Self {
        Self {
            current,
            previous: None,
            generation: 0,
        }
    }

    /// Credentials as a store kept them: the current digest, the previous one with the end
    /// of its grace period, and the generation (how many times it was regenerated).
    pub fn restored(
        current: KeyDigest,
        previous: Option<(KeyDigest, OffsetDateTime)>,
        generation: u64,
    ) -> Self {
        Self {
            current,
            previous,
            generation,
        }
    }

    /// The current digest.
    pub fn current(&self) -> &KeyDigest {
        &self.current
    }

    /// The previous digest and when it stops working, during a grace period.
    pub fn previous(&self) -> Option<&(KeyDigest, OffsetDateTime)> {
        self.previous.as_ref()
    }

    /// How many times the credential was regenerated.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The credentials after a regeneration: without grace, every older digest stops at once;
    /// with grace, the current one keeps working until `grace_until`.
    pub(crate) fn rotated(&self, new: KeyDigest, grace_until: Option<OffsetDateTime>) -> Self {
        Self {
            current: new,
            previous: grace_until.map(|until| (self.current, until)),
            generation: self.generation.saturating_add(1),
        }
    }

    /// The credentials with the previous digest retired before its grace ended: it, and
    /// every token minted with it, stops at once.
    pub(crate) fn without_previous(&self) -> Self {
        Self {
            previous: None,
            ..self.clone()
        }
    }

    /// Every digest that may still be live (the current one first).
    pub fn digests(&self) -> impl Iterator<Item = &KeyDigest> {
        std::iter::once(&self.current).chain(self.previous.iter().map(|(d, _)| d))
    }

    /// Whether something minted at credential `generation` (an access token) is still live
    /// at `now`: the current generation always, the one before only during its grace.
    pub fn generation_live(&self, generation: u64, now: OffsetDateTime) -> bool {
        generation == self.generation
            || (generation.checked_add(1) == Some(self.generation)
                && self
                    .previous
                    .as_ref()
                    .is_some_and(|(_, until)| now < *until))
    }

    /// The digest of credential `generation`, if the client still holds it (the current one,
    /// or the previous one whether or not its grace has ended; see
    /// [`CredentialDigests::generation_live`]).
    pub fn of_generation(&self, generation: u64) -> Option<&KeyDigest> {
        if generation == self.generation {
            Some(&self.current)
        } else if generation.checked_add(1) == Some(self.generation) {
            self.previous.as_ref().map(|(d, _)| d)
        } else {
            None
        }
    }

    /// Whether `digest` is live at `now`, in constant time per candidate.
    pub fn accepts(&self, digest: &KeyDigest, now: OffsetDateTime) -> bool {
        let current = self.current.ct_eq(digest);
        let previous = self
            .previous
            .as_ref()
            .is_some_and(|(d, until)| d.ct_eq(digest) && now < *until);
        current | previous
    }
}

/// A description of a client, validated when a store creates or updates it.
///
/// ```
/// use gis_auth::client::{ClientSpec, Role, RoleSet};
///
/// let spec = ClientSpec::javascript("Web map")
///     .allowed_origins(["https://*.example.com"])
///     .roles(RoleSet::from_iter([Role::EVALUATOR]));
/// assert_eq!(spec.allowed_origins.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSpec {
    /// The id; generated when absent.
    pub id: Option<ClientId>,
    /// A display name.
    pub name: String,
    /// The kind.
    pub kind: ClientKind,
    /// The granted roles; `None` means all of the account's roles. An empty set is
    /// refused: it never widens to the account's roles.
    pub roles: Option<RoleSet>,
    /// Active or inactive.
    pub status: Status,
    /// Allowed origin patterns (JavaScript clients only); empty is unrestricted.
    pub allowed_origins: Vec<String>,
    /// Whether a request with neither `Origin` nor `Referer` passes a client with origin
    /// rules (for server-side callers).
    pub allow_missing_origin: bool,
    /// Allowed IP rules; empty is unrestricted.
    pub allowed_ips: Vec<String>,
    /// When the client stops working.
    pub expires_at: Option<OffsetDateTime>,
    /// The APIs (by name) the client is limited to; `None` is whatever its roles allow.
    pub privileges: Option<Vec<String>>,
    /// Grants on items and datasets, for routes that declare an item.
    pub grants: Vec<Grant>,
    /// A request-rate limit.
    pub rate_limit: Option<RateLimit>,
    /// The restrictions run report-only.
    pub shadow: ShadowSet,
}

impl ClientSpec {
    /// A client of `kind` named `name`, with every other setting at its default.
    pub fn new(kind: ClientKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            ..Self::default()
        }
    }

    /// A JavaScript client.
    pub fn javascript(name: impl Into<String>) -> Self {
        Self::new(ClientKind::JavaScript, name)
    }

    /// A NativeConfidential client.
    pub fn native(name: impl Into<String>) -> Self {
        Self::new(ClientKind::NativeConfidential, name)
    }

    /// With this id.
    #[must_use]
    pub fn id(mut self, id: ClientId) -> Self {
        self.id = Some(id);
        self
    }

    /// With these granted roles.
    #[must_use]
    pub fn roles(mut self, roles: RoleSet) -> Self {
        self.roles = Some(roles);
        self
    }

    /// With this status.
    #[must_use]
    pub fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// With these allowed origin patterns.
    #[must_use]
    pub fn allowed_origins<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Whether requests without `Origin` or `Referer` pass the origin rules.
    #[must_use]
    pub fn allow_missing_origin(mut self, yes: bool) -> Self {
        self.allow_missing_origin = yes;
        self
    }

    /// With these IP rules.
    #[must_use]
    pub fn allowed_ips<I, S>(mut self, rules: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_ips = rules.into_iter().map(Into::into).collect();
        self
    }

    /// Expiring at this time.
    #[must_use]
    pub fn expires_at(mut self, at: Option<OffsetDateTime>) -> Self {
        self.expires_at = at;
        self
    }

    /// Limited to these APIs, by name.
    #[must_use]
    pub fn privileges<I, S>(mut self, apis: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.privileges = Some(apis.into_iter().map(Into::into).collect());
        self
    }

    /// With these grants.
    #[must_use]
    pub fn grants(mut self, grants: impl IntoIterator<Item = Grant>) -> Self {
        self.grants = grants.into_iter().collect();
        self
    }

    /// With this request-rate limit.
    #[must_use]
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// With these restrictions report-only.
    #[must_use]
    pub fn shadow(mut self, restrictions: impl IntoIterator<Item = Restriction>) -> Self {
        self.shadow = restrictions.into_iter().collect();
        self
    }
}

/// The refusal of an empty role list: it would grant nothing, and must never be read as
/// "all of the account's roles", which is said by leaving `roles` out.
pub(crate) fn empty_roles() -> ConfigError {
    ConfigError::InvalidField {
        field: "roles",
        value: "[]".to_owned(),
        reason: "an empty role list grants nothing; leave `roles` out (or `null` in a \
                 change) to follow the account's roles",
    }
}

/// The rules few clients carry, kept out of line so a plain client stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Extras {
    privileges: Option<Privileges>,
    grants: Grants,
    rate_limit: Option<RateLimit>,
    shadow: ShadowSet,
}

/// A stored client, with its rules compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    id: ClientId,
    account: AccountId,
    name: String,
    kind: ClientKind,
    roles: RoleSet,
    status: Status,
    origins: OriginRules,
    allow_missing_origin: bool,
    ips: IpRules,
    expires_at: Option<OffsetDateTime>,
    credentials: CredentialDigests,
    all_roles: bool,
    extras: Option<Box<Extras>>,
}

impl Client {
    /// Validates `spec` against `account` and compiles its rules.
    pub fn build(
        id: ClientId,
        spec: &ClientSpec,
        account: &Account,
        credentials: CredentialDigests,
    ) -> Result<Client, ConfigError> {
        Self::build_with(
            id,
            spec,
            account,
            credentials,
            &RoleSet::new(),
            DEFAULT_MAX_GRANTS,
        )
    }

    /// As [`Client::build`], allowing at most `max_grants` grants.
    pub fn build_limited(
        id: ClientId,
        spec: &ClientSpec,
        account: &Account,
        credentials: CredentialDigests,
        max_grants: usize,
    ) -> Result<Client, ConfigError> {
        Self::build_with(id, spec, account, credentials, &RoleSet::new(), max_grants)
    }

    /// This client changed to `spec`: validated as at creation, except that roles it already
    /// holds stay grantable after its account lost them (they stay without effect until the
    /// account gets them back), so a client remains manageable.
    pub fn rebuilt(
        &self,
        spec: &ClientSpec,
        account: &Account,
        max_grants: usize,
    ) -> Result<Client, ConfigError> {
        let held = if self.all_roles {
            RoleSet::new()
        } else {
            self.roles.clone()
        };
        Self::build_with(
            self.id.clone(),
            spec,
            account,
            self.credentials.clone(),
            &held,
            max_grants,
        )
    }

    fn build_with(
        id: ClientId,
        spec: &ClientSpec,
        account: &Account,
        credentials: CredentialDigests,
        already_granted: &RoleSet,
        max_grants: usize,
    ) -> Result<Client, ConfigError> {
        validate_name(&spec.name)?;
        let (roles, all_roles) = match &spec.roles {
            Some(roles) if roles.is_empty() => return Err(empty_roles()),
            Some(roles) => {
                if let Some(missing) = roles
                    .iter()
                    .find(|r| !account.roles.contains(r) && !already_granted.contains(r))
                {
                    return Err(ConfigError::RoleNotHeld {
                        client: id.to_string(),
                        role: missing.to_string(),
                        account: account.id.to_string(),
                    });
                }
                (roles.clone(), false)
            }
            None => (account.roles.clone(), true),
        };
        // The operator's item ceiling: never report-only, never grandfathered.
        if let Some(item) = account
            .plan
            .item_outside(spec.grants.iter().map(Grant::item))
        {
            return Err(ConfigError::ItemNotInPlan {
                client: id.to_string(),
                item: item.to_owned(),
                account: account.id.to_string(),
            });
        }
        if spec.kind == ClientKind::NativeConfidential && !spec.allowed_origins.is_empty() {
            return Err(ConfigError::OriginsOnConfidentialClient {
                client: id.to_string(),
            });
        }
        let origins = OriginRules::compile(&spec.allowed_origins)?;
        let ips = IpRules::compile(&spec.allowed_ips)?;
        let extras = Extras {
            privileges: spec
                .privileges
                .as_ref()
                .map(|names| Privileges::new(names.iter().cloned()))
                .transpose()?,
            grants: Grants::compile(spec.grants.clone(), max_grants)?,
            rate_limit: spec.rate_limit,
            shadow: spec.shadow,
        };
        Ok(Client {
            id,
            account: account.id.clone(),
            name: spec.name.clone(),
            kind: spec.kind,
            roles,
            status: spec.status,
            origins,
            allow_missing_origin: spec.allow_missing_origin,
            ips,
            expires_at: spec.expires_at,
            credentials,
            all_roles,
            extras: (extras != Extras::default()).then(|| Box::new(extras)),
        })
    }

    /// The description this client was built from, its rules in canonical form; `roles` is
    /// `None` for a client granted all of its account's roles.
    pub fn to_spec(&self) -> ClientSpec {
        ClientSpec {
            id: Some(self.id.clone()),
            name: self.name.clone(),
            kind: self.kind,
            roles: (!self.all_roles).then(|| self.roles.clone()),
            status: self.status,
            allowed_origins: self
                .origins
                .patterns()
                .iter()
                .map(|p| p.to_string())
                .collect(),
            allow_missing_origin: self.allow_missing_origin,
            allowed_ips: self.ips.rules().iter().map(|r| r.to_string()).collect(),
            expires_at: self.expires_at,
            privileges: self
                .privileges()
                .map(|p| p.names().map(str::to_owned).collect()),
            grants: self.grants().to_vec(),
            rate_limit: self.rate_limit(),
            shadow: self.shadow(),
        }
    }

    /// The id (the OAuth `client_id` of a NativeConfidential client).
    pub fn id(&self) -> &ClientId {
        &self.id
    }

    /// The owning account's id.
    pub fn account_id(&self) -> &AccountId {
        &self.account
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind.
    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    /// The granted roles, as stored; for a client granted all of its account's roles, the
    /// account's roles when the client was last built (see [`Client::effective_roles`]).
    pub fn roles(&self) -> &RoleSet {
        &self.roles
    }

    /// Whether the client was granted all of its account's roles (no explicit list), so it
    /// follows the account's roles as they change.
    pub fn grants_all_roles(&self) -> bool {
        self.all_roles
    }

    /// The roles in force: all of the account's current roles for a client granted all of
    /// them, otherwise those granted and still held by the account.
    pub fn effective_roles(&self, account: &Account) -> RoleSet {
        if self.all_roles {
            account.roles.clone()
        } else {
            self.roles.intersection(&account.roles)
        }
    }

    /// Active or inactive.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The compiled allowed origins.
    pub fn origins(&self) -> &OriginRules {
        &self.origins
    }

    /// Whether requests carrying neither `Origin` nor `Referer` pass the origin rules.
    pub fn allows_missing_origin(&self) -> bool {
        self.allow_missing_origin
    }

    /// The compiled IP rules.
    pub fn ips(&self) -> &IpRules {
        &self.ips
    }

    /// When the client stops working, if ever.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }

    /// Whether the client has expired at `now` (expired at the instant itself).
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The APIs the client is limited to, if any.
    pub fn privileges(&self) -> Option<&Privileges> {
        self.extras.as_ref().and_then(|e| e.privileges.as_ref())
    }

    /// Its grants on items and datasets.
    pub fn grants(&self) -> &[Grant] {
        self.extras.as_ref().map_or(&[], |e| e.grants.as_slice())
    }

    /// Whether `action` on `item` is granted.
    pub fn allows_item(&self, item: &str, action: Action) -> bool {
        self.extras
            .as_ref()
            .is_some_and(|e| e.grants.allows(item, action))
    }

    /// Its request-rate limit, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.extras.as_ref().and_then(|e| e.rate_limit)
    }

    /// The restrictions it runs report-only.
    pub fn shadow(&self) -> ShadowSet {
        self.extras.as_ref().map_or(ShadowSet::NONE, |e| e.shadow)
    }

    /// The credential digests.
    pub fn credentials(&self) -> &CredentialDigests {
        &self.credentials
    }

    pub(crate) fn with_credentials(&self, credentials: CredentialDigests) -> Client {
        Client {
            credentials,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Role;

    fn account() -> Account {
        Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
        )
        .unwrap()
    }

    fn build(spec: ClientSpec) -> Result<Client, ConfigError> {
        Client::build(
            ClientId::new("c1").unwrap(),
            &spec,
            &account(),
            CredentialDigests::new(KeyDigest::of("k")),
        )
    }

    #[test]
    fn no_roles_means_all_of_the_accounts_but_an_empty_list_is_refused() {
        let c = build(ClientSpec::javascript("web")).unwrap();
        assert_eq!(c.roles(), &account().roles);
        let err = build(ClientSpec::javascript("web").roles(RoleSet::new())).unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidField { field: "roles", .. }),
            "{err}"
        );
        let c =
            build(ClientSpec::javascript("web").roles(RoleSet::from_iter([Role::USER]))).unwrap();
        let err = c
            .rebuilt(&c.to_spec().roles(RoleSet::new()), &account(), 100)
            .unwrap_err();
        assert!(err.to_string().contains("roles"), "{err}");
    }

    #[test]
    fn a_role_the_account_lacks_is_refused_by_name() {
        let err =
            build(ClientSpec::javascript("web").roles(RoleSet::from_iter([Role::SUBSCRIBER])))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "client `c1` cannot be granted role `Subscriber`: account `acme` does not hold it"
        );
    }

    #[test]
    fn origins_on_a_confidential_client_are_refused() {
        let err = build(ClientSpec::native("srv").allowed_origins(["example.com"])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::OriginsOnConfidentialClient { .. }
        ));
        assert!(build(ClientSpec::native("srv").allowed_ips(["203.0.113.0/24"])).is_ok());
    }

    #[test]
    fn bad_rules_name_the_offending_value() {
        let err = build(ClientSpec::javascript("web").allowed_origins(["*.com"])).unwrap_err();
        assert!(err.to_string().contains("`*.com`"));
        let err = build(ClientSpec::javascript("web").allowed_ips(["300.0.0.1"])).unwrap_err();
        assert!(err.to_string().contains("`300.0.0.1`"));
    }

    #[test]
    fn effective_roles_follow_the_account() {
        let c = build(ClientSpec::javascript("web")).unwrap();
        let mut a = account();
        a.roles = RoleSet::from_iter([Role::EVALUATOR]);
        assert_eq!(c.effective_roles(&a), RoleSet::from_iter([Role::EVALUATOR]));
    }

    #[test]
    fn a_client_granted_all_roles_follows_the_account_both_ways() {
        let c = build(ClientSpec::javascript("web")).unwrap();
        assert!(c.grants_all_roles());
        assert_eq!(c.to_spec().roles, None);
        let mut a = account();
        a.roles = RoleSet::from_iter([Role::USER, Role::SUBSCRIBER]);
        assert_eq!(c.effective_roles(&a), a.roles);
    }

    #[test]
    fn a_rebuilt_client_keeps_roles_its_account_lost_but_cannot_gain_new_ones() {
        let c = build(ClientSpec::javascript("web").roles(RoleSet::from_iter([Role::EVALUATOR])))
            .unwrap();
        let mut a = account();
        a.roles = RoleSet::from_iter([Role::USER]);
        let renamed = ClientSpec {
            name: "renamed".into(),
            ..c.to_spec()
        };
        let next = c.rebuilt(&renamed, &a, DEFAULT_MAX_GRANTS).unwrap();
        assert_eq!(next.roles(), &RoleSet::from_iter([Role::EVALUATOR]));
        assert!(next.effective_roles(&a).is_empty());
        let widened = renamed.roles(RoleSet::from_iter([Role::EVALUATOR, Role::SUBSCRIBER]));
        assert!(matches!(
            c.rebuilt(&widened, &a, DEFAULT_MAX_GRANTS),
            Err(ConfigError::RoleNotHeld { .. })
        ));
    }

    #[test]
    fn a_grant_outside_the_accounts_items_is_refused_at_build_and_rebuild() {
        let ceiling = crate::client::ItemCeiling::new(["roads", "tiles-*"]).unwrap();
        let mut capped = account();
        capped.plan.items = Some(ceiling);
        let grant = |item: &str| Grant::new(item, [Action::Read]).unwrap();
        let build_in = |spec: &ClientSpec| {
            Client::build(
                ClientId::new("c1").unwrap(),
                spec,
                &capped,
                CredentialDigests::new(KeyDigest::of("k")),
            )
        };
        let inside = ClientSpec::javascript("web").grants([grant("roads"), grant("tiles-eu")]);
        let c = build_in(&inside).unwrap();
        let outside = inside.clone().grants([grant("roads"), grant("parcels")]);
        let err = build_in(&outside).unwrap_err();
        assert_eq!(
            err.to_string(),
            "client `c1` cannot be granted item `parcels`: it is outside the items of account \
             `acme` (its plan's `items`)"
        );
        assert!(matches!(
            c.rebuilt(&outside, &capped, DEFAULT_MAX_GRANTS),
            Err(ConfigError::ItemNotInPlan { .. })
        ));
        assert!(build(outside).is_ok(), "no ceiling: unrestricted");
    }

    #[test]
    fn access_rules_round_trip_through_the_spec() {
        let spec = ClientSpec::javascript("web")
            .privileges(["WorldStreets"])
            .grants([Grant::new("roads", [Action::Read]).unwrap()])
            .rate_limit(Some(RateLimit::new(5, 10).unwrap()))
            .shadow([Restriction::Origins]);
        let c = build(spec.clone()).unwrap();
        assert!(c.privileges().unwrap().allows("WorldStreets"));
        assert!(c.allows_item("roads", Action::Read) && !c.allows_item("roads", Action::Write));
        assert_eq!(c.to_spec().grants, spec.grants);
        assert_eq!(c.to_spec().shadow, spec.shadow);
        let plain = build(ClientSpec::javascript("web")).unwrap();
        assert!(plain.privileges().is_none() && plain.grants().is_empty());
        assert!(plain.shadow().is_empty() && plain.rate_limit().is_none());
    }

    #[test]
    fn grants_beyond_the_limit_are_refused() {
        let grants: Vec<Grant> = (0..3)
            .map(|i| Grant::new(format!("i{i}"), [Action::Read]).unwrap())
            .collect();
        let spec = ClientSpec::javascript("web").grants(grants);
        let id = ClientId::new("c1").unwrap();
        let creds = CredentialDigests::new(KeyDigest::of("k"));
        assert!(Client::build_limited(id.clone(), &spec, &account(), creds.clone(), 2).is_err());
        assert!(Client::build_limited(id, &spec, &account(), creds, 3).is_ok());
    }

    #[test]
    fn expiry_is_inclusive_of_the_instant() {
        let at = time::macros::datetime!(2026-06-01 00:00 UTC);
        let c = build(ClientSpec::javascript("web").expires_at(Some(at))).unwrap();
        assert!(!c.is_expired(at - time::Duration::NANOSECOND));
        assert!(c.is_expired(at));
    }

    #[test]
    fn rotation_with_and_without_grace() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        let (a, b, c) = (KeyDigest::of("a"), KeyDigest::of("b"), KeyDigest::of("c"));
        let creds = CredentialDigests::new(a).rotated(b, Some(now + time::Duration::hours(1)));
        assert!(creds.accepts(&a, now) && creds.accepts(&b, now));
        assert!(!creds.accepts(&a, now + time::Duration::hours(1)));
        let creds = creds.rotated(c, None);
        assert!(!creds.accepts(&a, now) && !creds.accepts(&b, now) && creds.accepts(&c, now));
        assert_eq!(creds.generation(), 2);
    }

    #[test]
    fn retiring_the_previous_digest_ends_its_grace_and_its_tokens() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        let (a, b) = (KeyDigest::of("a"), KeyDigest::of("b"));
        let creds = CredentialDigests::new(a).rotated(b, Some(now + time::Duration::hours(1)));
        assert!(creds.generation_live(0, now));
        let retired = creds.without_previous();
        assert!(!retired.accepts(&a, now) && retired.accepts(&b, now));
        assert!(!retired.generation_live(0, now) && retired.generation_live(1, now));
    }
}
