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
use time::OffsetDateTime;

use super::key::{TileKeyRing, TileUrlKey};
use crate::client::{Client, ClientId, KeyDigest, same_secret};
use crate::clock::{Clock, SystemClock};
use crate::credentials::query_pieces;
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
/// Cloning is cheap: clones share the parsed values.
#[derive(Clone)]
pub struct SignedTileUrl {
    parsed: Arc<ParsedUrl>,
}

/// What a signed URL's query says, as parsed once.
struct ParsedUrl {
    /// The query it was parsed from, to know it again.
    query: Box<str>,
    /// Where the signature's value starts in `query`: what comes before it is public.
    sig_at: usize,
    /// Whether the query holds nothing but the signed URL's parameters.
    only_signed: bool,
    client: ClientId,
    scope: TileUrlScope,
    expires: i64,
    key: Arc<TileUrlKey>,
    sig: [u8; 32],
}

impl std::fmt::Debug for SignedTileUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = &*self.parsed;
        f.debug_struct("SignedTileUrl")
            .field("client", &url.client)
            .field("scope", &url.scope)
            .field("expires", &url.expires)
            .field("kid", &url.key.kid())
            .finish_non_exhaustive()
    }
}

impl SignedTileUrl {
    /// The client the URL was minted for.
    pub fn client(&self) -> &ClientId {
        &self.parsed.client
    }

    /// What it covers.
    pub fn scope(&self) -> &TileUrlScope {
        &self.parsed.scope
    }

    /// When it stops working.
    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.parsed.expires)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whole seconds left at `now` (0 once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> u64 {
        u64::try_from(self.parsed.expires.saturating_sub(now.unix_timestamp())).unwrap_or(0)
    }

    /// The longest a shared cache may keep an answer to this URL at `now`, in seconds: the
    /// whole seconds left, less one, so that a cache counting whole seconds (and serving
    /// through the last one, as nginx does) stops before the URL expires.
    pub fn cache_lifetime(&self, now: OffsetDateTime) -> u64 {
        self.seconds_left(now).saturating_sub(1)
    }

    /// Whether the query holds nothing but this URL's [`SIGNED_URL_PARAMS`]: once they
    /// are removed, the wrapped service sees no query at all.
    pub fn has_only_signed_params(&self) -> bool {
        self.parsed.only_signed
    }

    /// The scope, taken out.
    pub fn into_scope(self) -> TileUrlScope {
        match Arc::try_unwrap(self.parsed) {
            Ok(url) => url.scope,
            Err(shared) => shared.scope.clone(),
        }
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
        // The tiles of one map share one query: the one this thread verified last is
        // taken as parsed then, and only its key and expiry are checked again.
        let again = LAST_VERIFIED.with_borrow(|last| {
            last.as_ref()
                .filter(|v| same_query(&v.url, query))
                .map(|v| v.url.clone())
        });
        if let Some(parsed) = again {
            if !self.with_live_key(parsed.key.kid(), now, |key| Arc::ptr_eq(key, &parsed.key))? {
                return Err(RejectionKind::UnknownCredential);
            }
            self.check_expiry(parsed.expires, now)?;
            return Ok(SignedTileUrl { parsed });
        }
        let mut found: [Option<&str>; 8] = [None; 8];
        let mut only_signed = true;
        let mut sig_at = 0;
        for (name, piece) in query_pieces(query) {
            // After the `=`, or nothing when there is none.
            let value = piece.get(name.len() + 1..).unwrap_or("");
            match param_index(name) {
                Some(at) if found[at].replace(value).is_some() => return malformed(),
                Some(7) => {
                    sig_at = (value.as_ptr() as usize).saturating_sub(query.as_ptr() as usize)
                }
                Some(_) => {}
                None => only_signed = false,
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
        let key = self.with_live_key(kid, now, Arc::clone)?;
        self.check_expiry(expires, now)?;
        let parsed = ParsedUrl {
            query: query.into(),
            sig_at,
            only_signed,
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
        };
        Ok(SignedTileUrl {
            parsed: Arc::new(parsed),
        })
    }

    /// `use_key` applied to the key `kid`, if it verifies at `now` (`UnknownCredential`
    /// otherwise), under the ring's read lock.
    fn with_live_key<T>(
        &self,
        kid: &str,
        now: OffsetDateTime,
        use_key: impl FnOnce(&Arc<TileUrlKey>) -> T,
    ) -> Result<T, RejectionKind> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .verifying(kid, now)
            .map(use_key)
            .ok_or(RejectionKind::UnknownCredential)
    }

    /// Refuses an expiry that has passed at `now` (`Expired`) or lies further ahead than
    /// any minted one (`UnknownCredential`).
    fn check_expiry(&self, expires: i64, now: OffsetDateTime) -> Result<(), RejectionKind> {
        let now_s = now.unix_timestamp();
        if expires <= now_s {
            return Err(RejectionKind::Expired);
        }
        let furthest = i64::try_from(MAX_TILE_URL_TTL.as_secs().saturating_add(self.bucket))
            .unwrap_or(i64::MAX);
        if expires - now_s > furthest {
            return Err(RejectionKind::UnknownCredential);
        }
        Ok(())
    }

    /// Checks `url`'s signature against `client` as it is now, in constant time: a URL of
    /// another client, or minted before the client's credential was regenerated, is
    /// refused (`UnknownCredential`).
    pub fn verify(&self, url: &SignedTileUrl, client: &Client) -> Result<(), RejectionKind> {
        let parsed = &url.parsed;
        if *client.id() != parsed.client {
            return Err(RejectionKind::UnknownCredential);
        }
        let credentials = client.credentials();
        let (generation, digest) = (credentials.generation(), credentials.current());
        if LAST_VERIFIED.with_borrow(|last| {
            last.as_ref()
                .is_some_and(|v| v.is_same(parsed, generation, digest))
        }) {
            return Ok(());
        }
        let mac = mac(&parsed.key, client, &parsed.scope, parsed.expires);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&parsed.sig)
            .map_err(|_| RejectionKind::UnknownCredential)?;
        LAST_VERIFIED.set(Some(Verified {
            url: parsed.clone(),
            generation,
            digest: *digest,
        }));
        Ok(())
    }
}

