//! The outbox as a caller sees it: list deliveries (by subscription and status), read
//! one with its attempts, and retry one by hand. Ownership is part of each query: a
//! delivery is visible when the subscription it belongs to is.

use super::service::{Caller, Running, Subscriptions};
use crate::delivery::actor::Wake;
use crate::ids::{DeliveryId, SubscriptionId};
use crate::store::deliveries::{self, DeliveryQuery, DeliveryRow, STATUSES};
use crate::store::delivery_attempts::{self, AttemptRow};
use crate::store::{StoreError, subscriptions};

/// What a deliveries workflow refuses; `http` maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A filter that names no status.
    #[error("status {0:?} is not one of {list}", list = STATUSES.join(", "))]
    UnknownStatus(String),
    /// No such object, or one the caller may not see.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    /// The delivery is already waiting to be sent; the message says when.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which deliveries a list shows, and the page.
#[derive(Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    /// One subscription's (it must be the caller's), or every subscription's the
    /// caller may see.
    pub subscription_id: Option<SubscriptionId>,
    pub before: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

impl<R: Running> Subscriptions<'_, R> {
    /// The deliveries the filter selects, newest first.
    pub async fn deliveries(
        &self,
        caller: Caller,
        filter: DeliveryFilter,
    ) -> Result<Vec<DeliveryRow>, DeliveryError> {
        if let Some(s) = &filter.status
            && !STATUSES.contains(&s.as_str())
        {
            return Err(DeliveryError::UnknownStatus(s.clone()));
        }
        let scope = caller.scope;
        let DeliveryFilter {
            status,
            subscription_id,
            before,
            limit,
            offset,
        } = filter;
        let rows = self
            .store
            .read(move |c| {
                let subscription_ids = match subscription_id {
                    Some(id) => match subscriptions::find_owned(c, scope, id)? {
                        Some(s) => Some(vec![s.id]),
                        None => return Ok(None),
                    },
                    None if scope.is_none() => None,
                    None => Some(
                        subscriptions::list(c, scope)?
                            .into_iter()
                            .map(|s| s.id)
                            .collect(),
                    ),
                };
                let query = DeliveryQuery {
                    subscription_ids,
                    status,
                    before,
                    limit,
                    offset: offset.max(0),
                };
                Ok(Some(deliveries::list(c, &query)?))
            })
            .await?;
        rows.ok_or(DeliveryError::NotFound {
            what: "webhook",
            id: subscription_id.unwrap_or_default().0,
        })
    }

    /// Delivery `id` with its attempts, if the caller may see it.
    pub async fn delivery(
        &self,
        caller: Caller,
        id: DeliveryId,
    ) -> Result<(DeliveryRow, Vec<AttemptRow>), DeliveryError> {
        let scope = caller.scope;
        self.store
            .read(move |c| {
                let Some(d) = deliveries::find_owned(c, scope, id)? else {
                    return Ok(None);
                };
                Ok(Some((d, delivery_attempts::for_delivery(c, id)?)))
            })
            .await?
            .ok_or(DeliveryError::NotFound {
                what: "delivery",
                id: id.0,
            })
    }

    /// Sends delivery `id` again with a fresh retry budget and the same message id;
    /// refused while it is still waiting to be sent.
    pub async fn retry_delivery(
        &self,
        caller: Caller,
        id: DeliveryId,
    ) -> Result<DeliveryRow, DeliveryError> {
        let scope = caller.scope;
        let d = self
            .store
            .read(move |c| deliveries::find_owned(c, scope, id))
            .await?
            .ok_or(DeliveryError::NotFound {
                what: "delivery",
                id: id.0,
            })?;
        if d.status.is_waiting() {
            return Err(DeliveryError::Conflict(format!(
                "delivery {} is already {}; it will be sent at {}",
                d.id,
                d.status,
                crate::time::ts(d.next_attempt_at)
            )));
        }
        let row = self
            .store
            .writer()
            .write(move |c, _| deliveries::requeue(c, id))
            .await?;
        if let Some(actor) = self.running.actor(row.subscription_id) {
            actor.do_send(Wake);
        }
        Ok(row)
    }
}
