//! [`TileUrlSigner`]: mints signed tile URLs and verifies them.
//!
//! A signed URL carries `cid` (the client), `api`, optionally `zmin`, `zmax` and `items`,
//! then `exp` (Unix seconds), `kid` and `sig`: the HMAC-SHA-256, under the key `kid`, of
//! those values and of the client's current credential (its generation and digest, which
//! never leave the server). Regenerating the client's credential therefore stops every URL
//! it minted; deactivating it stops them through the policy's status rule.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     KeyDigest, Role, RoleSet};
//! use gis_auth::policy::TileUrlScope;
//! use gis_auth::signed::{TileUrlKey, TileUrlSigner};
//! use std::time::Duration;
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::EVALUATOR]))?;
//! let web = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web"), &acme,
//!     CredentialDigests::new(KeyDigest::of("…")))?;
//! let signer = TileUrlSigner::new(TileUrlKey::new("t1", &[9u8; 32])?);
//! let minted = signer.mint(&web, &TileUrlScope::new("WorldStreets"), Duration::from_secs(3600));
//! let url = signer.parse(&minted.query, signer.now()).expect("well formed");
//! assert!(signer.verify(&url, &web).is_ok());
//! assert_eq!(url.scope().api, "WorldStreets");
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::cell::RefCell;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::key::{TileKeyRing, TileUrlKey};
use crate::client::{Client, ClientId, KeyDigest};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::policy::TileUrlScope;
use crate::rule::RejectionKind;

type HmacSha256 = Hmac<Sha256>;

/// The default lifetime of a signed URL: one hour.
pub const DEFAULT_TILE_URL_TTL: Duration = Duration::from_secs(3600);

/// The longest lifetime of a signed URL: one day.
pub const MAX_TILE_URL_TTL: Duration = Duration::from_secs(86_400);

/// The default expiry bucket: expiries are rounded up to a multiple of ten minutes, so the
/// URLs minted for one scope within those ten minutes are the same URL (and one cache entry).
pub const DEFAULT_TILE_URL_BUCKET: Duration = Duration::from_secs(600);

/// The query parameters of a signed URL, in the order they are written.
pub const SIGNED_URL_PARAMS: [&str; 8] =
    ["cid", "api", "zmin", "zmax", "items", "exp", "kid", "sig"];

/// What is escaped in a value: everything but letters, digits and `-._~`.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A signed URL's query, as minted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MintedQuery {
    /// The query string, without the leading `?`.
    pub query: String,
    /// When the URL stops working.
    pub expires_at: OffsetDateTime,
}

/// A signed URL whose parameters are well formed, whose key is live and which has not
/// expired: its signature is checked against its client by [`TileUrlSigner::verify`].
pub struct SignedTileUrl {
    client: ClientId,
    scope: TileUrlScope,
    expires: i64,
    key: Arc<TileUrlKey>,
    sig: [u8; 32],
}

impl std::fmt::Debug for SignedTileUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedTileUrl")
            .field("client", &self.client)
            .field("scope", &self.scope)
            .field("expires", &self.expires)
            .field("kid", &self.key.kid())
            .finish_non_exhaustive()
    }
}

impl SignedTileUrl {
    /// The client the URL was minted for.
    pub fn client(&self) -> &ClientId {
        &self.client
    }

    /// What it covers.
    pub fn scope(&self) -> &TileUrlScope {
        &self.scope
    }

    /// When it stops working.
    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.expires).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whole seconds left at `now` (0 once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> u64 {
        u64::try_from(self.expires.saturating_sub(now.unix_timestamp())).unwrap_or(0)
    }

    /// The longest a shared cache may keep an answer to this URL at `now`, in seconds: the
    /// whole seconds left, less one, so that a cache counting whole seconds (and serving
    /// through the last one, as nginx does) stops before the URL expires.
    pub fn cache_lifetime(&self, now: OffsetDateTime) -> u64 {
        self.seconds_left(now).saturating_sub(1)
    }

    /// The scope, taken out.
    pub fn into_scope(self) -> TileUrlScope {
        self.scope
    }
}

