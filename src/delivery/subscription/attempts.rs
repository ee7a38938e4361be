//! A subscription's attempt log and its totals, as its owner (or an admin) reads them:
//! the outgoing side of `/api/webhooks/{id}/logs` and `/statistics`. Ownership is part
//! of the read, so another user's subscription answers like a missing one.

use super::error::SubscriptionError;
use super::service::{Caller, Running, Subscriptions};
use crate::ids::SubscriptionId;
use crate::store::deliveries;
use crate::store::delivery_attempts::{self, AttemptRow};
use crate::store::subscriptions::{self, SubscriptionRow};

/// One page of attempts: ids below `before`, newest first, `limit` of them after
/// skipping `offset`.
#[derive(Debug, Clone, Copy)]
pub struct AttemptPage {
    pub before: i64,
    pub limit: i64,
    pub offset: i64,
}

/// One attempt with its delivery's message id and its event's type.
#[derive(Debug)]
pub struct AttemptLine {
    pub attempt: AttemptRow,
    pub message_id: String,
    pub event_type: String,
}

/// A subscription with its attempt totals and its deliveries by status.
#[derive(Debug)]
pub struct AttemptTotals {
    pub subscription: SubscriptionRow,
    pub attempts: i64,
    /// Attempts answered 2xx.
    pub successful: i64,
    pub average_ms: f64,
    /// (status, deliveries) for every status that has any.
    pub by_status: Vec<(String, i64)>,
}

impl AttemptTotals {
    /// The deliveries in `status` (0 when there are none).
    pub fn count(&self, status: &str) -> i64 {
        self.by_status
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n)
    }
}

impl<R: Running> Subscriptions<'_, R> {
    /// One page of subscription `id`'s attempts, if the caller may see it.
    pub async fn attempt_log(
        &self,
        caller: Caller,
        id: SubscriptionId,
        page: AttemptPage,
    ) -> Result<Vec<AttemptLine>, SubscriptionError> {
        let scope = caller.scope;
        let rows = self
            .store
            .read(move |c| {
                if subscriptions::find_owned(c, scope, id)?.is_none() {
                    return Ok(None);
                }
                let AttemptPage {
                    before,
                    limit,
                    offset,
                } = page;
                Ok(Some(delivery_attempts::for_subscription(
                    c, id, before, limit, offset,
                )?))
            })
            .await?
            .ok_or(SubscriptionError::NotFound(id))?;
        Ok(rows
            .into_iter()
            .map(|(attempt, message_id, event_type)| AttemptLine {
                attempt,
                message_id,
                event_type,
            })
            .collect())
    }

    /// Subscription `id` with its attempt totals, if the caller may see it.
    pub async fn attempt_totals(
        &self,
        caller: Caller,
        id: SubscriptionId,
    ) -> Result<AttemptTotals, SubscriptionError> {
        let scope = caller.scope;
        self.store
            .read(move |c| {
                let Some(subscription) = subscriptions::find_owned(c, scope, id)? else {
                    return Ok(None);
                };
                let (attempts, successful, average_ms) = delivery_attempts::totals(c, id)?;
                Ok(Some(AttemptTotals {
                    subscription,
                    attempts,
                    successful,
                    average_ms,
                    by_status: deliveries::count_by_status(c, id)?,
                }))
            })
            .await?
            .ok_or(SubscriptionError::NotFound(id))
    }
}