thread_local! {
    /// The last URL this thread verified, with the credential it was verified against. A
    /// map's tiles share one query, so most requests present exactly this one again: its
    /// text is compared (in constant time: it holds the signature) instead of parsed, and
    /// the credential instead of hashing the values again.
    static LAST_VERIFIED: RefCell<Option<Verified>> = const { RefCell::new(None) };
}

/// A URL whose signature verified, and the credential it bound: the same values under the
/// same credential give the same signature.
struct Verified {
    /// Held, so that no other URL can take its address while this entry stands.
    url: Arc<ParsedUrl>,
    generation: u64,
    digest: KeyDigest,
}

impl Verified {
    fn is_same(&self, url: &Arc<ParsedUrl>, generation: u64, digest: &KeyDigest) -> bool {
        self.digest.ct_eq(digest) && Arc::ptr_eq(&self.url, url) && self.generation == generation
    }
}

/// Whether `query` is the text `url` was parsed from. What comes before the signature is
/// public and compared as it comes; the signature and what follows it in constant time.
fn same_query(url: &ParsedUrl, query: &str) -> bool {
    let (known, query) = (url.query.as_bytes(), query.as_bytes());
    if known.len() != query.len() {
        return false;
    }
    let (public, secret) = known.split_at(url.sig_at.min(known.len()));
    let (given_public, given_secret) = query.split_at(public.len());
    public == given_public && same_secret(secret, given_secret)
}

