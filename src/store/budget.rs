//! The time budget of one backend call (a store lookup, a token verification, a usage
//! counter or a shared rate limiter), written once for every door that calls a backend:
//! the layer and the token endpoint. Past the budget the call is given up, and the caller
//! answers 503: a backend that stalls never opens the door.

use std::future::Future;
use std::time::Duration;

/// Runs `call` within `budget`: its output, or `None` when the budget ran out first (that
/// is logged, with the budget). `None` as the budget waits as long as the call takes.
/// Needs a Tokio runtime with time enabled when a budget is given.
pub(crate) async fn within_budget<F: Future>(
    budget: Option<Duration>,
    call: F,
) -> Option<F::Output> {
    let Some(budget) = budget else {
        return Some(call.await);
    };
    let output = tokio::time::timeout(budget, call).await.ok();
    if output.is_none() {
        tracing::warn!(
            budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
            "a backend did not answer within its time budget"
        );
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_that_answers_in_time_gives_its_output() {
        let quick = async { 7 };
        assert_eq!(
            within_budget(Some(Duration::from_secs(1)), quick).await,
            Some(7)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_budget_is_given_up() {
        let stalled = std::future::pending::<u8>();
        assert_eq!(
            within_budget(Some(Duration::from_secs(2)), stalled).await,
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_budget_waits_as_long_as_the_call_takes() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "late"
        };
        assert_eq!(within_budget(None, slow).await, Some("late"));
    }
}
