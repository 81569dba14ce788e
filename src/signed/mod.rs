//! Signed tile URLs: a capability a client's account holder mints for one tile API
//! (optionally a zoom range and items), valid until an expiry rounded up to a bucket, so
//! that many visitors share the same URLs and a CDN the same cache entries.
//!
//! The URL carries no credential: `cid`, `api`, `zmin`, `zmax`, `items`, `exp`, `kid` and
//! `sig`, an HMAC-SHA-256 under a server [`TileUrlKey`] that also binds the client's
//! current credential. The layer takes it as a third credential beside the bearer token
//! and the API key ([`AuthLayer::signed_tile_urls`](crate::AuthLayer::signed_tile_urls)),
//! decides through the same policy (the client's origin rules give way to the URL's scope),
//! and lets the answer be cached publicly until the URL expires.
//!
//! ```
//! use gis_auth::signed::{TileUrlKey, TileUrlSigner};
//! use std::time::Duration;
//!
//! let signer = TileUrlSigner::new(TileUrlKey::generate("t1")?)
//!     .bucket(Duration::from_secs(300))?;
//! signer.rotate_key(TileUrlKey::generate("t2")?, Duration::from_secs(86_400))?;
//! assert_eq!(signer.current_kid(), "t2");
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

mod key;
mod signer;
mod template;

pub use key::TileUrlKey;
pub use signer::{
    DEFAULT_TILE_URL_BUCKET, DEFAULT_TILE_URL_TTL, MAX_TILE_URL_TTL, MintedQuery,
    SIGNED_URL_PARAMS, SignedTileUrl, TileUrlSigner, is_signed_url_param,
};
pub use template::{
    MAX_TILE_URL_ITEMS, MAX_TILE_ZOOM, TileTemplate, TileUrlError, TileUrlRequest, is_tile_route,
    mint_tile_template, tile_route,
};
