//! The two drivers of the one check pipeline (`check.rs`): [`drive_now`] answers each step
//! with the backends' `_now` methods inside `call` (no future is boxed and no timer set),
//! and stops at the first step a backend cannot answer at once; [`drive`] goes on from
//! there, waiting for each backend within the layer's time budget.
//!
//! ```
//! use std::future::Future;
//! use std::pin::pin;
//! use std::sync::Arc;
//! use std::task::{Context, Poll, Waker};
//! use gis_auth::AuthLayer;
//! use gis_auth::client::{Account, AccountId, Role, RoleSet};
//! use gis_auth::policy::{Api, RouteTable};
//! use gis_auth::store::InMemoryStore;
//! use http::{Method, Request, Response};
//! use tower::{Service, service_fn};
//! use tower_layer::Layer;
//!
//! let store = Arc::new(InMemoryStore::new());
//! let made = store.open_account(Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::EVALUATOR]))?)?;
//! let routes = RouteTable::new().route(Method::GET, "/tiles/{z}/{x}/{y}.png",
//!     Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true))?;
//! let mut svc = AuthLayer::new(store, routes).layer(service_fn(|_: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(()))
//! }));
//! let key = made.javascript.credential.expose();
//! let req = Request::get(format!("/tiles/1/2/3.png?apikey={key}")).body(())?;
//! // The in-memory store and counter answer inside `call`: nothing is left to wait for.
//! let mut answer = pin!(svc.call(req));
//! let polled = answer.as_mut().poll(&mut Context::from_waker(Waker::noop()));
//! assert!(matches!(polled, Poll::Ready(Ok(res)) if res.status() == 200));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Request;

use super::budget::{backend_failed, fail_closed, within_budget};
use super::check::{Check, Conclusion, HeldCheck, Refusal, Step, Verdict};
use super::config::Config;

/// A check that waits for a backend: it gives the request back, admitted or not.
pub(crate) type CheckFuture<B> = Pin<Box<dyn Future<Output = (Request<B>, Conclusion)> + Send>>;

/// Where [`drive_now`] got to.
pub(crate) enum Driven {
    /// The check is over.
    Decided(Verdict),
    /// A backend has to be waited for, at this step.
    Waiting(HeldCheck, Step<String>),
}

/// Runs the check as far as the backends answer at once.
pub(crate) fn drive_now<B>(config: &Arc<Config>, check: Check<'_>, req: &Request<B>) -> Driven {
    let wait = |check: &Check<'_>, step: Step<String>| Driven::Waiting(check.hold(), step);
    let mut step = check.start(config, req);
    loop {
        step = match step {
            Step::Done(verdict) => return Driven::Decided(check.formatted(verdict)),
            Step::NeedKey(digest, source) => match config.store.resolve_key_now(&digest) {
                Some(answer) => {
                    let answer = answer.map_err(|e| backend_failed("client store", &e));
                    check.key_found(config, req, &digest, source, answer)
                }
                None => return wait(&check, Step::NeedKey(digest, source)),
            },
            Step::NeedToken(token) => match config.verifier.verify_now(token) {
                Some(answer) => check.token_verified(config, req, Some(answer)),
                None => return wait(&check, Step::NeedToken(token.to_owned())),
            },
            Step::NeedSignedClient(url) => match config.store.resolve_id_now(url.client()) {
                Some(answer) => {
                    let answer = answer.map_err(|e| backend_failed("client store", &e));
                    check.signed_found(config, req, url, answer)
                }
                None => return wait(&check, Step::NeedSignedClient(url)),
            },
            Step::NeedCharge(admitted) => match config.usage.charge_now(&check.charge(&admitted)) {
                Some(answer) => {
                    let answer = answer.map_err(|e| backend_failed("usage counter", &e));
                    check.charged(config, admitted, answer)
                }
                None => return wait(&check, Step::NeedCharge(admitted)),
            },
            Step::NeedRefusalRecord(refusal) => {
                if !record_refusal_now(config, &check, &refusal) {
                    return wait(&check, Step::NeedRefusalRecord(refusal));
                }
                refusal.recorded()
            }
            // A shared rate limiter is a round trip: the rest of the check waits for it.
            waiting @ Step::NeedRate(_) => return wait(&check, waiting.into_owned()),
        };
    }
}

/// Goes on with a check from the step where [`drive_now`] stopped, waiting for each backend
/// within the budget, and concludes it. The request is not borrowed across an await, so
/// only `B: Send` is needed.
pub(crate) async fn drive<B>(
    config: Arc<Config>,
    held: HeldCheck,
    mut step: Step<String>,
    mut req: Request<B>,
) -> (Request<B>, Conclusion) {
    let check = held.check();
    let verdict = loop {
        step = match step {
            Step::Done(verdict) => break check.formatted(verdict),
            Step::NeedKey(digest, source) => {
                let found = config.store.resolve_key(&digest);
                let answer = fail_closed(&config, "client store", found).await;
                check.key_found(&config, &req, &digest, source, answer)
            }
            Step::NeedToken(token) => {
                let answer = within_budget(&config, config.verifier.verify(&token)).await;
                check.token_verified(&config, &req, answer)
            }
            Step::NeedSignedClient(url) => {
                let found = config.store.resolve_id(url.client());
                let answer = fail_closed(&config, "client store", found).await;
                check.signed_found(&config, &req, url, answer)
            }
            Step::NeedRate(rate) => {
                let answer = fail_closed(&config, "rate limiter", rate.ask()).await;
                check.rate_checked(&config, rate, answer)
            }
            Step::NeedCharge(admitted) => {
                let charge = check.charge(&admitted);
                let answer =
                    fail_closed(&config, "usage counter", config.usage.charge(&charge)).await;
                check.charged(&config, admitted, answer)
            }
            Step::NeedRefusalRecord(refusal) => {
                record_refusal(&config, &check, &refusal).await;
                refusal.recorded()
            }
        };
    };
    let concluded = verdict.conclude(&config, &check, &mut req);
    (req, concluded)
}

/// Counts the refusal of an identified client if the counter answers at once; `false`
/// when it has to wait. The request is refused whatever the counter does, so a counter
/// failure is only logged.
fn record_refusal_now(config: &Config, check: &Check<'_>, refusal: &Refusal) -> bool {
    match config.usage.record_refusal_now(&check.refused(refusal)) {
        None => false,
        Some(Ok(())) => true,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "usage counter failed to record a refusal");
            true
        }
    }
}

/// Counts the refusal of an identified client, for a counter that has to wait.
async fn record_refusal(config: &Config, check: &Check<'_>, refusal: &Refusal) {
    let refused = check.refused(refusal);
    match within_budget(config, config.usage.record_refusal(&refused)).await {
        Some(Ok(())) | None => {}
        Some(Err(e)) => tracing::warn!(error = %e, "usage counter failed to record a refusal"),
    }
}