/// Mints and verifies signed tile URLs under a ring of [`TileUrlKey`]s. Clones share the
/// ring, so a rotation through one is seen by all (the layer's and the admin API's).
#[derive(Clone)]
#[must_use]
pub struct TileUrlSigner {
    keys: Arc<RwLock<TileKeyRing>>,
    bucket: u64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TileUrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileUrlSigner")
            .field("kid", &self.current_kid())
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn malformed<T>() -> Result<T, RejectionKind> {
    Err(RejectionKind::MalformedCredential)
}

impl TileUrlSigner {
    /// A signer with `key`, the [`DEFAULT_TILE_URL_BUCKET`], on the system clock.
    pub fn new(key: TileUrlKey) -> Self {
        Self {
            keys: Arc::new(RwLock::new(TileKeyRing::new(key))),
            bucket: DEFAULT_TILE_URL_BUCKET.as_secs(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Rounds expiries up to a multiple of `bucket` (at least one second, at most a day).
    pub fn bucket(mut self, bucket: Duration) -> Result<Self, ConfigError> {
        if bucket.as_secs() == 0 || bucket > MAX_TILE_URL_TTL {
            return Err(ConfigError::InvalidField {
                field: "tile URL bucket",
                value: format!("{}s", bucket.as_secs()),
                reason: "the bucket is 1 second to 1 day",
            });
        }
        self.bucket = bucket.as_secs();
        Ok(self)
    }

    /// Reads the time from `clock` when minting and rotating.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The signer's time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Signs new URLs with `next`; URLs signed with the current key keep verifying for
    /// `grace` (they expire within [`MAX_TILE_URL_TTL`] anyway).
    pub fn rotate_key(&self, next: TileUrlKey, grace: Duration) -> Result<(), ConfigError> {
        let now = self.now();
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .rotate(next, now + grace, now)
    }

    /// The id of the key that signs new URLs.
    pub fn current_kid(&self) -> String {
        self.ring().current().kid().to_owned()
    }

    fn ring(&self) -> TileKeyRing {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The expiry of a URL minted at `now` to live `ttl`: rounded up to the bucket.
    fn expiry(&self, now: OffsetDateTime, ttl: Duration) -> i64 {
        let ttl = i64::try_from(ttl.min(MAX_TILE_URL_TTL).as_secs()).unwrap_or(0);
        let bucket = i64::try_from(self.bucket).unwrap_or(1).max(1);
        let at = now.unix_timestamp().saturating_add(ttl.max(1));
        at.div_euclid(bucket)
            .saturating_add(i64::from(at.rem_euclid(bucket) != 0))
            .saturating_mul(bucket)
    }

    /// The query of a URL that lets `client`'s requests within `scope` through until
    /// `ttl` (at most [`MAX_TILE_URL_TTL`]) from now, rounded up to the bucket. It holds
    /// no credential.
    pub fn mint(&self, client: &Client, scope: &TileUrlScope, ttl: Duration) -> MintedQuery {
        let expires = self.expiry(self.now(), ttl);
        let key = self.ring().current().clone();
        let sig = signature(&key, client, scope, expires);
        let mut query = String::with_capacity(128);
        let mut push = |name: &str, value: &str| {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(name);
            query.push('=');
            query.push_str(value);
        };
        push("cid", &encode(client.id().as_str()));
        push("api", &encode(&scope.api));
        if let Some(z) = scope.min_zoom {
            push("zmin", &z.to_string());
        }
        if let Some(z) = scope.max_zoom {
            push("zmax", &z.to_string());
        }
        if !scope.items.is_empty() {
            let items: Vec<String> = scope.items.iter().map(|i| encode(i)).collect();
            push("items", &items.join(","));
        }
        push("exp", &expires.to_string());
        push("kid", key.kid());
        push("sig", &URL_SAFE_NO_PAD.encode(sig));
        MintedQuery {
            query,
            expires_at: OffsetDateTime::from_unix_timestamp(expires)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// Reads a signed URL's parameters from `query` at `now`: refused when one is missing,
    /// repeated or malformed (`MalformedCredential`), when its key is unknown or retired or
    /// its expiry lies further ahead than any minted one (`UnknownCredential`), or when it
    /// has expired (`Expired`). Other parameters are left alone. The signature is checked
    /// by [`verify`](Self::verify), against the client as the store has it now.
    pub fn parse(&self, query: &str, now: OffsetDateTime) -> Result<SignedTileUrl, RejectionKind> {
        let mut found: [Option<&str>; 8] = [None; 8];
        for piece in query.split('&') {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            if let Some(at) = SIGNED_URL_PARAMS.iter().position(|p| *p == name)
                && found[at].replace(value).is_some()
            {
                return malformed();
            }
        }
        let [cid, api, zmin, zmax, items, exp, kid, sig] = found;
        let (Some(cid), Some(api), Some(exp), Some(kid), Some(sig)) = (cid, api, exp, kid, sig)
        else {
            return malformed();
        };
        let mut sig_bytes = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(sig, &mut sig_bytes) {
            Ok(32) if sig.len() == 43 => {}
            _ => return malformed(),
        }
        let Ok(expires) = exp.parse::<i64>() else {
            return malformed();
        };
        let zoom = |z: Option<&str>| match z {
            None => Ok(None),
            Some(z) => z
                .parse::<u32>()
                .map(Some)
                .map_err(|_| RejectionKind::MalformedCredential),
        };
        let (min_zoom, max_zoom) = (zoom(zmin)?, zoom(zmax)?);
        let client = decode(cid)
            .and_then(|cid| ClientId::new(&cid).ok())
            .ok_or(RejectionKind::MalformedCredential)?;
        let api = decode(api).ok_or(RejectionKind::MalformedCredential)?;
        let items = match items {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(decode)
                .collect::<Option<Vec<_>>>()
                .ok_or(RejectionKind::MalformedCredential)?,
        };
        let key = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .verifying(kid, now)
            .cloned()
            .ok_or(RejectionKind::UnknownCredential)?;
        let now_s = now.unix_timestamp();
        if expires <= now_s {
            return Err(RejectionKind::Expired);
        }
        let furthest = i64::try_from(MAX_TILE_URL_TTL.as_secs().saturating_add(self.bucket))
            .unwrap_or(i64::MAX);
        if expires - now_s > furthest {
            return Err(RejectionKind::UnknownCredential);
        }
        Ok(SignedTileUrl {
            client,
            scope: TileUrlScope {
                api,
                min_zoom,
                max_zoom,
                items,
            },
            expires,
            key,
            sig: sig_bytes,
        })
    }

    /// Checks `url`'s signature against `client` as it is now, in constant time: a URL of
    /// another client, or minted before the client's credential was regenerated, is
    /// refused (`UnknownCredential`).
    pub fn verify(&self, url: &SignedTileUrl, client: &Client) -> Result<(), RejectionKind> {
        if *client.id() != url.client {
            return Err(RejectionKind::UnknownCredential);
        }
        let credentials = client.credentials();
        let (generation, digest) = (credentials.generation(), credentials.current());
        if LAST_VERIFIED.with_borrow(|last| {
            last.as_ref()
                .is_some_and(|v| v.is_same(url, generation, digest))
        }) {
            return Ok(());
        }
        let mac = mac(&url.key, client, &url.scope, url.expires);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&url.sig)
            .map_err(|_| RejectionKind::UnknownCredential)?;
        LAST_VERIFIED.set(Some(Verified {
            key: url.key.clone(),
            client: url.client.clone(),
            scope: url.scope.clone(),
            expires: url.expires,
            sig: url.sig,
            generation,
            digest: *digest,
        }));
        Ok(())
    }
}

thread_local! {
    /// The last URL this thread verified, with the credential it was verified against. A
    /// map's tiles share one signature, so most requests present exactly these values
    /// again: they are compared (the signature in constant time) instead of hashed.
    static LAST_VERIFIED: RefCell<Option<Verified>> = const { RefCell::new(None) };
}

/// Every input of a signature that verified: the same inputs give the same signature.
struct Verified {
    /// Held, so that no other key can take its address while this entry stands.
    key: Arc<TileUrlKey>,
    client: ClientId,
    scope: TileUrlScope,
    expires: i64,
    sig: [u8; 32],
    generation: u64,
    digest: KeyDigest,
}

impl Verified {
    fn is_same(&self, url: &SignedTileUrl, generation: u64, digest: &KeyDigest) -> bool {
        let sig = bool::from(self.sig.ct_eq(&url.sig));
        let digest = self.digest.ct_eq(digest);
        sig & digest
            && Arc::ptr_eq(&self.key, &url.key)
            && self.expires == url.expires
            && self.generation == generation
            && self.client == url.client
            && self.scope == url.scope
    }
}

/// The keyed MAC of a URL's values and its client's current credential. Each value of
/// variable length is length-prefixed, so no two sets of values give the same input; the
/// input is kept short (about two SHA-256 blocks), since it is hashed on every request.
fn mac(key: &TileUrlKey, client: &Client, scope: &TileUrlScope, expires: i64) -> HmacSha256 {
    let mut mac = key.mac();
    let mut text = |bytes: &[u8]| {
        // Every value is shorter than a URL, which is at most a few KiB.
        mac.update(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        mac.update(bytes);
    };
    text(b"v1");
    text(key.kid().as_bytes());
    text(client.id().as_str().as_bytes());
    text(scope.api.as_bytes());
    for item in &scope.items {
        text(item.as_bytes());
    }
    let credentials = client.credentials();
    let mut fixed = [0u8; 8 + 4 + 4 + 4 + 8 + 32];
    fixed[..8].copy_from_slice(&expires.to_be_bytes());
    fixed[8..12].copy_from_slice(&scope.min_zoom.unwrap_or(u32::MAX).to_be_bytes());
    fixed[12..16].copy_from_slice(&scope.max_zoom.unwrap_or(u32::MAX).to_be_bytes());
    let items = u32::try_from(scope.items.len()).unwrap_or(u32::MAX);
    fixed[16..20].copy_from_slice(&items.to_be_bytes());
    fixed[20..28].copy_from_slice(&credentials.generation().to_be_bytes());
    fixed[28..].copy_from_slice(credentials.current().as_bytes());
    mac.update(&fixed);
    mac
}

fn signature(key: &TileUrlKey, client: &Client, scope: &TileUrlScope, expires: i64) -> [u8; 32] {
    mac(key, client, scope, expires)
        .finalize()
        .into_bytes()
        .into()
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, VALUE).to_string()
}

fn decode(raw: &str) -> Option<String> {
    let value = percent_decode_str(raw).decode_utf8().ok()?;
    (!value.is_empty()).then(|| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{
        Account, AccountId, ClientSpec, CredentialDigests, KeyDigest, Role, RoleSet,
    };
    use crate::clock::ManualClock;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00:10 UTC);

    fn client(secret: &str) -> Client {
        let acme = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::EVALUATOR]),
        )
        .unwrap();
        Client::build(
            ClientId::new("web").unwrap(),
            &ClientSpec::javascript("Web"),
            &acme,
            CredentialDigests::new(KeyDigest::of(secret)),
        )
        .unwrap()
    }

    fn signer() -> (TileUrlSigner, ManualClock) {
        let clock = ManualClock::new(NOW);
        let signer = TileUrlSigner::new(TileUrlKey::new("t1", &[3u8; 32]).unwrap())
            .clock(Arc::new(clock.clone()));
        (signer, clock)
    }

    #[test]
    fn expiries_round_up_to_the_bucket_so_urls_are_shared() {
        let (signer, clock) = signer();
        let web = client("k");
        let scope = TileUrlScope::new("WorldStreets");
        let a = signer.mint(&web, &scope, Duration::from_secs(3600));
        clock.advance(time::Duration::seconds(200));
        let b = signer.mint(&web, &scope, Duration::from_secs(3600));
        assert_eq!(a, b);
        assert_eq!(a.expires_at, datetime!(2026-06-01 13:10 UTC));
        assert!(!a.query.contains("gis_"));
        // Never more than a day, whatever is asked.
        let long = signer.mint(&web, &scope, Duration::from_secs(10 * 86_400));
        assert!(long.expires_at - clock.now() <= time::Duration::seconds(86_400 + 600));
    }

    #[test]
    fn a_url_verifies_for_its_client_until_it_expires() {
        let (signer, clock) = signer();
        let web = client("k");
        let scope = TileUrlScope::new("WorldStreets")
            .zoom(Some(1), Some(9))
            .items(["a,b", "é"]);
        let minted = signer.mint(&web, &scope, Duration::from_secs(60));
        let url = signer.parse(&format!("x=1&{}", minted.query), NOW).unwrap();
        assert_eq!(url.scope(), &scope);
        assert!(signer.verify(&url, &web).is_ok());
        assert_eq!(url.seconds_left(NOW), 590);
        assert_eq!(url.cache_lifetime(NOW), 589);
        assert_eq!(url.cache_lifetime(minted.expires_at), 0);
        clock.set(minted.expires_at);
        assert_eq!(
            signer.parse(&minted.query, minted.expires_at).unwrap_err(),
            RejectionKind::Expired
        );
    }

    #[test]
    fn a_regenerated_credential_or_an_altered_url_is_refused() {
        let (signer, _) = signer();
        let web = client("k");
        let minted = signer.mint(
            &web,
            &TileUrlScope::new("WorldStreets"),
            DEFAULT_TILE_URL_TTL,
        );
        let url = signer.parse(&minted.query, NOW).unwrap();
        assert_eq!(
            signer.verify(&url, &client("regenerated")),
            Err(RejectionKind::UnknownCredential)
        );
        let widened = minted.query.replace("api=WorldStreets", "api=WorldImagery");
        let url = signer.parse(&widened, NOW).unwrap();
        assert_eq!(
            signer.verify(&url, &web),
            Err(RejectionKind::UnknownCredential)
        );
        let zoomed = format!("zmax=3&{}", minted.query);
        let url = signer.parse(&zoomed, NOW).unwrap();
        assert!(signer.verify(&url, &web).is_err());
        // Verified once, then remembered: still only for the very same values.
        let url = signer.parse(&minted.query, NOW).unwrap();
        assert!(signer.verify(&url, &web).is_ok());
        assert!(signer.verify(&url, &web).is_ok());
        assert!(signer.verify(&url, &client("regenerated")).is_err());
        let url = signer.parse(&zoomed, NOW).unwrap();
        assert!(signer.verify(&url, &web).is_err());
        let mut forged = minted.query.clone();
        let at = forged.find("sig=").unwrap() + 4;
        let swap = if &forged[at..=at] == "A" { "B" } else { "A" };
        forged.replace_range(at..=at, swap);
        let url = signer.parse(&forged, NOW).unwrap();
        assert!(signer.verify(&url, &web).is_err());
    }

    #[test]
    fn malformed_repeated_and_unknown_key_parameters_are_refused() {
        let (signer, _) = signer();
        let web = client("k");
        let minted = signer.mint(
            &web,
            &TileUrlScope::new("WorldStreets"),
            DEFAULT_TILE_URL_TTL,
        );
        let q = &minted.query;
        for bad in [
            format!("{q}&sig=AAAA"),
            q.replace("exp=", "exp=x"),
            q.replace("cid=web&", ""),
            q.replace("sig=", "sig=%"),
            format!("zmin=-1&{q}"),
        ] {
            assert_eq!(
                signer.parse(&bad, NOW).unwrap_err(),
                RejectionKind::MalformedCredential,
                "{bad}"
            );
        }
        assert_eq!(
            signer
                .parse(&q.replace("kid=t1", "kid=t9"), NOW)
                .unwrap_err(),
            RejectionKind::UnknownCredential
        );
    }

    #[test]
    fn rotated_keys_verify_through_their_grace() {
        let (signer, clock) = signer();
        let web = client("k");
        let scope = TileUrlScope::new("WorldStreets");
        let old = signer.mint(&web, &scope, Duration::from_secs(3600));
        signer
            .rotate_key(
                TileUrlKey::new("t2", &[4u8; 32]).unwrap(),
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(signer.current_kid(), "t2");
        let url = signer.parse(&old.query, clock.now()).unwrap();
        assert!(signer.verify(&url, &web).is_ok());
        let later = clock.now() + time::Duration::seconds(61);
        assert_eq!(
            signer.parse(&old.query, later).unwrap_err(),
            RejectionKind::UnknownCredential
        );
        let new = signer.mint(&web, &scope, Duration::from_secs(3600));
        assert!(new.query.contains("kid=t2"));
    }
}
