//! [`JwtVerifier`]: the layer's [`TokenVerifier`] for tokens from a [`TokenIssuer`].
//!
//! After the signature (or a hit in the verified-token cache), every request asks the deny
//! list ([`Revocations`]) whether the token itself was revoked, then re-reads the client
//! from the store: a token is refused on its next use once its client is
//! deactivated, deleted, expired, its account deactivated, or its secret regenerated (the
//! generation in the token no longer matches). The layer then applies the client's IP
//! rules and intersects the token's roles with the client's current ones.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::AuthLayer;
//! use gis_auth::policy::RouteTable;
//! use gis_auth::store::InMemoryStore;
//! use gis_auth::token::{JwtVerifier, SigningKey, TokenIssuer};
//!
//! let store = Arc::new(InMemoryStore::new());
//! let issuer = TokenIssuer::new(SigningKey::generate_hs256("k1")?);
//! let layer = AuthLayer::new(store.clone(), RouteTable::new())
//!     .token_verifier(Arc::new(JwtVerifier::new(issuer, store)));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use time::OffsetDateTime;

use subtle::ConstantTimeEq;

use super::issuer::{AccessClaims, TokenIssuer, credential_binding};
use super::keys::SigningKey;
use super::revocations::{InMemoryRevocations, Revocations};
use super::{TokenVerifier, VerifiedToken, VerifyError};
use crate::client::{ClientId, ClientKind, KeyDigest, RoleSet, same_secret};
use crate::rule::RejectionKind;
use crate::store::{ClientStore, Resolved};

/// The default number of verified tokens kept.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: u64 = 10_000;

#[derive(Debug)]
struct Verified {
    claims: AccessClaims,
    key: Arc<SigningKey>,
    client: ClientId,
    scope: RoleSet,
    /// The credential digest the `cred` claim was last found bound to, so a later request
    /// compares 32 bytes instead of hashing again.
    bound: OnceLock<KeyDigest>,
}

/// Verifies access tokens minted by a [`TokenIssuer`], refuses those on its deny list
/// ([`JwtVerifier::revocations`]), and re-checks their client. Clones share the deny list.
#[derive(Clone)]
pub struct JwtVerifier {
    issuer: TokenIssuer,
    store: Arc<dyn ClientStore>,
    cache: Option<TokenCache>,
    revocations: Arc<dyn Revocations>,
}

/// The verified-token cache: keyed by the SHA-256 of the token, with an id of its own so
/// that a thread's last token is taken only by the verifiers that share this cache.
#[derive(Clone)]
struct TokenCache {
    id: u64,
    map: Cache<KeyDigest, Arc<Verified>>,
}

thread_local! {
    /// The token this thread verified (or found in a cache) last, with what it said. One
    /// token per thread is kept as text: the one a map sends with each of its tiles, which
    /// that thread's requests hold anyway while they are served. Every rule that a cache
    /// hit checks still applies (times, key, deny list, the client as the store has it).
    static LAST_TOKEN: RefCell<Option<LastToken>> = const { RefCell::new(None) };
}

/// A thread's last token.
struct LastToken {
    /// The [`TokenCache::id`] of the verifier that verified it.
    cache: u64,
    token: Box<str>,
    verified: Arc<Verified>,
}

/// A token the verifier accepts, with its claims: what the introspection endpoint reports.
#[derive(Debug)]
pub(crate) struct Inspected {
    pub(crate) token: VerifiedToken,
    pub(crate) claims: AccessClaims,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("cache", &self.cache.as_ref().map(|c| c.map.entry_count()))
            .finish_non_exhaustive()
    }
}

fn invalid(kind: RejectionKind) -> VerifyError {
    VerifyError::Invalid(kind)
}

impl JwtVerifier {
    /// A verifier for `issuer`'s tokens reading clients from `store`, with a verified-token
    /// cache of [`DEFAULT_TOKEN_CACHE_CAPACITY`] entries.
    pub fn new(issuer: TokenIssuer, store: Arc<dyn ClientStore>) -> Self {
        Self {
            cache: Some(Self::cache(&issuer, DEFAULT_TOKEN_CACHE_CAPACITY)),
            revocations: Arc::new(InMemoryRevocations::new().clock(issuer.clock_handle())),
            issuer,
            store,
        }
    }

    /// Refuses the tokens on `list` (401 `invalid_token`), instead of those on a list of
    /// its own in memory; `PostgresRevocations` (feature `postgres`) shares one
    /// list between instances.
    #[must_use]
    pub fn revocations(mut self, list: Arc<dyn Revocations>) -> Self {
        self.revocations = list;
        self
    }

    /// The deny list this verifier consults.
    pub fn revocation_list(&self) -> &Arc<dyn Revocations> {
        &self.revocations
    }

    /// The claims of a token minted by the issuer that has not expired (signature, `iss`,
    /// `aud`, times), whatever became of its client since: what a revocation needs.
    pub(crate) fn signed_claims(&self, token: &str) -> Result<AccessClaims, RejectionKind> {
        self.verified(token, self.issuer.now())
            .map(|v| v.claims.clone())
    }

