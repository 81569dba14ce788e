//! [`LayerEvents`]: what the layer tells its [`EventSink`] as requests go by: an account's
//! quota at 80 % and at 100 % (from each charge's result and the account's plan, numbers
//! the layer holds already) and a client or account expiring within
//! [`EXPIRY_NOTICE`](crate::events::EXPIRY_NOTICE) (checked when the client is used: a
//! client not used in its last week is not told). The watches tell each once; nothing here
//! waits.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::events::EventSink;
use crate::events::watch::{ExpiryWatch, QuotaUse, QuotaWatch};
use crate::limits::Charged;
use crate::policy::daily_limit;
use crate::store::Resolved;

/// The layer's sink and the watches that tell each event once.
pub(crate) struct LayerEvents {
    sink: Arc<dyn EventSink>,
    quota: QuotaWatch,
    expiry: ExpiryWatch,
}

impl LayerEvents {
    pub(crate) fn new(sink: Arc<dyn EventSink>) -> Self {
        Self {
            sink,
            quota: QuotaWatch::default(),
            expiry: ExpiryWatch::default(),
        }
    }

    /// After a charge of `who`'s request at `now`: the quotas it took past a threshold
    /// (a charge refused leaves the usage as it was, and so tells nothing).
    #[inline]
    pub(crate) fn charged(&self, who: &Resolved, charged: &Charged, now: OffsetDateTime) {
        let plan = &who.account.plan;
        let usage = QuotaUse {
            daily: plan.daily_quota.map(|q| (charged.used, daily_limit(q))),
            monthly: plan
                .monthly_quota
                .map(|q| (charged.monthly_used, daily_limit(q))),
        };
        if usage.daily.is_some() || usage.monthly.is_some() {
            self.quota.observe(&*self.sink, &who.account.id, usage, now);
        }
    }

    /// A request of `who` admitted at `now`: its client's and its account's expiry.
    #[inline]
    pub(crate) fn used(&self, who: &Resolved, now: OffsetDateTime) {
        let (client, account) = (who.client.expires_at(), who.account.plan.expires_at);
        if client.is_some() || account.is_some() {
            self.expiry.observe(
                &*self.sink,
                &who.account.id,
                who.client.id(),
                client,
                account,
                now,
            );
        }
    }
}
