//! [`TokenIssuer`]: mints signed one-hour access tokens and checks their signature and
//! claims.
//!
//! ```
//! use gis_auth::token::{SigningKey, TokenIssuer};
//! use std::time::Duration;
//!
//! let issuer = TokenIssuer::new(SigningKey::generate_hs256("2026-01")?)
//!     .lifetime(Duration::from_secs(1800));
//! issuer.rotate_key(SigningKey::generate_hs256("2026-02")?, Duration::from_secs(3600))?;
//! assert_eq!(issuer.current_kid(), "2026-02");
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::SigningKey;
use super::ring::KeyRing;
use crate::client::{Account, Client, KeyDigest, RoleSet};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::rule::RejectionKind;

/// The `typ` header of every access token (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The default token lifetime: one hour.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The default clock leeway: how far ahead of ours the issuing clock may run.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The client id (RFC 9068 §2.2: the client is the subject of a client credentials
    /// token).
    pub sub: String,
    /// The client id again, as RFC 9068 §2.2 requires of every access token.
    pub client_id: String,
    /// The client's account id.
    pub account_id: String,
    /// The roles the token carries, space-separated.
    pub scope: String,
    /// Issued at (seconds since 1970).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at; the token is expired from this second on.
    pub exp: i64,
    /// A unique id: 128 random bits in Base64URL.
    pub jti: String,
    /// The client's credential generation when the token was minted.
    pub generation: u64,
    /// A hash of the credential the token was minted with, so a token never outlives that
    /// credential: not across a regeneration, and not across deleting the client and
    /// creating another with the same id.
    pub cred: String,
}

/// The `cred` claim of a token minted with the credential whose digest is `digest`: a
/// domain-separated SHA-256 of the digest, 128 bits in Base64URL. It says nothing usable
/// about the secret.
pub fn credential_binding(digest: &KeyDigest) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"gis-auth token binding\0");
    h.update(digest.as_bytes());
    URL_SAFE_NO_PAD.encode(&h.finalize()[..16])
}

/// Why a token could not be minted. These are runtime failures, not configuration: the
/// token endpoint answers them with 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The client holds no credential of the generation the token was to be bound to (it
    /// was regenerated meanwhile).
    #[error("the client holds no credential of generation {0}")]
    UnknownGeneration(u64),
    /// The signing key with this id could not sign.
    #[error("the signing key `{0}` could not sign")]
    Signing(String),
    /// The operating system's random source failed (for the token's `jti`).
    #[error("the operating system's random source failed")]
    RandomSource,
}

/// A freshly minted token.
#[derive(Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The compact JWT. Hand it to its client; never log it.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The roles it carries.
    pub scope: RoleSet,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// What an issuer is configured with: plain values, set while building.
#[derive(Clone)]
struct IssuerSettings {
    issuer: String,
    audience: String,
    lifetime: Duration,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

/// Mints and checks access tokens: JWTs with `typ: at+jwt`, a `kid`, and the algorithm
/// pinned to the signing key (HS256 by default; EdDSA or ES256 with a key pair).
///
/// ```
/// use gis_auth::token::{SigningKey, TokenIssuer};
///
/// let issuer = TokenIssuer::new(SigningKey::generate_hs256("2026-01")?)
///     .issuer("https://maps.example.com")
///     .audience("maps-api");
/// # Ok::<(), gis_auth::ConfigError>(())
/// ```
///
/// An issuer and its clones are one issuer: they share their keys, so a key rotated through
/// any of them signs and verifies for all. A setting changed on an issuer that has been
/// cloned makes a new issuer, with a copy of the keys as they are then; the clones made
/// before keep their settings and their keys.
#[derive(Clone)]
pub struct TokenIssuer {
    settings: Arc<IssuerSettings>,
    keys: Arc<RwLock<KeyRing<SigningKey>>>,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .field("lifetime", &self.settings.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with `key`: issuer and audience `gis-auth`, one-hour tokens, 5 s
    /// leeway, the system clock.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        Self {
            settings: Arc::new(IssuerSettings {
                issuer: "gis-auth".to_owned(),
                audience: "gis-auth".to_owned(),
                lifetime: DEFAULT_TOKEN_LIFETIME,
                leeway: DEFAULT_LEEWAY,
                clock: Arc::new(SystemClock),
            }),
            keys: Arc::new(RwLock::new(KeyRing::new(key))),
        }
    }

