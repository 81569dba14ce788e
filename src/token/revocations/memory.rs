//! [`InMemoryRevocations`]: the deny list of one instance, pruned on its clock.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Revocations;
use crate::clock::{Clock, SystemClock};
use crate::error::BackendError;

/// The revoked tokens, by `jti` and by expiry.
#[derive(Debug, Default)]
struct DenyList {
    by_jti: HashMap<Box<str>, i64>,
    by_expiry: BTreeSet<(i64, Box<str>)>,
}

impl DenyList {
    /// Forgets the tokens expired at `now` (Unix seconds).
    fn prune(&mut self, now: i64) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, jti)) = self.by_expiry.pop_first() {
                self.by_jti.remove(&jti);
            }
        }
    }

    fn first_expiry(&self) -> Option<i64> {
        self.by_expiry.first().map(|(exp, _)| *exp)
    }
}

/// Revoked tokens in this process's memory: a lookup is one hash probe under a read lock,
/// and a token is forgotten once its `exp` has passed on the list's clock (at the next
/// revocation or lookup after it).
///
/// ```
/// use gis_auth::token::{InMemoryRevocations, Revocations};
///
/// let list = InMemoryRevocations::new();
/// assert_eq!(list.is_revoked_now("abc").unwrap().unwrap(), false);
/// assert!(list.is_empty());
/// ```
pub struct InMemoryRevocations {
    list: RwLock<DenyList>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for InMemoryRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRevocations")
            .field("held", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for InMemoryRevocations {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryRevocations {
    /// An empty list on the system clock.
    pub fn new() -> Self {
        Self {
            list: RwLock::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Decides which revocations have expired on `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many revoked tokens the list holds.
    pub fn len(&self) -> usize {
        self.list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_jti
            .len()
    }

    /// Whether the list holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `jti` until `expires_at`, forgetting what has expired; nothing is added for a
    /// token already expired.
    pub(crate) fn insert(&self, jti: &str, expires_at: OffsetDateTime) {
        let now = self.clock.now().unix_timestamp();
        let exp = expires_at.unix_timestamp();
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        list.prune(now);
        if exp <= now || list.by_jti.contains_key(jti) {
            return;
        }
        list.by_jti.insert(jti.into(), exp);
        list.by_expiry.insert((exp, jti.into()));
    }

    /// Whether `jti` is held, forgetting first what has expired.
    fn contains(&self, jti: &str) -> bool {
        let now = {
            let list = self.list.read().unwrap_or_else(PoisonError::into_inner);
            // The common case: nothing revoked, and no clock read.
            let Some(first) = list.first_expiry() else {
                return false;
            };
            let now = self.clock.now().unix_timestamp();
            if first > now {
                return list.by_jti.contains_key(jti);
            }
            now
        };
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        list.prune(now);
        list.by_jti.contains_key(jti)
    }
}

#[async_trait]
impl Revocations for InMemoryRevocations {
    fn is_revoked_now(&self, jti: &str) -> Option<Result<bool, BackendError>> {
        Some(Ok(self.contains(jti)))
    }

    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), BackendError> {
        self.insert(jti, expires_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-04 10:00 UTC);

    fn list() -> (InMemoryRevocations, ManualClock) {
        let clock = ManualClock::new(NOW);
        (
            InMemoryRevocations::new().clock(Arc::new(clock.clone())),
            clock,
        )
    }

    fn revoked(list: &InMemoryRevocations, jti: &str) -> bool {
        list.is_revoked_now(jti).unwrap().unwrap()
    }

    #[test]
    fn a_token_is_held_until_its_expiry_and_then_forgotten() {
        let (list, clock) = list();
        list.insert("short", NOW + time::Duration::seconds(60));
        list.insert("long", NOW + time::Duration::seconds(3600));
        assert!(revoked(&list, "short") && revoked(&list, "long"));
        assert!(!revoked(&list, "other"));
        assert_eq!(list.len(), 2);
        clock.advance(time::Duration::seconds(59));
        assert!(revoked(&list, "short"));
        clock.advance(time::Duration::seconds(1));
        assert!(!revoked(&list, "short"));
        assert!(revoked(&list, "long"));
        assert_eq!(list.len(), 1, "the expired token is forgotten");
        clock.advance(time::Duration::seconds(3540));
        list.insert("later", NOW + time::Duration::seconds(7200));
        assert_eq!(list.len(), 1, "pruned on insert as well");
    }

    #[test]
    fn expired_and_repeated_revocations_add_nothing() {
        let (list, _) = list();
        list.insert("gone", NOW);
        assert!(list.is_empty());
        list.insert("twice", NOW + time::Duration::seconds(60));
        list.insert("twice", NOW + time::Duration::seconds(600));
        assert_eq!(list.len(), 1);
        let held = list.list.read().unwrap();
        assert_eq!(held.by_expiry.len(), 1);
    }
}
