//! Live numbers of the hub, kept in memory so the console's overview costs no table
//! scan: totals of committed events and of delivery outcomes, per-bucket rates for
//! sparklines, per-subscription counters, and the broadcast channel behind
//! `GET /api/stream`. The Router feeds it committed events; `SubscriptionActor::settle`
//! feeds it delivery outcomes once they are committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::ids::{AgentId, DeliveryId, EventId, SubscriptionId};
use crate::store::Committed;
use crate::store::agents::AgentRow;
use crate::store::deliveries::{DEAD, DELIVERED};
use crate::store::subscriptions::SubscriptionRow;
use crate::time::now_text;

/// Width of one rate bucket.
pub const BUCKET_SECONDS: u64 = 10;
/// Buckets kept: 60 x 10 s = the last 10 minutes.
pub const BUCKETS: usize = 60;
/// Items buffered per stream client; a client further behind skips with a notice.
pub const STREAM_BUFFER: usize = 1024;
/// Payloads larger than this are not inlined in the stream.
const STREAM_PAYLOAD_MAX: usize = 4096;

/// Counts per time bucket over the last `BUCKETS` buckets.
#[derive(Debug, Clone)]
pub struct Ring {
    slots: [u64; BUCKETS],
    /// The bucket number (since start) `slots` ends at.
    head: u64,
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            slots: [0; BUCKETS],
            head: 0,
        }
    }
}

impl Ring {
    fn advance(&mut self, bucket: u64) {
        if bucket <= self.head {
            return;
        }
        let steps = (bucket - self.head).min(BUCKETS as u64);
        for i in 1..=steps {
            self.slots[((self.head + i) % BUCKETS as u64) as usize] = 0;
        }
        self.head = bucket;
    }

    pub fn add(&mut self, bucket: u64, n: u64) {
        self.advance(bucket);
        if bucket + (BUCKETS as u64) > self.head {
            self.slots[(bucket % BUCKETS as u64) as usize] += n;
        }
    }

    /// Oldest first, ending with the current (partial) bucket.
    pub fn series(&mut self, bucket: u64) -> Vec<u64> {
        self.advance(bucket);
        (1..=BUCKETS as u64)
            .map(|k| self.slots[((self.head + k) % BUCKETS as u64) as usize])
            .collect()
    }

    /// Sum of the last `n` complete buckets plus the current one.
    pub fn recent(&mut self, bucket: u64, n: usize) -> u64 {
        let s = self.series(bucket);
        s.iter().rev().take(n + 1).sum()
    }
}

/// Counters of one subscription since the hub started.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionStats {
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
    /// Sum of the settled attempts' durations, in ms (with delivered + failed, a mean).
    pub latency_ms_sum: u64,
    pub ring: Ring,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// Requests to one inbound endpoint since the hub started, by answer.
#[derive(Debug, Clone, Default)]
pub struct EndpointStats {
    pub user_id: i64,
    pub accepted: u64,
    /// Answer status -> count, for every answer that was not a success.
    pub rejected: std::collections::BTreeMap<u16, u64>,
    pub ring: Ring,
}

#[derive(Debug, Default)]
struct Rings {
    events: Ring,
    delivered: Ring,
    failed: Ring,
}

/// One user's share of the hub-wide counters, so a user's console shows only its own
/// traffic. One per user who had any, and users are few (the admin creates them).
#[derive(Debug, Default)]
struct UserTally {
    events: u64,
    delivered: u64,
    failed: u64,
    dead: u64,
    rings: Rings,
}

/// One item of `GET /api/stream`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamItem {
    Event {
        id: EventId,
        user_id: i64,
        agent_id: Option<AgentId>,
        event_type: String,
        created_at: String,
        payload: Value,
    },
    Delivery {
        delivery_id: DeliveryId,
        webhook_id: SubscriptionId,
        user_id: i64,
        event_id: EventId,
        event_type: String,
        status: String,
        attempts: i32,
        response_status: Option<i32>,
        error: Option<String>,
        at: String,
    },
}

