//! The usage counters this tool reads: the ones servers share in Redis (`--redis URL`, with
//! the `redis` feature). A server on the default in-memory counter keeps its counts, and
//! its clients' last use, in its own process, out of this tool's reach.

use std::collections::BTreeMap;
use std::sync::Arc;

use gis_auth::client::{AccountId, ClientId};
use gis_auth::limits::UsageCounter;
use time::OffsetDateTime;

use crate::output::{Failure, time_text};

/// The shared usage counters, if the command was told where they are.
#[derive(Clone, Default)]
pub struct Counters {
    shared: Option<(&'static str, Arc<dyn UsageCounter>)>,
}

/// When an account's clients were last used, as far as this tool can tell.
pub enum LastUse {
    /// No shared counter was given: not known here.
    Unknown,
    /// Each client's last use, to the minute; a client absent was never used.
    Known(BTreeMap<ClientId, OffsetDateTime>),
}

impl LastUse {
    /// The last use of `client` for its JSON representation (`null` when never or unknown).
    pub fn of(&self, client: &ClientId) -> Option<OffsetDateTime> {
        match self {
            LastUse::Unknown => None,
            LastUse::Known(known) => known.get(client).copied(),
        }
    }

    /// The last use of `client` as a table shows it.
    pub fn text(&self, client: &ClientId) -> String {
        match self {
            LastUse::Unknown => "not known here".to_owned(),
            LastUse::Known(known) => match known.get(client) {
                Some(at) => time_text(Some(*at)),
                None => "never".to_owned(),
            },
        }
    }
}

impl Counters {
    /// The counters at `redis` (under `prefix`), or none.
    pub async fn open(redis: Option<&str>, prefix: Option<&str>) -> Result<Counters, Failure> {
        Ok(Counters {
            shared: source(redis, prefix).await?,
        })
    }

    /// The counter to read, and its name (`redis`), if one was given.
    pub fn shared(&self) -> Option<(&'static str, &Arc<dyn UsageCounter>)> {
        self.shared.as_ref().map(|(name, counter)| (*name, counter))
    }

    /// When the clients of `account` were last used.
    pub async fn last_used(&self, account: &AccountId) -> Result<LastUse, Failure> {
        match &self.shared {
            None => Ok(LastUse::Unknown),
            Some((_, counter)) => Ok(LastUse::Known(counter.last_used(account).await?)),
        }
    }
}

#[cfg(feature = "redis")]
async fn source(
    redis: Option<&str>,
    prefix: Option<&str>,
) -> Result<Option<(&'static str, Arc<dyn UsageCounter>)>, Failure> {
    let Some(url) = redis else {
        if prefix.is_some() {
            crate::usage_error("--redis-prefix goes with --redis");
        }
        return Ok(None);
    };
    // The URL may hold a password: it is never echoed.
    let mut counter = gis_auth::limits::RedisUsageCounter::connect(url)
        .await
        .map_err(|e| Failure::new(format!("cannot read the Redis usage counters: {e}")))?;
    if let Some(prefix) = prefix {
        counter = counter.key_prefix(prefix);
    }
    Ok(Some(("redis", Arc::new(counter))))
}

#[cfg(not(feature = "redis"))]
async fn source(
    redis: Option<&str>,
    prefix: Option<&str>,
) -> Result<Option<(&'static str, Arc<dyn UsageCounter>)>, Failure> {
    match (redis, prefix) {
        (None, None) => Ok(None),
        // The URL may hold a password: it is never echoed.
        _ => Err(Failure::new(
            "invalid redis: reading Redis usage counters needs gis-auth built with the \
             `redis` feature (cargo install gis-auth --features cli,redis)",
        )),
    }
}
