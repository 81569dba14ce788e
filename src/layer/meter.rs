//! [`Meter`]: charging a request's cost once its handler knows it, for APIs priced by their
//! body (a batch of elevation points, a list of addresses to geocode).
//!
//! The layer charges what the route's [`Cost`](crate::policy::Cost) says before the handler
//! runs; on an API built with [`Api::handler_meter`](crate::policy::Api::handler_meter) it
//! also puts a [`Meter`] into the request's extensions, through which the handler charges
//! the rest against the same quota, with the same atomic increment-and-compare. The quota
//! headers of the response then tell what is left after both charges.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::Response;
use time::OffsetDateTime;

use super::Config;
use super::service::fail_closed;
use crate::client::{AccountId, ClientId, Restriction};
use crate::limits::Charge;
use crate::policy::{Decision, Finding, QuotaState, Rule, seconds_until};
use crate::rejection::Rejection;
use crate::rule::RejectionKind;

/// Charges more of a request's cost against its account's daily quota, from its handler.
///
/// Found in the request's extensions on routes whose API has
/// [`handler_meter`](crate::policy::Api::handler_meter) set. Cloning shares the meter.
#[derive(Clone)]
pub struct Meter {
    shared: Arc<Shared>,
}

struct Shared {
    config: Arc<Config>,
    account: AccountId,
    client: ClientId,
    daily_quota: Option<u64>,
    enforce: bool,
    now: OffsetDateTime,
    decision: Decision,
    /// The quota after the latest charge, for the response's headers.
    quota: Mutex<Option<QuotaState>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("account", &self.shared.account)
            .field("client", &self.shared.client)
            .field("quota", &self.quota())
            .finish_non_exhaustive()
    }
}

/// A charge the meter refused: over the quota (429 `quota_exceeded`) or a failing counter
/// (503). [`into_response`](Refused::into_response) is the answer the layer itself would
/// give, headers included.
#[derive(Debug)]
pub struct Refused {
    rejection: Rejection,
    response: Response<Bytes>,
}

impl Refused {
    /// Why.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The response to send, rendered like the layer's own refusals.
    pub fn into_response(self) -> Response<Bytes> {
        self.response
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.rejection.fmt(f)
    }
}

impl std::error::Error for Refused {}

impl Meter {
    pub(crate) fn new(
        config: Arc<Config>,
        resolved: &crate::store::Resolved,
        decision: &Decision,
        now: OffsetDateTime,
        quota: Option<QuotaState>,
    ) -> Self {
        let client = &resolved.client;
        Meter {
            shared: Arc::new(Shared {
                config,
                account: resolved.account.id.clone(),
                client: client.id().clone(),
                daily_quota: resolved.account.daily_quota,
                enforce: !client.shadow().contains(Restriction::Quota),
                now,
                decision: Decision {
                    denied: None,
                    shadowed: Vec::new(),
                    api: decision.api.clone(),
                    roles: decision.roles.clone(),
                    item: decision.item.clone(),
                    vary_origin: decision.vary_origin,
                },
                quota: Mutex::new(quota),
            }),
        }
    }

    /// The account's quota after the latest charge, `None` when it has no quota.
    pub fn quota(&self) -> Option<QuotaState> {
        *self
            .shared
            .quota
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Charges `cost` more milli-transactions ([`TRANSACTION`](crate::policy::TRANSACTION)
    /// is one) to the request's account, on the UTC day the request was admitted. The
    /// request is not counted again in the statistics; its cost is.
    ///
    /// # Errors
    /// [`Refused`] with 429 `quota_exceeded` (and `Retry-After`) when the cost does not fit
    /// what is left of an enforced quota, nothing charged; 503 when the counter fails or
    /// stalls past the layer's budget.
    pub async fn charge(&self, cost: u64) -> Result<(), Refused> {
        let shared = &*self.shared;
        let config = &shared.config;
        let limit = shared
            .daily_quota
            .map(|q| q.saturating_mul(crate::policy::TRANSACTION));
        let charge = Charge {
            limit,
            enforce: shared.enforce,
            requests: 0,
            ..Charge::new(&shared.account, &shared.client, shared.now.date(), cost)
        };
        let charged = fail_closed(config, "usage counter", config.usage.charge(&charge))
            .await
            .map_err(|rejection| self.refuse(rejection))?;
        let reset = crate::policy::next_utc_midnight(shared.now);
        let quota = limit.map(|limit| QuotaState {
            limit,
            used: charged.used,
            reset,
        });
        *shared.quota.lock().unwrap_or_else(PoisonError::into_inner) = quota;
        if charged.over {
            let reason = format!(
                "the account's daily quota of {} transactions is used up",
                shared.daily_quota.unwrap_or_default()
            );
            if !charged.admitted {
                let mut decision = shared.decision.clone();
                decision.denied = Some(Finding {
                    rule: Rule::Quota,
                    kind: RejectionKind::QuotaExceeded,
                    reason,
                });
                let now = config.clock.now().to_offset(time::UtcOffset::UTC);
                let mut rejection = decision
                    .rejection()
                    .unwrap_or_else(|| RejectionKind::QuotaExceeded.into())
                    .with_retry_after(seconds_until(reset, now));
                if let Some(q) = quota {
                    rejection = rejection.with_quota(q);
                }
                tracing::debug!(
                    client = %shared.client,
                    rule = Rule::Quota.as_str(),
                    "request refused by its handler's charge"
                );
                return Err(self.refuse(rejection));
            }
            tracing::info!(
                target: "gis_auth::shadow",
                client = %shared.client,
                account = %shared.account,
                rule = Rule::Quota.as_str(),
                reason = %reason,
                "report-only restriction would have refused the request"
            );
        }
        Ok(())
    }

    fn refuse(&self, rejection: Rejection) -> Refused {
        let response = self.shared.config.render(&rejection);
        Refused {
            rejection,
            response,
        }
    }
}