impl StreamItem {
    pub fn user_id(&self) -> i64 {
        match self {
            StreamItem::Event { user_id, .. } | StreamItem::Delivery { user_id, .. } => *user_id,
        }
    }
}

/// One stream client's end of the broadcast: it hands on only the items of its scope.
/// Every client shares the one bounded buffer, so how far behind a client fell (the
/// `Lagged` count) counts every item it skipped, as it did before the scope moved here.
#[derive(Debug)]
pub struct StreamReceiver {
    rx: broadcast::Receiver<Arc<StreamItem>>,
    scope: Option<i64>,
}

impl StreamReceiver {
    /// The next item this client may see; `Lagged` and `Closed` as the broadcast says them.
    /// Cancel-safe like the broadcast's own `recv` (the stream races it against a
    /// keep-alive timer): the only await is that `recv`, and an item it returned is
    /// either handed on or one this client may not see.
    pub async fn recv(&mut self) -> Result<Arc<StreamItem>, broadcast::error::RecvError> {
        loop {
            let item = self.rx.recv().await?;
            if self.scope.is_none_or(|u| u == item.user_id()) {
                return Ok(item);
            }
        }
    }

    /// Like [`StreamReceiver::recv`], without waiting (for tests, which cannot wait).
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Result<Arc<StreamItem>, broadcast::error::TryRecvError> {
        loop {
            let item = self.rx.try_recv()?;
            if self.scope.is_none_or(|u| u == item.user_id()) {
                return Ok(item);
            }
        }
    }
}

/// A committed delivery outcome, as `settle` reports it.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    pub delivery_id: DeliveryId,
    pub webhook_id: SubscriptionId,
    pub user_id: i64,
    pub event_id: EventId,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub response_status: Option<i32>,
    pub error: Option<String>,
    /// How long the attempt took, request sent to answer read.
    pub duration_ms: u64,
}

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    events: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
    rings: Mutex<Rings>,
    per_user: Mutex<HashMap<i64, UserTally>>,
    subscriptions: Mutex<HashMap<SubscriptionId, SubscriptionStats>>,
    /// Keyed by the agent id of a webhook or data_output agent.
    endpoints: Mutex<HashMap<AgentId, EndpointStats>>,
    stream: broadcast::Sender<Arc<StreamItem>>,
    stored: Mutex<StoredByScope>,
    /// The last requests of each data_output feed (the console's request log).
    pub feeds: super::feed_log::FeedLog,
}

/// The summary's database numbers per scope (a user's id, or `None` for an admin),
/// with when each was read.
type StoredByScope = HashMap<Option<i64>, (Instant, Arc<StoredCounts>)>;

/// What the summary reads from the database for one scope (only rows that scope may
/// see), shared by every caller of that scope for a short while so that many consoles
/// refreshing every second cost one read.
#[derive(Debug, Default)]
pub struct StoredCounts {
    pub subscriptions: Vec<SubscriptionRow>,
    /// (subscription id, status, count), delivered rows excluded.
    pub open: Vec<(SubscriptionId, String, i64)>,
    pub agents: Vec<AgentRow>,
}

impl Default for Stats {
    fn default() -> Self {
        let (stream, _) = broadcast::channel(STREAM_BUFFER);
        Stats {
            started: Instant::now(),
            events: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            rings: Mutex::default(),
            per_user: Mutex::default(),
            subscriptions: Mutex::default(),
            endpoints: Mutex::default(),
            stream,
            stored: Mutex::default(),
            feeds: Default::default(),
        }
    }
}

// Counters only: a panic while holding a lock leaves them usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Totals and rate series, as the summary endpoint shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rates {
    pub events_total: u64,
    pub delivered_total: u64,
    pub failed_total: u64,
    pub dead_total: u64,
    pub bucket_seconds: u64,
    pub events: Vec<u64>,
    pub delivered: Vec<u64>,
    pub failed: Vec<u64>,
}

