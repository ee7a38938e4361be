//! The request log of one endpoint: lines collect in memory and go to the Writer in
//! one job per batch (at most every second, or sooner when many are waiting). The
//! buffer is bounded: if the database cannot keep up, the oldest waiting lines are
//! dropped and counted, instead of growing memory.

use std::net::IpAddr;
use std::time::Instant;

use crate::store::Store;
use crate::store::inbound_log::{self, LogBatch, NewInboundLog};

/// Lines that trigger an early flush.
const FLUSH_AT: usize = 200;
/// Lines kept waiting at most.
const MAX_PENDING: usize = 5000;

pub struct LogBuffer {
    endpoint: String,
    pending: Vec<NewInboundLog>,
    dropped: u64,
    store: Store,
    retention: i64,
    /// Lines written since the log was last trimmed to `retention`.
    untrimmed: i64,
}

/// The outcome of one request, as the log records it.
pub struct Outcome<'a> {
    pub ip: Option<IpAddr>,
    pub method: &'a str,
    pub status: u16,
    pub reason: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub started: Instant,
    pub event_ids: Vec<i64>,
}

impl LogBuffer {
    pub fn new(endpoint: String, store: Store, retention: i64) -> LogBuffer {
        LogBuffer {
            endpoint,
            pending: Vec::new(),
            dropped: 0,
            store,
            retention,
            // Trims at the first flush, in case the retention was lowered.
            untrimmed: retention,
        }
    }

    pub fn record(&mut self, o: Outcome<'_>) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
            self.dropped += 1;
        }
        self.pending.push(NewInboundLog {
            received_at: crate::store::now(),
            source_ip: o.ip.map(|i| i.to_string()),
            method: o.method.chars().take(16).collect(),
            status: o.status,
            reason: o.reason.map(str::to_string),
            detail: o.detail.map(|d| d.chars().take(500).collect()),
            processing_ms: o.started.elapsed().as_millis().min(i64::MAX as u128) as i64,
            event_ids: o.event_ids,
        });
        if self.pending.len() >= FLUSH_AT {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(endpoint = %self.endpoint, dropped = self.dropped, "inbound log lines dropped: the database was not keeping up");
            self.dropped = 0;
        }
        if self.pending.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.pending);
        let batch = LogBatch::new(&self.endpoint, &lines);
        // Trimming walks the endpoint's chunks back to `retention` lines: once every
        // eighth of the retention rather than at every flush, so an endpoint that
        // flushes a line at a time does not pay that walk per line. Reads never show
        // more than `retention` lines either way.
        self.untrimmed += lines.len() as i64;
        let keep = (self.untrimmed >= (self.retention / 8).max(1)).then_some(self.retention);
        if keep.is_some() {
            self.untrimmed = 0;
        }
        let endpoint = self.endpoint.clone();
        let write = self
            .store
            .writer()
            .write_repeatable(move |c, _| inbound_log::append(c, &batch, keep));
        actix::spawn(async move {
            if let Err(e) = write.await {
                tracing::warn!(endpoint = %endpoint, error = %e, "could not write inbound log lines");
            }
        });
    }
}
