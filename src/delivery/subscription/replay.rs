//! Replay: re-queues a subscription's past deliveries (the dead ones, unless the caller
//! names other statuses), in batches through the Writer, without a cap.

use serde_json::Value;

use super::error::{SubscriptionError, bad};
use super::input::ReplayIn;
use super::service::{Caller, Running, Subscriptions};
use crate::delivery::actor::Wake;
use crate::ids::SubscriptionId;
use crate::store::deliveries::{self, ReplayFilter};

/// How many deliveries one replay batch re-queues.
const REPLAY_BATCH: i64 = 1000;

/// What a replay found and queued.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct Replayed {
    pub matched: i64,
    pub queued: i64,
    pub dry_run: bool,
}

fn parse_time(field: &str, v: &str) -> Result<chrono::NaiveDateTime, SubscriptionError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.naive_utc())
        .map_err(|e| bad(field, format!("{v:?} is not an RFC 3339 time ({e})")))
}

fn statuses(status: Option<&Value>) -> Result<Vec<String>, SubscriptionError> {
    let statuses: Vec<String> = match status {
        None | Some(Value::Null) => vec![deliveries::DEAD.to_string()],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => return Err(bad("status", "must be a status or a list of them")),
    };
    for s in &statuses {
        if !deliveries::STATUSES.contains(&s.as_str()) {
            return Err(bad(
                "status",
                format!("{s:?} is not one of {}", deliveries::STATUSES.join(", ")),
            ));
        }
    }
    Ok(statuses)
}

impl<R: Running> Subscriptions<'_, R> {
    /// Counts what `input` matches and, unless it is a dry run, re-queues it in the
    /// background (the answer does not wait for every batch).
    pub async fn replay(
        &self,
        caller: Caller,
        id: SubscriptionId,
        input: ReplayIn,
    ) -> Result<Replayed, SubscriptionError> {
        let sub = self.get(caller, id).await?;
        let filter = ReplayFilter {
            subscription_id: sub.id,
            statuses: statuses(input.status.as_ref())?,
            since: input
                .since
                .as_deref()
                .map(|s| parse_time("since", s))
                .transpose()?,
            until: input
                .until
                .as_deref()
                .map(|s| parse_time("until", s))
                .transpose()?,
            event_type: input.event_type.clone(),
        };
        let f = filter.clone();
        let matched = self
            .store
            .read(move |c| deliveries::count_for_replay(c, &f))
            .await?;
        if input.dry_run || matched == 0 {
            return Ok(Replayed {
                matched,
                queued: 0,
                dry_run: input.dry_run,
            });
        }
        let store = self.store.clone();
        let actor = self.running.actor(sub.id);
        actix::spawn(async move {
            let mut after = 0;
            loop {
                let f = filter.clone();
                match store
                    .writer()
                    .write(move |c, _| deliveries::requeue_batch(c, &f, after, REPLAY_BATCH))
                    .await
                {
                    Ok(ids) if ids.is_empty() => break,
                    Ok(ids) => {
                        after = ids.last().copied().unwrap_or(after);
                        if let Some(a) = &actor {
                            a.do_send(Wake);
                        }
                    }
                    Err(e) => {
                        tracing::error!(subscription_id = filter.subscription_id.0, error = %e, "replay stopped");
                        break;
                    }
                }
            }
        });
        Ok(Replayed {
            matched,
            queued: matched,
            dry_run: false,
        })
    }
}