/// The keyed MAC of a URL's values and its client's current credential. Each value of
/// variable length is length-prefixed, so no two sets of values give the same input; the
/// input is kept short (under 120 bytes for a URL without items: two SHA-256 blocks with
/// its padding, after the key's), since it is hashed for every URL that is not the last
/// one seen.
fn mac(key: &TileUrlKey, client: &Client, scope: &TileUrlScope, expires: i64) -> HmacSha256 {
    let mut mac = key.mac();
    // The format's version.
    mac.update(&[1]);
    let mut text = |bytes: &[u8]| {
        // Two bytes of length for the values of a URL (at most a few KiB); 0xFFFF then
        // eight bytes for any longer one, so every length has one form.
        match u16::try_from(bytes.len()) {
            Ok(len) if len < u16::MAX => mac.update(&len.to_be_bytes()),
            _ => {
                mac.update(&u16::MAX.to_be_bytes());
                mac.update(&(bytes.len() as u64).to_be_bytes());
            }
        }
        mac.update(bytes);
    };
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

/// Whether a raw query parameter name is one of a signed URL's [`SIGNED_URL_PARAMS`]
/// (which the layer removes before the wrapped service runs).
pub fn is_signed_url_param(name: &[u8]) -> bool {
    param_index(name).is_some()
}

/// Where `name` stands in [`SIGNED_URL_PARAMS`], if it is one of them.
fn param_index(name: &[u8]) -> Option<usize> {
    // Byte patterns, compared in line: this runs for every parameter of every signed URL.
    Some(match *name {
        [b'c', b'i', b'd'] => 0,
        [b'a', b'p', b'i'] => 1,
        [b'z', b'm', b'i', b'n'] => 2,
        [b'z', b'm', b'a', b'x'] => 3,
        [b'i', b't', b'e', b'm', b's'] => 4,
        [b'e', b'x', b'p'] => 5,
        [b'k', b'i', b'd'] => 6,
        [b's', b'i', b'g'] => 7,
        _ => return None,
    })
}

/// A value, percent-decoded (values without a `%` are taken as they are); `None` when it
/// is empty or not UTF-8 once decoded.
fn decode(raw: &str) -> Option<String> {
    if !raw.as_bytes().contains(&b'%') {
        return (!raw.is_empty()).then(|| raw.to_owned());
    }
    let value = percent_decode_str(raw).decode_utf8().ok()?;
    (!value.is_empty()).then(|| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signed_url_parameter_is_found_at_its_place() {
        for (at, name) in SIGNED_URL_PARAMS.iter().enumerate() {
            assert_eq!(param_index(name.as_bytes()), Some(at), "{name}");
        }
        assert_eq!(param_index(b"apikey"), None);
        assert_eq!(param_index(b"SIG"), None);
        assert!(is_signed_url_param(b"exp") && !is_signed_url_param(b"expires"));
    }

    #[test]
    fn a_query_is_known_again_only_byte_for_byte() {
        let signer = TileUrlSigner::new(TileUrlKey::new("t1", &[9u8; 32]).unwrap());
        let query = "cid=web&api=WorldStreets&exp=1800000000&kid=t1&sig=abc&x=1";
        let url = signer.parse(query, datetime!(2026-12-04 00:00 UTC));
        assert!(url.is_err(), "a short signature is malformed");
        let parsed = ParsedUrl {
            query: query.into(),
            sig_at: query.find("sig=").unwrap() + 4,
            only_signed: false,
            client: ClientId::new("web").unwrap(),
            scope: TileUrlScope::new("WorldStreets"),
            expires: 1_800_000_000,
            key: signer.ring().current().clone(),
            sig: [0; 32],
        };
        assert!(same_query(&parsed, query));
        for at in 0..query.len() {
            let mut changed = query.as_bytes().to_vec();
            changed[at] ^= 1;
            let changed = String::from_utf8(changed).unwrap();
            assert!(!same_query(&parsed, &changed), "byte {at}");
        }
        assert!(!same_query(&parsed, &query[1..]));
        assert!(!same_query(&parsed, ""));
    }
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
