//! Whether the hub works, as `/healthz` and `/worker_status` report it: the database
//! answers a read and writes commit; and the caller's queues and recent failures.

use std::time::Duration;

use diesel::RunQueryDsl;

use crate::store::{Store, StoreError, WriteHealth, agent_logs, deliveries, event_totals};

/// How long a check waits for its read and, when writes were failing, its probe write.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a probe of the database got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// What a health check found.
#[derive(Debug)]
pub enum Health {
    Ok,
    /// A read got no answer: the database file was deleted or replaced, or is locked.
    NoAnswer(ProbeError),
    /// Writes do not commit; `problem` says why (see [`WriteHealth::problem`]).
    WritesFailing {
        problem: String,
        writes: WriteHealth,
    },
}

async fn probe<T>(
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, ProbeError> {
    match actix_rt::time::timeout(PROBE_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ProbeError::Timeout(PROBE_TIMEOUT)),
    }
}

/// Checks that a read works and writes commit. While writes fail, each check tries a
/// small write of its own, so the answer turns healthy once the cause is fixed even if
/// nothing else writes.
pub async fn check(store: &Store) -> Health {
    let read = store.read(|c| Ok(diesel::sql_query("SELECT 1").execute(c)?));
    if let Err(e) = probe(read).await {
        return Health::NoAnswer(e);
    }
    let mut health = store.writer().health();
    if health.database_gone.is_none() && health.last_error.is_some() {
        // The probe's own outcome is recorded like any batch's.
        let _ = probe(store.writer().probe()).await;
        health = store.writer().health();
    }
    match health.problem() {
        Some(problem) => Health::WritesFailing {
            problem,
            writes: health,
        },
        None => Health::Ok,
    }
}

/// Huginn's worker status, for one user.
#[derive(Debug)]
pub struct WorkerStatus {
    /// Work accepted and not finished yet.
    pub pending: i64,
    pub awaiting_retry: i64,
    /// Agent errors and dead deliveries of the last 5 days.
    pub recent_failures: i64,
    pub event_count: i64,
    pub min_id: Option<i64>,
    pub max_id: Option<i64>,
}

/// The worker status of `user_id`'s events (above `since_id`, when given), deliveries
/// and failures. `hub_queues` is the depth of the hub's own queues (writes waiting to
/// commit, events waiting for an agent): those are not kept per user and say nothing
/// about whose work it is.
pub async fn worker_status(
    store: &Store,
    user_id: i64,
    since_id: Option<i64>,
    hub_queues: usize,
) -> Result<WorkerStatus, StoreError> {
    let scope = Some(user_id);
    let five_days_ago = crate::store::now() - chrono::Duration::days(5);
    let (count, min_id, max_id, failures, (pending_deliveries, retrying, dead)) = store
        .read(move |c| {
            let totals = event_totals::of_user(c, user_id, since_id)?;
            let failures = agent_logs::count_errors_since(c, user_id, five_days_ago)?;
            let outbox = deliveries::totals(c, scope, five_days_ago)?;
            Ok((totals.count, totals.min_id, totals.max_id, failures, outbox))
        })
        .await?;
    let pending = (store.writer().queue_depth() + hub_queues) as i64 + pending_deliveries;
    Ok(WorkerStatus {
        pending,
        awaiting_retry: retrying,
        recent_failures: failures + dead,
        event_count: count,
        min_id,
        max_id,
    })
}

/// Every node's holdings (leases by kind, claimed deliveries), read fresh: the
/// database's clock and rows rather than this node's last heartbeat.
pub async fn cluster_load(
    store: &Store,
) -> Result<crate::store::node_load::ClusterLoad, StoreError> {
    store.read(crate::store::node_load::load).await
}
