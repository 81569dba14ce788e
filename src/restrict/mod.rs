//! Restrictions on where a client's requests may come from: allowed origins (JavaScript
//! clients), IP rules (both kinds), and the caller's address behind trusted proxies.
//!
//! Rules of different kinds combine with AND; rules within a kind with OR.
//!
//! ```
//! use gis_auth::restrict::{IpRules, OriginRules, RequestOrigin};
//!
//! let origins = OriginRules::compile(["https://*.example.com"]).unwrap();
//! let ips = IpRules::compile(["203.0.113.0/24"]).unwrap();
//! let from = RequestOrigin::from_origin_header("https://maps.example.com").unwrap();
//! assert!(origins.allows(&from) && ips.allows("203.0.113.5".parse().unwrap()));
//! ```

mod ip;
mod origin;
mod peer;

pub use ip::{IpRule, IpRules, MAX_IP_RULES};
pub use origin::{MAX_ORIGIN_PATTERNS, OriginPattern, OriginRules, RequestOrigin, Scheme};
pub(crate) use peer::peer_ip;
pub use peer::{ForwardedHeader, PeerSource, TrustedProxies};