    /// The settings, to change; an issuer shared with clones first takes its own copy of
    /// the keys, so the clones stay as they were.
    fn configure(&mut self) -> &mut IssuerSettings {
        if Arc::get_mut(&mut self.keys).is_none() {
            let keys = self.key_ring().clone();
            self.keys = Arc::new(RwLock::new(keys));
        }
        Arc::make_mut(&mut self.settings)
    }

    fn key_ring(&self) -> RwLockReadGuard<'_, KeyRing<SigningKey>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `iss` claim tokens carry and must carry.
    #[must_use]
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.configure().issuer = iss.into();
        self
    }

    /// The `aud` claim tokens carry and must carry.
    #[must_use]
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.configure().audience = aud.into();
        self
    }

    /// The lifetime of new tokens (one hour by default).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.configure().lifetime = lifetime;
        self
    }

    /// How far in the future `nbf` and `iat` may be (clock skew between instances). Expiry
    /// is never extended: a token is expired from its `exp` second on. At most 5 minutes.
    pub fn leeway(mut self, leeway: Duration) -> Result<Self, ConfigError> {
        if leeway > Duration::from_secs(300) {
            return Err(ConfigError::InvalidField {
                field: "leeway",
                value: format!("{}s", leeway.as_secs()),
                reason: "the leeway is at most 300 seconds",
            });
        }
        self.configure().leeway = leeway;
        Ok(self)
    }

    /// The clock for `iat`, `nbf`, `exp` and their checks.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.configure().clock = clock;
        self
    }

    /// The current time on the issuer's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.settings.clock.now()
    }

    /// The issuer's clock.
    pub(crate) fn clock_handle(&self) -> Arc<dyn Clock> {
        self.settings.clock.clone()
    }

    /// The token lifetime.
    pub fn token_lifetime(&self) -> Duration {
        self.settings.lifetime
    }

    /// The `iss` claim of its tokens (the issuer identifier of RFC 8414).
    pub fn issuer_id(&self) -> &str {
        &self.settings.issuer
    }

    /// The `aud` claim of its tokens.
    pub fn audience_id(&self) -> &str {
        &self.settings.audience
    }

    /// The public keys that verify live tokens now, as a JWK set (RFC 7517 §5): the
    /// current key and the retired keys still in their grace, each with `kid`, `kty`,
    /// its curve parameters, `alg` and `use: "sig"`. An HS256 key is never listed, so an
    /// issuer with HS256 keys only publishes an empty set.
    ///
    /// ```
    /// use gis_auth::token::{SigningKey, TokenIssuer};
    /// use std::time::Duration;
    ///
    /// let issuer = TokenIssuer::new(SigningKey::generate_hs256("secret")?);
    /// assert!(issuer.jwks().keys.is_empty());
    /// issuer.rotate_key(SigningKey::generate_ed25519(Some("ed-1"))?, Duration::from_secs(60))?;
    /// assert_eq!(issuer.jwks().keys.len(), 1);
    /// # Ok::<(), gis_auth::ConfigError>(())
    /// ```
    pub fn jwks(&self) -> JwkSet {
        let now = self.now();
        JwkSet {
            keys: self
                .key_ring()
                .live(now)
                .filter_map(|k| k.public_jwk().cloned())
                .collect(),
        }
    }

    /// Signs new tokens with `next`; tokens signed with the current key keep verifying for
    /// `grace`.
    pub fn rotate_key(&self, next: SigningKey, grace: Duration) -> Result<(), ConfigError> {
        let now = self.now();
        let until = now + grace;
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .rotate(next, until, now)
    }

    /// The id of the key that signs new tokens.
    pub fn current_kid(&self) -> String {
        self.key_ring().current().kid().to_owned()
    }

    /// Mints a token for `client` with `scope`, at credential `generation`, expiring after
    /// the lifetime or at `not_after`, whichever comes first.
    pub fn issue(
        &self,
        client: &Client,
        account: &Account,
        scope: &RoleSet,
        generation: u64,
        not_after: Option<OffsetDateTime>,
    ) -> Result<IssuedToken, IssueError> {
        self.issue_within(client, account, scope, generation, not_after, None)
    }

    /// [`issue`](Self::issue), expiring after `lifetime` if that is shorter than the
    /// issuer's (a token request's `expires_in`).
    pub fn issue_within(
        &self,
        client: &Client,
        account: &Account,
        scope: &RoleSet,
        generation: u64,
        not_after: Option<OffsetDateTime>,
        lifetime: Option<Duration>,
    ) -> Result<IssuedToken, IssueError> {
        let now = self.now();
        let lifetime = lifetime.map_or(self.settings.lifetime, |l| l.min(self.settings.lifetime));
        let mut exp = now + lifetime;
        if let Some(limit) = not_after {
            exp = exp.min(limit);
        }
        let cred = client
            .credentials()
            .of_generation(generation)
            .map(credential_binding)
            .ok_or(IssueError::UnknownGeneration(generation))?;
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|_| IssueError::RandomSource)?;
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: client.id().to_string(),
            client_id: client.id().to_string(),
            account_id: account.id.to_string(),
            scope: scope
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            iat: now.unix_timestamp(),
            nbf: now.unix_timestamp(),
            exp: exp.unix_timestamp(),
            jti: URL_SAFE_NO_PAD.encode(jti),
            generation,
            cred,
        };
        let key = self.key_ring().current().clone();
        let mut header = Header::new(key.algorithm());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(key.kid().to_owned());
        let access_token = jsonwebtoken::encode(&header, &claims, key.encoding())
            .map_err(|_| IssueError::Signing(key.kid().to_owned()))?;
        Ok(IssuedToken {
            access_token,
            expires_in: u64::try_from((exp - now).whole_seconds()).unwrap_or(0),
            scope: scope.clone(),
        })
    }

    /// Checks a token's header, signature and claims at `now`; gives its claims and `kid`.
    pub(crate) fn decode(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<(AccessClaims, Arc<SigningKey>), RejectionKind> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| RejectionKind::MalformedCredential)?;
        // Never let a token point at its own keys, and never accept critical extensions.
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(RejectionKind::MalformedCredential);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(RejectionKind::MalformedCredential);
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(RejectionKind::UnknownCredential)?;
        let key = self
            .key_ring()
            .verifying(kid, now)
            .cloned()
            .ok_or(RejectionKind::UnknownCredential)?;
        if header.alg != key.algorithm() {
            return Err(RejectionKind::MalformedCredential);
        }
        // One pass over the token: the signature over `header.payload`, then the claims,
        // parsed once (every claim below is a required field of `AccessClaims`: `exp`,
        // `nbf`, `iss`, `aud` and `sub` among them).
        let (message, signature) = token
            .rsplit_once('.')
            .ok_or(RejectionKind::MalformedCredential)?;
        let payload = message
            .rsplit_once('.')
            .map(|(_, payload)| payload)
            .ok_or(RejectionKind::MalformedCredential)?;
        let signed = jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            key.decoding(),
            key.algorithm(),
        )
        .unwrap_or(false);
        if !signed {
            return Err(RejectionKind::UnknownCredential);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| RejectionKind::UnknownCredential)?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| RejectionKind::UnknownCredential)?;
        if claims.iss != self.settings.issuer
            || claims.aud != self.settings.audience
            || claims.client_id != claims.sub
        {
            return Err(RejectionKind::UnknownCredential);
        }
        self.check_times(&claims, now)?;
        Ok((claims, key))
    }

    /// Expired from `exp` on; `nbf` and `iat` may be at most the leeway ahead of `now`.
    pub(crate) fn check_times(
        &self,
        claims: &AccessClaims,
        now: OffsetDateTime,
    ) -> Result<(), RejectionKind> {
        let now = now.unix_timestamp();
        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(0);
        if now >= claims.exp {
            return Err(RejectionKind::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) || claims.iat > now.saturating_add(leeway) {
            return Err(RejectionKind::UnknownCredential);
        }
        Ok(())
    }

    /// Whether the key with this id still verifies at `now`.
    /// Whether `key` is still the live key for its `kid` at `now` (not retired past its
    /// grace, and its kid not given to another key since).
    pub(crate) fn key_live(&self, key: &Arc<SigningKey>, now: OffsetDateTime) -> bool {
        self.key_ring()
            .verifying(key.kid(), now)
            .is_some_and(|live| Arc::ptr_eq(live, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{AccountId, ClientId, ClientSpec, CredentialDigests, KeyDigest, Role};
    use crate::clock::ManualClock;
    use time::macros::datetime;

    fn fixture() -> (TokenIssuer, ManualClock, Client, Account) {
        let clock = ManualClock::new(datetime!(2026-05-01 10:00 UTC));
        let issuer = TokenIssuer::new(SigningKey::hs256("k1", &[1; 32]).unwrap())
            .clock(Arc::new(clock.clone()));
        let account = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
        )
        .unwrap();
        let client = Client::build(
            ClientId::new("srv").unwrap(),
            &ClientSpec::native("srv"),
            &account,
            CredentialDigests::new(KeyDigest::of("s")),
        )
        .unwrap();
        (issuer, clock, client, account)
    }

    #[test]
    fn a_minted_token_decodes_until_the_second_it_expires() {
        let (issuer, clock, client, account) = fixture();
        let t = issuer
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        assert_eq!(t.expires_in, 3600);
        let (claims, key) = issuer.decode(&t.access_token, clock.now()).unwrap();
        assert_eq!(claims.sub, "srv");
        assert_eq!(claims.scope, "Evaluator User");
        assert_eq!(key.kid(), "k1");
        clock.advance(time::Duration::seconds(3599));
        assert!(issuer.decode(&t.access_token, clock.now()).is_ok());
        clock.advance(time::Duration::seconds(1));
        assert_eq!(
            issuer.decode(&t.access_token, clock.now()).unwrap_err(),
            RejectionKind::Expired
        );
    }

    #[test]
    fn not_after_caps_the_lifetime() {
        let (issuer, clock, client, account) = fixture();
        let limit = clock.now() + time::Duration::minutes(10);
        let t = issuer
            .issue(&client, &account, client.roles(), 0, Some(limit))
            .unwrap();
        assert_eq!(t.expires_in, 600);
    }

    #[test]
    fn another_issuers_tokens_are_refused() {
        let (issuer, clock, client, account) = fixture();
        let other = TokenIssuer::new(SigningKey::hs256("k1", &[2; 32]).unwrap())
            .clock(Arc::new(clock.clone()));
        let t = other
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        assert!(issuer.decode(&t.access_token, clock.now()).is_err());
        let wrong_aud = TokenIssuer::new(SigningKey::hs256("k1", &[1; 32]).unwrap())
            .audience("elsewhere")
            .clock(Arc::new(clock.clone()));
        let t = wrong_aud
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        assert!(issuer.decode(&t.access_token, clock.now()).is_err());
    }

    #[test]
    fn rotated_keys_keep_verifying_through_their_grace() {
        let (issuer, clock, client, account) = fixture();
        let old = issuer
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        issuer
            .rotate_key(
                SigningKey::hs256("k2", &[3; 32]).unwrap(),
                Duration::from_secs(600),
            )
            .unwrap();
        let new = issuer
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        assert!(issuer.decode(&old.access_token, clock.now()).is_ok());
        assert!(issuer.decode(&new.access_token, clock.now()).is_ok());
        clock.advance(time::Duration::seconds(600));
        assert!(issuer.decode(&old.access_token, clock.now()).is_err());
        assert!(issuer.decode(&new.access_token, clock.now()).is_ok());
    }

    #[test]
    fn configuring_after_a_clone_leaves_the_clone_as_it_was() {
        let (issuer, clock, client, account) = fixture();
        let verifier = issuer.clone();
        issuer
            .rotate_key(SigningKey::hs256("k2", &[3; 32]).unwrap(), Duration::ZERO)
            .unwrap();
        assert_eq!(verifier.current_kid(), "k2", "clones share their keys");

        let shorter = issuer.lifetime(Duration::from_secs(60)).audience("maps");
        shorter
            .rotate_key(SigningKey::hs256("k3", &[4; 32]).unwrap(), Duration::ZERO)
            .unwrap();
        assert_eq!(shorter.current_kid(), "k3");
        assert_eq!(verifier.current_kid(), "k2", "the clone keeps its keys");
        assert_eq!(verifier.token_lifetime(), DEFAULT_TOKEN_LIFETIME);
        let t = verifier
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        assert_eq!(t.expires_in, 3600);
        assert!(verifier.decode(&t.access_token, clock.now()).is_ok());
        assert!(shorter.decode(&t.access_token, clock.now()).is_err());
    }

    #[test]
    fn the_order_of_the_settings_does_not_matter() {
        let (_, clock, client, account) = fixture();
        let key = || SigningKey::hs256("k1", &[1; 32]).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let one = TokenIssuer::new(key())
            .issuer("https://maps.example.com")
            .lifetime(Duration::from_secs(900))
            .clock(clock.clone())
            .leeway(Duration::from_secs(30))
            .unwrap();
        let other = TokenIssuer::new(key())
            .leeway(Duration::from_secs(30))
            .unwrap()
            .clock(clock.clone())
            .lifetime(Duration::from_secs(900))
            .issuer("https://maps.example.com");
        let a = one
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        let b = other
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        assert_eq!(a.expires_in, b.expires_in);
        let (a_claims, _) = other.decode(&a.access_token, clock.now()).unwrap();
        let (b_claims, _) = one.decode(&b.access_token, clock.now()).unwrap();
        let without_jti = |c: AccessClaims| AccessClaims {
            jti: String::new(),
            ..c
        };
        assert_eq!(without_jti(a_claims), without_jti(b_claims));
    }

    #[test]
    fn leeway_is_bounded() {
        let (issuer, ..) = fixture();
        assert!(issuer.clone().leeway(Duration::from_secs(30)).is_ok());
        assert!(issuer.leeway(Duration::from_secs(301)).is_err());
    }

    #[test]
    fn issued_tokens_are_redacted_in_debug() {
        let (issuer, _, client, account) = fixture();
        let t = issuer
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        assert!(!format!("{t:?}").contains(&t.access_token));
    }

    #[test]
    fn every_token_names_its_client_and_has_a_fresh_128_bit_jti() {
        let (issuer, clock, client, account) = fixture();
        let issuer = issuer
            .issuer("https://maps.example.com")
            .audience("https://tiles.example.com");
        let a = issuer
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        let b = issuer
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        let (a, _) = issuer.decode(&a.access_token, clock.now()).unwrap();
        let (b, _) = issuer.decode(&b.access_token, clock.now()).unwrap();
        assert_eq!(a.client_id, "srv");
        assert_eq!(a.sub, "srv");
        assert_eq!(a.iss, "https://maps.example.com");
        assert_eq!(a.aud, "https://tiles.example.com");
        assert_eq!(URL_SAFE_NO_PAD.decode(&a.jti).unwrap().len(), 16);
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn a_client_id_other_than_the_subject_is_refused() {
        let (issuer, clock, client, account) = fixture();
        let t = issuer
            .issue(&client, &account, client.roles(), 0, None)
            .unwrap();
        let (mut claims, _) = issuer.decode(&t.access_token, clock.now()).unwrap();
        claims.client_id = "other".to_owned();
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some("k1".to_owned());
        let forged = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&[1; 32]),
        )
        .unwrap();
        assert_eq!(
            issuer.decode(&forged, clock.now()).unwrap_err(),
            RejectionKind::UnknownCredential
        );
    }

    #[test]
    fn a_shorter_lifetime_is_honoured_and_a_longer_one_capped() {
        let (issuer, clock, client, account) = fixture();
        let short = issuer
            .issue_within(
                &client,
                &account,
                client.roles(),
                0,
                None,
                Some(Duration::from_secs(300)),
            )
            .unwrap();
        assert_eq!(short.expires_in, 300);
        let (claims, _) = issuer.decode(&short.access_token, clock.now()).unwrap();
        assert_eq!(claims.exp - claims.iat, 300);
        let long = issuer
            .issue_within(
                &client,
                &account,
                client.roles(),
                0,
                None,
                Some(Duration::from_secs(7200)),
            )
            .unwrap();
        assert_eq!(long.expires_in, 3600);
    }

    #[test]
    fn the_jwks_lists_the_live_public_keys_across_a_rotation() {
        let (_, clock, ..) = fixture();
        let issuer = TokenIssuer::new(SigningKey::generate_ed25519(Some("ed-1")).unwrap())
            .clock(Arc::new(clock.clone()));
        let kids = |issuer: &TokenIssuer| {
            issuer
                .jwks()
                .keys
                .iter()
                .map(|k| k.common.key_id.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(&issuer), ["ed-1"]);
        issuer
            .rotate_key(
                SigningKey::generate_ed25519(Some("ed-2")).unwrap(),
                Duration::from_secs(600),
            )
            .unwrap();
        assert_eq!(kids(&issuer), ["ed-2", "ed-1"]);
        // A symmetric key in the ring is never published.
        issuer
            .rotate_key(
                SigningKey::hs256("hs", &[5; 32]).unwrap(),
                Duration::from_secs(1200),
            )
            .unwrap();
        assert_eq!(kids(&issuer), ["ed-1", "ed-2"]);
        clock.advance(time::Duration::seconds(600));
        assert_eq!(kids(&issuer), ["ed-2"]);
        clock.advance(time::Duration::seconds(600));
        assert!(issuer.jwks().keys.is_empty());
    }
}
