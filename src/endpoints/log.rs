//! The request log of one endpoint: lines collect in memory and go to the Writer in
//! one job per batch (at most every second, or sooner when many are waiting), and one
//! job at a time: while a batch waits for the Writer, new lines wait here. So the
//! memory is bounded: if the database cannot keep up, the oldest waiting lines are
//! dropped and counted, instead of jobs piling up in the Writer's queue (rejected
//! requests are logged too, and they keep coming when the Writer is overloaded).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::store::Store;
use crate::store::inbound_log::{self, LogBatch, NewInboundLog};

/// Lines that trigger an early flush.
const FLUSH_AT: usize = 200;
/// Lines kept waiting at most.
const MAX_PENDING: usize = 5000;

pub struct LogBuffer {
    endpoint: String,
    pending: VecDeque<NewInboundLog>,
    /// A batch is queued at the Writer and not yet answered.
    writing: Arc<AtomicBool>,
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
            pending: VecDeque::new(),
            writing: Arc::new(AtomicBool::new(false)),
            dropped: 0,
            store,
            retention,
            // Trims at the first flush, in case the retention was lowered.
            untrimmed: retention,
        }
    }

    pub fn record(&mut self, o: Outcome<'_>) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(NewInboundLog {
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

    /// Sends the waiting lines to the Writer, unless the previous batch is still there.
    pub fn flush(&mut self) {
        if !self.writing.load(Ordering::Acquire) {
            self.flush_now();
        }
    }

    /// Sends the waiting lines whatever is queued already: when the endpoint stops.
    pub fn flush_all(&mut self) {
        self.flush_now();
    }

    fn flush_now(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(endpoint = %self.endpoint, dropped = self.dropped, "inbound log lines dropped: the database was not keeping up");
            self.dropped = 0;
        }
        if self.pending.is_empty() {
            return;
        }
        let lines = Vec::from(std::mem::take(&mut self.pending));
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
        self.writing.store(true, Ordering::Release);
        let writing = self.writing.clone();
        actix::spawn(async move {
            let written = write.await;
            writing.store(false, Ordering::Release);
            if let Err(e) = written {
                tracing::warn!(endpoint = %endpoint, error = %e, "could not write inbound log lines");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::NoHook;

    fn outcome(detail: &str) -> Outcome<'_> {
        Outcome {
            ip: None,
            method: "POST",
            status: 503,
            reason: Some("overloaded"),
            detail: Some(detail),
            started: Instant::now(),
            event_ids: Vec::new(),
        }
    }

    /// While a batch waits for a busy Writer, new lines wait in the buffer (the oldest
    /// dropped past its bound) instead of queueing more jobs; once the Writer is free
    /// the next flush stores the newest lines.
    #[actix_rt::test]
    async fn a_busy_writer_gets_one_log_batch_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let store =
            Store::open(&config.store_options(), Arc::new(NoHook), Box::new(|_| {})).unwrap();
        let agent = store
            .writer()
            .write(|c, _| crate::store::test_webhook_agent(c))
            .await
            .unwrap();
        let endpoint = inbound_log::agent_endpoint(agent.id);
        let (started, running) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let gate = store.writer().write(move |_, _| {
            let _ = started.send(());
            let _ = released.recv();
            Ok(())
        });
        running.recv().unwrap();

        let mut log = LogBuffer::new(endpoint.clone(), store.clone(), 1000);
        let total = MAX_PENDING + FLUSH_AT * 3;
        for n in 0..total {
            log.record(outcome(&n.to_string()));
        }
        assert_eq!(store.writer().queue_depth(), 1, "one log batch queued");
        assert_eq!(log.pending.len(), MAX_PENDING);
        assert_eq!(log.dropped as usize, total - FLUSH_AT - MAX_PENDING);

        release.send(()).unwrap();
        gate.await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.writing.load(Ordering::Acquire) {
            assert!(
                Instant::now() < deadline,
                "the first batch was never answered"
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        log.flush();
        assert!(log.pending.is_empty());
        while log.writing.load(Ordering::Acquire) {
            assert!(
                Instant::now() < deadline,
                "the second batch was never answered"
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        let shown = store
            .read(move |c| inbound_log::list(c, &endpoint, 1000, 0, 1000))
            .await
            .unwrap();
        assert_eq!(shown.len(), 1000);
        let newest = format!("overloaded: {}", total - 1);
        assert_eq!(shown[0].reason.as_deref(), Some(newest.as_str()));
    }
}
