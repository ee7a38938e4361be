//! What an inbound endpoint received, as its owner reads it: the request log and its
//! totals, for an incoming webhook (`/webhook/{token}`) or a webhook agent's Huginn URL.
//! Log lines never hold the signature secret or the token.

use super::{IncomingError, IncomingRunning, IncomingWebhooks};
use crate::store::inbound_log::{self, InboundLogRow};
use crate::store::{StoreError, agents};

/// Whose log: an incoming webhook's, or a webhook agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    Incoming,
    Agent,
}

impl LogSource {
    /// `webhook_type` as a query names it; `incoming` when left out.
    pub fn parse(webhook_type: Option<&str>) -> Result<LogSource, LogError> {
        match webhook_type.unwrap_or("incoming") {
            "incoming" => Ok(LogSource::Incoming),
            "agent" => Ok(LogSource::Agent),
            other => Err(LogError::Invalid(format!(
                "webhook_type must be \"incoming\", \"agent\", \"feed\" or \"outgoing\" (got {other:?})"
            ))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The query is wrong; the message names the parameter.
    #[error("{0}")]
    Invalid(String),
    /// No such webhook agent, or one the caller may not see.
    #[error("webhook agent {0} not found")]
    AgentNotFound(i64),
    #[error(transparent)]
    Incoming(#[from] IncomingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the running endpoints are asked to write the lines they hold in memory.
#[allow(async_fn_in_trait)]
pub trait FlushLogs {
    /// The endpoint of webhook agent `agent_id`, if it runs.
    fn flush_agent_log(&self, agent_id: crate::ids::AgentId);
    /// The endpoint of incoming webhook `id`, if it runs (a stopped endpoint flushed its
    /// lines when it stopped).
    async fn flush_incoming_log(&self, id: crate::ids::IncomingWebhookId);
}

/// Totals over every request an endpoint answered.
#[derive(Debug, Default, PartialEq)]
pub struct LogTotals {
    pub received: i64,
    pub accepted: i64,
    /// Answered with the first response; no new event.
    pub duplicates: i64,
    pub rejected: i64,
    /// (reason, requests), in the store's order.
    pub rejected_by_reason: Vec<(String, i64)>,
    pub average_processing_ms: f64,
}

impl LogTotals {
    /// Sums the stored (outcome, requests, total_ms) rows.
    pub fn from_rows(rows: Vec<(String, i64, i64)>) -> LogTotals {
        let mut t = LogTotals::default();
        let mut total_ms = 0i64;
        for (outcome, n, ms) in rows {
            t.received += n;
            total_ms += ms;
            match outcome.as_str() {
                "accepted" => t.accepted += n,
                "duplicate" => t.duplicates += n,
                _ => {
                    t.rejected += n;
                    t.rejected_by_reason.push((outcome, n));
                }
            }
        }
        if t.received > 0 {
            t.average_processing_ms = total_ms as f64 / t.received as f64;
        }
        t
    }
}

impl<R: IncomingRunning + FlushLogs> IncomingWebhooks<'_, R> {
    /// The log key of endpoint `id` if `scope` may see it, with every line it answered
    /// so far written: lines wait in the endpoint's memory up to a second before they
    /// are written, so a read first has them written. The Writer commits in the order
    /// jobs were queued: once an empty job queued after the lines commits, so have they.
    pub async fn log_for_read(
        &self,
        scope: Option<i64>,
        source: LogSource,
        id: i64,
    ) -> Result<String, LogError> {
        let key = match source {
            LogSource::Agent => {
                self.store
                    .read(move |c| agents::find_owned(c, scope, crate::ids::AgentId(id)))
                    .await?
                    .filter(|r| {
                        crate::agent_kind::Kind::parse(&r.agent_type)
                            == Some(crate::agent_kind::Kind::Webhook)
                    })
                    .ok_or(LogError::AgentNotFound(id))?;
                self.running.flush_agent_log(crate::ids::AgentId(id));
                crate::endpoints::actor::endpoint_key(crate::ids::AgentId(id))
            }
            LogSource::Incoming => {
                let id = crate::ids::IncomingWebhookId(id);
                self.get(scope, id).await?;
                self.running.flush_incoming_log(id).await;
                crate::endpoints::incoming::endpoint_key(id)
            }
        };
        self.store.writer().write_repeatable(|_, _| Ok(())).await?;
        Ok(key)
    }

    /// The newest lines of log `key` (at most `limit`, after skipping `offset`), of the
    /// `keep` the ring holds.
    pub async fn log_lines(
        &self,
        key: String,
        limit: i64,
        offset: i64,
        keep: i64,
    ) -> Result<Vec<InboundLogRow>, LogError> {
        Ok(self
            .store
            .read(move |c| inbound_log::list(c, &key, limit, offset, keep))
            .await?)
    }

    /// The totals of log `key`.
    pub async fn log_totals(&self, key: String) -> Result<LogTotals, LogError> {
        let rows = self
            .store
            .read(move |c| inbound_log::stats(c, &key))
            .await?;
        Ok(LogTotals::from_rows(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_split_accepted_duplicates_and_rejections() {
        let t = LogTotals::from_rows(vec![
            ("accepted".into(), 3, 30),
            ("duplicate".into(), 1, 2),
            ("bad_signature".into(), 2, 8),
        ]);
        assert_eq!(t.received, 6);
        assert_eq!(t.accepted, 3);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.rejected, 2);
        assert_eq!(t.rejected_by_reason, vec![("bad_signature".to_string(), 2)]);
        assert!((t.average_processing_ms - 40.0 / 6.0).abs() < 1e-9);
        assert_eq!(LogTotals::from_rows(vec![]).average_processing_ms, 0.0);
    }

    #[test]
    fn an_unknown_webhook_type_is_named() {
        let e = LogSource::parse(Some("smtp")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "webhook_type must be \"incoming\", \"agent\", \"feed\" or \"outgoing\" (got \"smtp\")"
        );
        assert_eq!(LogSource::parse(None).unwrap(), LogSource::Incoming);
    }
}
