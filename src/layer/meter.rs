//! [`Meter`]: charging a request's cost once its handler knows it, for APIs priced by their
//! body (a batch of elevation points, a list of addresses to geocode).
//!
//! The layer charges what the route's [`Cost`](crate::policy::Cost) says before the handler
//! runs; on an API built with [`Api::handler_meter`](crate::policy::Api::handler_meter) it
//! also puts a [`Meter`] into the request's extensions, through which the handler charges
//! the rest against the same quota, with the same atomic increment-and-compare. The quota
//! headers of the response then tell what is left after both charges. The verdict on each
//! charge is the policy's quota rule, the same one the layer's first charge meets.
//!
//! ```
//! use gis_auth::layer::{Meter, MeterRefusal};
//!
//! // A handler priced by its body charges the rest once it knows it.
//! async fn elevation(meter: Meter, points: u64) -> Result<(), MeterRefusal> {
//!     meter.charge(points * 10).await
//! }
//! # let _ = elevation;
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use time::OffsetDateTime;

use super::budget::fail_closed;
use super::config::{Config, report_shadowed};
use super::response::LatestQuota;
use crate::client::Restriction;
use crate::limits::Charge;
use crate::policy::{
    Decision, ErrorFormat, QuotaFacts, QuotaState, Rule, daily_limit, decide_quota,
};
use crate::rejection::{Denial, Rejection};
use crate::store::Resolved;

/// Charges more of a request's cost against its account's quotas, from its handler.
///
/// Found in the request's extensions on routes whose API has
/// [`handler_meter`](crate::policy::Api::handler_meter) set. Cloning shares the meter.
#[derive(Clone)]
pub struct Meter {
    metered: Arc<MeteredRequest>,
}

/// The admitted request a meter charges for.
struct MeteredRequest {
    config: Arc<Config>,
    who: Resolved,
    /// When the request was admitted: its quota day.
    now: OffsetDateTime,
    /// The admission's decision, without its findings: each charge is decided on it.
    decision: Decision,
    /// The quota after the latest charge, for the response's headers.
    quota: Arc<LatestQuota>,
    /// How the API's refusals are written.
    format: ErrorFormat,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("account", &self.metered.who.account.id)
            .field("client", self.metered.who.client.id())
            .field("quota", &self.quota())
            .finish_non_exhaustive()
    }
}

/// A charge the meter refused: over the quota (429 `quota_exceeded`) or a failing counter
/// (503). [`into_response`](MeterRefusal::into_response) is the answer the layer itself
/// would give, headers included.
#[derive(Debug)]
pub struct MeterRefusal {
    rejection: Rejection,
    response: Response<Bytes>,
}

impl MeterRefusal {
    /// Why.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The response to send, rendered like the layer's own refusals.
    pub fn into_response(self) -> Response<Bytes> {
        self.response
    }
}

impl std::fmt::Display for MeterRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.rejection.fmt(f)
    }
}

impl std::error::Error for MeterRefusal {}

impl Meter {
    /// A meter for a request admitted at `now` under `decision`, its quota shared with the
    /// response through `quota`.
    pub(crate) fn new(
        config: Arc<Config>,
        who: &Resolved,
        decision: &Decision,
        now: OffsetDateTime,
        quota: Arc<LatestQuota>,
        format: ErrorFormat,
    ) -> Self {
        let decision = Decision {
            api: decision.api.clone(),
            roles: decision.roles.clone(),
            item: decision.item.clone(),
            vary_origin: decision.vary_origin,
            ..Decision::allowed()
        };
        Meter {
            metered: Arc::new(MeteredRequest {
                config,
                who: who.clone(),
                now,
                decision,
                quota,
                format,
            }),
        }
    }

    /// The account's quota after the latest charge, `None` when it has no quota.
    pub fn quota(&self) -> Option<QuotaState> {
        self.metered.quota.get()
    }

    /// Charges `cost` more milli-transactions ([`TRANSACTION`](crate::policy::TRANSACTION)
    /// is one) to the request's account, on the UTC day the request was admitted. The
    /// request is not counted again in the statistics; its cost is.
    ///
    /// # Errors
    /// [`MeterRefusal`] with 429 `quota_exceeded` (and `Retry-After`) when the cost does not
    /// fit what is left of an enforced quota, nothing charged; 503 when the counter fails or
    /// stalls past the layer's budget.
    pub async fn charge(&self, cost: u64) -> Result<(), MeterRefusal> {
        let metered = &*self.metered;
        let (config, who) = (&metered.config, &metered.who);
        let charge = Charge {
            limit: who.account.plan.daily_quota.map(daily_limit),
            monthly_limit: who.account.plan.monthly_quota.map(daily_limit),
            enforce: !who.client.shadow().contains(Restriction::Quota),
            requests: 0,
            api: metered.decision.api.as_deref(),
            ..Charge::new(&who.account.id, who.client.id(), metered.now.date(), cost)
        };
        let charged = fail_closed(config, "usage counter", config.usage.charge(&charge))
            .await
            .map_err(|rejection| self.refuse(rejection))?;
        let mut decision = metered.decision.clone();
        let usage = QuotaFacts::Charged {
            used: charged.used,
            monthly_used: charged.monthly_used,
            over_daily: charged.over,
            over_monthly: charged.over_monthly,
        };
        decide_quota(&mut decision, &who.client, &who.account, usage, metered.now);
        if let Some(events) = &config.events {
            events.charged(who, &charged, metered.now);
        }
        metered.quota.set(decision.quota);
        match decision.allowed_or_denial() {
            Ok(decision) => {
                report_shadowed(who, &decision);
                Ok(())
            }
            Err(Denial { rejection, .. }) => {
                let now = config.clock.now().to_offset(time::UtcOffset::UTC);
                tracing::debug!(
                    client = %who.client.id(),
                    rule = Rule::Quota.as_str(),
                    "request refused by its handler's charge"
                );
                Err(self.refuse(rejection.retry_at_quota_reset(now)))
            }
        }
    }

    fn refuse(&self, rejection: Rejection) -> MeterRefusal {
        let rejection = rejection.in_format(self.metered.format);
        let response = self.metered.config.render(&rejection);
        MeterRefusal {
            rejection,
            response,
        }
    }
}
