//! The request log of `data_output` feeds, kept in memory: the last requests of each
//! feed (time, source address, method, status, time taken). A feed answers from its
//! cache without touching the database, and popular feeds are read often, so their
//! requests are not written to disk; the log starts empty when the hub starts.

use crate::ids::AgentId;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Requests kept per feed; older ones are dropped.
pub const KEPT_PER_FEED: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct FeedRequest {
    /// Numbers the requests since the hub started (newest is largest).
    pub seq: u64,
    /// RFC 3339 in UTC.
    pub received_at: String,
    pub source_ip: Option<IpAddr>,
    pub method: String,
    pub status: u16,
    pub processing_ms: u64,
}

#[derive(Debug, Default)]
pub struct FeedLog {
    inner: Mutex<(u64, HashMap<AgentId, VecDeque<FeedRequest>>)>,
}

impl FeedLog {
    pub fn record(
        &self,
        agent_id: AgentId,
        source_ip: Option<IpAddr>,
        method: &str,
        status: u16,
        processing_ms: u64,
    ) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let seq = g.0;
        let log = g.1.entry(agent_id).or_default();
        if log.len() >= KEPT_PER_FEED {
            log.pop_front();
        }
        log.push_back(FeedRequest {
            seq,
            received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            source_ip,
            method: method.to_string(),
            status,
            processing_ms,
        });
    }

    /// A feed's requests, newest first.
    pub fn newest_first(&self, agent_id: AgentId, limit: usize, offset: usize) -> Vec<FeedRequest> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.get(&agent_id).map_or_else(Vec::new, |log| {
            log.iter().rev().skip(offset).take(limit).cloned().collect()
        })
    }

    /// Forgets a deleted feed's requests.
    pub fn forget(&self, agent_id: AgentId) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.remove(&agent_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_requests_of_each_feed_newest_first() {
        let log = FeedLog::default();
        for n in 0..(KEPT_PER_FEED as u16 + 5) {
            log.record(AgentId(1), None, "GET", 200 + n, 1);
        }
        log.record(AgentId(2), None, "HEAD", 304, 0);
        let one = log.newest_first(AgentId(1), 1000, 0);
        assert_eq!(one.len(), KEPT_PER_FEED);
        assert_eq!(one[0].status, 200 + KEPT_PER_FEED as u16 + 4);
        assert!(one.windows(2).all(|w| w[0].seq > w[1].seq));
        assert_eq!(log.newest_first(AgentId(1), 2, 1)[0].status, one[1].status);
        assert_eq!(log.newest_first(AgentId(2), 10, 0)[0].method, "HEAD");
        log.forget(AgentId(2));
        assert!(log.newest_first(AgentId(2), 10, 0).is_empty());
    }
}