    /// The token and its claims, if the verifier accepts it now: exactly
    /// [`TokenVerifier::verify`].
    pub(crate) async fn inspect(&self, token: &str) -> Result<Inspected, VerifyError> {
        let verified = self.verified(token, self.issuer.now()).map_err(invalid)?;
        if self.revocations.is_revoked(&verified.claims.jti).await? {
            return Err(invalid(RejectionKind::Revoked));
        }
        let found = self.store.resolve_id(&verified.client).await?;
        Ok(Inspected {
            // After the awaits: the time now.
            token: self.admit(&verified, found, self.issuer.now())?,
            claims: verified.claims.clone(),
        })
    }

    fn cache(issuer: &TokenIssuer, capacity: u64) -> TokenCache {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        TokenCache {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            map: Cache::builder()
                .max_capacity(capacity)
                // An upper bound only: every hit is checked against the token's own `exp`
                // on the issuer's clock.
                .time_to_live(issuer.token_lifetime().max(Duration::from_secs(1)))
                .build(),
        }
    }

    /// Keeps at most `capacity` verified tokens (0 turns the cache off). The cache is keyed
    /// by the SHA-256 of the token, never the token itself, and saves only the signature
    /// check: every revocation rule still applies on a hit.
    #[must_use]
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.cache = (capacity > 0).then(|| Self::cache(&self.issuer, capacity));
        self
    }

    /// The claims of a valid token, from the cache or by verifying it.
    fn verified(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Verified>, RejectionKind> {
        let Some(cache) = &self.cache else {
            return self.decoded(token, now);
        };
        // The token this thread verified last, compared in constant time: a map sends one
        // token with every tile, so most requests skip the digest and the cache.
        if let Some(last) = LAST_TOKEN.with_borrow(|last| {
            last.as_ref()
                .filter(|l| {
                    l.cache == cache.id && same_secret(l.token.as_bytes(), token.as_bytes())
                })
                .map(|l| l.verified.clone())
        }) {
            self.issuer.check_times(&last.claims, now)?;
            if self.issuer.key_live(&last.key, now) {
                return Ok(last);
            }
        }
        let digest = KeyDigest::of(token);
        let verified = match cache.map.get(&digest) {
            Some(hit) => {
                self.issuer.check_times(&hit.claims, now)?;
                if !self.issuer.key_live(&hit.key, now) {
                    cache.map.invalidate(&digest);
                    return Err(RejectionKind::UnknownCredential);
                }
                hit
            }
            None => {
                let verified = self.decoded(token, now)?;
                cache.map.insert(digest, verified.clone());
                verified
            }
        };
        LAST_TOKEN.set(Some(LastToken {
            cache: cache.id,
            token: token.into(),
            verified: verified.clone(),
        }));
        Ok(verified)
    }

    /// The claims of a token whose signature and times verify at `now`.
    fn decoded(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Verified>, RejectionKind> {
        let (claims, key) = self.issuer.decode(token, now)?;
        let client = ClientId::new(&claims.sub).map_err(|_| RejectionKind::UnknownCredential)?;
        let scope = RoleSet::parse(claims.scope.split(' ').filter(|s| !s.is_empty()))
            .map_err(|_| RejectionKind::UnknownCredential)?;
        Ok(Arc::new(Verified {
            key,
            client,
            scope,
            claims,
            bound: OnceLock::new(),
        }))
    }

    /// The token's client as the store has it at `now`, if its credential still stands.
    fn admit(
        &self,
        verified: &Verified,
        found: Option<Resolved>,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, VerifyError> {
        let found = found.ok_or(invalid(RejectionKind::UnknownCredential))?;
        let client = &found.client;
        if client.kind() != ClientKind::NativeConfidential
            || client.account_id().as_str() != verified.claims.account_id
        {
            return Err(invalid(RejectionKind::UnknownCredential));
        }
        let credentials = client.credentials();
        let generation = verified.claims.generation;
        let bound = credentials.of_generation(generation).is_some_and(|digest| {
            if verified.bound.get().is_some_and(|b| b.ct_eq(digest)) {
                return true;
            }
            let binding = credential_binding(digest);
            let matches = bool::from(binding.as_bytes().ct_eq(verified.claims.cred.as_bytes()));
            if matches {
                let _ = verified.bound.set(*digest);
            }
            matches
        });
        if !bound || !credentials.generation_live(generation, now) {
            return Err(invalid(RejectionKind::Revoked));
        }
        Ok(VerifiedToken {
            client: found.client,
            account: found.account,
            scope: Some(verified.scope.clone()),
        })
    }
}

#[async_trait]
impl TokenVerifier for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        self.inspect(token).await.map(|inspected| inspected.token)
    }

    /// At once when the deny list and the store answer at once. Otherwise `None`, after the signature was
    /// checked and cached, so `verify` does not check it again (unless the cache is off).
    fn verify_now(&self, token: &str) -> Option<Result<VerifiedToken, VerifyError>> {
        // One clock read for the whole check: nothing here waits.
        let now = self.issuer.now();
        let verified = match self.verified(token, now) {
            Ok(v) => v,
            Err(kind) => return Some(Err(invalid(kind))),
        };
        match self.revocations.is_revoked_now(&verified.claims.jti)? {
            Ok(false) => {}
            Ok(true) => return Some(Err(invalid(RejectionKind::Revoked))),
            Err(e) => return Some(Err(e.into())),
        }
        Some(match self.store.resolve_id_now(&verified.client)? {
            Ok(found) => self.admit(&verified, found, now),
            Err(e) => Err(e.into()),
        })
    }
}