impl Stats {
    fn bucket(&self) -> u64 {
        self.started.elapsed().as_secs() / BUCKET_SECONDS
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The stored counts of `scope` if read less than `max_age` ago.
    pub fn stored_counts(
        &self,
        scope: Option<i64>,
        max_age: std::time::Duration,
    ) -> Option<Arc<StoredCounts>> {
        lock(&self.stored)
            .get(&scope)
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, c)| c.clone())
    }

    /// Keeps the counts just read for `scope`. Counts older than `max_age` are dropped
    /// here, so the cache holds only the scopes read in the last moment.
    pub fn keep_stored_counts(
        &self,
        scope: Option<i64>,
        counts: Arc<StoredCounts>,
        max_age: std::time::Duration,
    ) {
        let mut stored = lock(&self.stored);
        stored.retain(|_, (at, _)| at.elapsed() < max_age);
        stored.insert(scope, (Instant::now(), counts));
    }

    /// A new stream client that sees what `scope` may see: its user's items, or every
    /// item for `None` (an admin).
    pub fn subscribe(&self, scope: Option<i64>) -> StreamReceiver {
        StreamReceiver {
            rx: self.stream.subscribe(),
            scope,
        }
    }

    /// Events of one committed batch (called by the Router).
    pub fn record_events(&self, batch: &[Committed]) {
        let n = batch.len() as u64;
        if n == 0 {
            return;
        }
        self.events.fetch_add(n, Ordering::Relaxed);
        let b = self.bucket();
        lock(&self.rings).events.add(b, n);
        {
            let mut users = lock(&self.per_user);
            for c in batch {
                let t = users.entry(c.event.user_id).or_default();
                t.events += 1;
                t.rings.events.add(b, 1);
            }
        }
        if self.stream.receiver_count() == 0 {
            return;
        }
        for c in batch {
            let e = &c.event;
            let payload = if e.payload.len() <= STREAM_PAYLOAD_MAX {
                e.payload_json().unwrap_or(Value::Null)
            } else {
                Value::String(format!("({} bytes, not inlined)", e.payload.len()))
            };
            // No receiver left is not an error: nobody is watching.
            let _ = self.stream.send(Arc::new(StreamItem::Event {
                id: e.id,
                user_id: e.user_id,
                agent_id: e.agent_id,
                event_type: e.event_type.clone(),
                created_at: crate::time::ts(e.created_at),
                payload,
            }));
        }
    }

    /// One committed attempt outcome (called by `SubscriptionActor::settle`).
    pub fn record_delivery(&self, o: DeliveryOutcome) {
        let b = self.bucket();
        let ok = o.status == DELIVERED;
        if ok {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if o.status == DEAD {
                self.dead.fetch_add(1, Ordering::Relaxed);
            }
        }
        {
            let mut r = lock(&self.rings);
            if ok {
                r.delivered.add(b, 1);
            } else {
                r.failed.add(b, 1);
            }
        }
        {
            let mut users = lock(&self.per_user);
            let t = users.entry(o.user_id).or_default();
            if ok {
                t.delivered += 1;
                t.rings.delivered.add(b, 1);
            } else {
                t.failed += 1;
                t.dead += u64::from(o.status == DEAD);
                t.rings.failed.add(b, 1);
            }
        }
        {
            let mut subs = lock(&self.subscriptions);
            let s = subs.entry(o.webhook_id).or_default();
            s.latency_ms_sum = s.latency_ms_sum.saturating_add(o.duration_ms);
            if ok {
                s.delivered += 1;
                s.ring.add(b, 1);
            } else {
                s.failed += 1;
                if o.status == DEAD {
                    s.dead += 1;
                }
                s.last_error = o
                    .error
                    .clone()
                    .or_else(|| o.response_status.map(|st| format!("target answered {st}")));
                s.last_error_at = Some(now_text());
            }
        }
        if self.stream.receiver_count() > 0 {
            let _ = self.stream.send(Arc::new(StreamItem::Delivery {
                delivery_id: o.delivery_id,
                webhook_id: o.webhook_id,
                user_id: o.user_id,
                event_id: o.event_id,
                event_type: o.event_type,
                status: o.status,
                attempts: o.attempts,
                response_status: o.response_status,
                error: o.error,
                at: now_text(),
            }));
        }
    }

    /// One answered web request to an agent's endpoint.
    pub fn record_inbound(&self, agent_id: AgentId, user_id: i64, status: u16) {
        let b = self.bucket();
        let mut eps = lock(&self.endpoints);
        let e = eps.entry(agent_id).or_default();
        e.user_id = user_id;
        e.ring.add(b, 1);
        if status < 400 {
            e.accepted += 1;
        } else {
            *e.rejected.entry(status).or_default() += 1;
        }
    }

    /// Every endpoint's counters with its requests of the last minute.
    pub fn endpoints(&self) -> Vec<(AgentId, EndpointStats, u64)> {
        self.endpoints_of(None)
    }

    /// The counters of every endpoint `scope` may see (a user's own, or all for `None`),
    /// with its requests of the last minute.
    pub fn endpoints_of(&self, scope: Option<i64>) -> Vec<(AgentId, EndpointStats, u64)> {
        let b = self.bucket();
        let mut eps = lock(&self.endpoints);
        let mut out: Vec<_> = eps
            .iter_mut()
            .filter(|(_, e)| scope.is_none_or(|u| u == e.user_id))
            .map(|(id, e)| {
                let per_minute = e.ring.recent(b, (60 / BUCKET_SECONDS) as usize - 1);
                (*id, e.clone(), per_minute)
            })
            .collect();
        out.sort_by_key(|(id, ..)| *id);
        out
    }

    /// One user's rates: what its own agents emitted and its own subscriptions sent.
    pub fn user_rates(&self, user_id: i64) -> Rates {
        let b = self.bucket();
        let mut users = lock(&self.per_user);
        let t = users.entry(user_id).or_default();
        Rates {
            events_total: t.events,
            delivered_total: t.delivered,
            failed_total: t.failed,
            dead_total: t.dead,
            bucket_seconds: BUCKET_SECONDS,
            events: t.rings.events.series(b),
            delivered: t.rings.delivered.series(b),
            failed: t.rings.failed.series(b),
        }
    }

    /// The whole hub's rates.
    pub fn rates(&self) -> Rates {
        let b = self.bucket();
        let mut r = lock(&self.rings);
        Rates {
            events_total: self.events.load(Ordering::Relaxed),
            delivered_total: self.delivered.load(Ordering::Relaxed),
            failed_total: self.failed.load(Ordering::Relaxed),
            dead_total: self.dead.load(Ordering::Relaxed),
            bucket_seconds: BUCKET_SECONDS,
            events: r.events.series(b),
            delivered: r.delivered.series(b),
            failed: r.failed.series(b),
        }
    }

    /// (subscription id, delivered, failed, dead, latency ms sum) of every subscription
    /// that settled a delivery since the hub started, by id.
    pub fn subscription_counts(&self) -> Vec<(SubscriptionId, u64, u64, u64, u64)> {
        let subs = lock(&self.subscriptions);
        let mut all: Vec<_> = subs
            .iter()
            .map(|(id, s)| (*id, s.delivered, s.failed, s.dead, s.latency_ms_sum))
            .collect();
        all.sort_unstable_by_key(|c| c.0);
        all
    }

    /// Counters of one subscription, with its deliveries of the last minute.
    pub fn subscription(&self, id: SubscriptionId) -> (SubscriptionStats, u64) {
        let b = self.bucket();
        let mut subs = lock(&self.subscriptions);
        match subs.get_mut(&id) {
            Some(s) => {
                let per_minute = s.ring.recent(b, (60 / BUCKET_SECONDS) as usize - 1);
                (s.clone(), per_minute)
            }
            None => (SubscriptionStats::default(), 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_buckets_and_forgets_older_ones() {
        let mut r = Ring::default();
        r.add(0, 2);
        r.add(1, 3);
        let s = r.series(1);
        assert_eq!(s.len(), BUCKETS);
        assert_eq!(&s[BUCKETS - 2..], &[2, 3]);
        // Far in the future: everything old is gone.
        let s = r.series(1 + BUCKETS as u64 * 2);
        assert!(s.iter().all(|n| *n == 0));
        r.add(500, 1);
        assert_eq!(r.recent(500, 0), 1);
    }

    #[test]
    fn outcomes_count_per_subscription() {
        let s = Stats::default();
        let o = |status: &str| DeliveryOutcome {
            delivery_id: DeliveryId(1),
            webhook_id: SubscriptionId(7),
            user_id: 1,
            event_id: EventId(1),
            event_type: "x".into(),
            status: status.into(),
            attempts: 1,
            response_status: Some(500),
            error: None,
            duration_ms: 5,
        };
        s.record_delivery(o("retrying"));
        s.record_delivery(o("dead"));
        s.record_delivery(o("delivered"));
        let r = s.rates();
        assert_eq!((r.delivered_total, r.failed_total, r.dead_total), (1, 2, 1));
        let (sub, per_minute) = s.subscription(SubscriptionId(7));
        assert_eq!((sub.delivered, sub.failed, sub.dead), (1, 2, 1));
        assert_eq!(per_minute, 1);
        assert_eq!(sub.last_error.as_deref(), Some("target answered 500"));
    }

    fn committed(id: i64, user_id: i64) -> Committed {
        Committed {
            root: None,
            event: Arc::new(crate::store::events::EventRow {
                id: EventId(id),
                user_id,
                agent_id: None,
                event_type: "t".into(),
                payload: "{}".into(),
                created_at: chrono::Utc::now().naive_utc(),
                expires_at: None,
                target_agent_id: None,
            }),
            depth: 0,
            deliveries: Arc::default(),
        }
    }

    #[test]
    fn a_stream_client_gets_only_what_its_scope_may_see() {
        let s = Stats::default();
        let mut bobs = s.subscribe(Some(2));
        let mut admins = s.subscribe(None);
        s.record_events(&[committed(1, 1), committed(2, 2), committed(3, 1)]);
        let ids = |rx: &mut StreamReceiver| {
            std::iter::from_fn(|| rx.try_recv().ok())
                .map(|item| match *item {
                    StreamItem::Event { id, .. } => id.0,
                    StreamItem::Delivery { delivery_id, .. } => delivery_id.0,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&mut bobs), [2]);
        assert_eq!(ids(&mut admins), [1, 2, 3]);
    }

    #[test]
    fn summary_counts_are_kept_per_scope() {
        let s = Stats::default();
        let age = std::time::Duration::from_secs(60);
        s.keep_stored_counts(Some(2), Arc::new(StoredCounts::default()), age);
        assert!(s.stored_counts(Some(2), age).is_some());
        assert!(s.stored_counts(Some(3), age).is_none());
        assert!(s.stored_counts(None, age).is_none());
    }

    #[test]
    fn a_slow_stream_client_skips_with_a_count_instead_of_growing() {
        let s = Stats::default();
        let mut rx = s.subscribe(None);
        let batch: Vec<Committed> = (0..STREAM_BUFFER as i64 + 10)
            .map(|id| committed(id, 1))
            .collect();
        s.record_events(&batch);
        assert_eq!(
            rx.try_recv().err(),
            Some(broadcast::error::TryRecvError::Lagged(10))
        );
        // Then it goes on with what is still buffered, oldest first.
        let Ok(item) = rx.try_recv() else {
            panic!("nothing buffered")
        };
        assert!(matches!(
            *item,
            StreamItem::Event {
                id: EventId(10),
                ..
            }
        ));
        assert_eq!(s.rates().events_total, STREAM_BUFFER as u64 + 10);
    }
}
