//! `Outbox`: the actor that sends queued mails. Email agents write their mails into
//! the `mail_outbox` table in the same transaction as everything else they did, then
//! wake this actor; it also polls, so a mail due for a retry, or left by a restart,
//! goes out without a wake-up. Each attempt is written to the agent's log (with the
//! SMTP server's answer); a temporary failure waits a doubling delay
//! ([`Backoff`]); after `max_attempts`, or on a 5xx answer, the mail is marked dead
//! with an error log. Sends run one at a time, off every agent's mailbox.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::transport::Transport;
use super::{Mail, MailError, OUTBOX_PURPOSE, SmtpSettings};
use crate::ops::backoff::Backoff;
use crate::store::agent_logs::{self, LEVEL_ERROR, LEVEL_INFO, NewLog};
use crate::store::mail_outbox::{self, OutboxRow};
use crate::store::{Store, now, users};

/// Mails read per pass.
const BATCH: i64 = 32;
/// How often due retries are looked for.
const POLL: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
const RETRY_CAP: Duration = Duration::from_secs(3600);

pub struct Outbox {
    store: Store,
    smtp: SmtpSettings,
    /// Built once: a bad `[smtp]` section fails every mail with the same reason
    /// (shared: each pass takes a copy).
    transport: Result<Transport, Arc<MailError>>,
    log_length: i64,
    busy: bool,
    again: bool,
}

impl Outbox {
    pub fn new(store: Store, smtp: SmtpSettings, log_length: i64) -> Self {
        let transport = smtp.transport().map_err(Arc::new);
        if let Err(e) = &transport
            && smtp.configured()
        {
            tracing::error!(error = %e, "SMTP transport cannot be built; every mail will fail");
        }
        Outbox {
            store,
            smtp,
            transport,
            log_length,
            busy: false,
            again: false,
        }
    }

    fn pass(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            self.again = true;
            return;
        }
        self.busy = true;
        let work = send_due(
            self.store.clone(),
            self.smtp.clone(),
            self.transport.clone(),
            self.log_length,
        );
        ctx.spawn(work.into_actor(self).map(|more, act, ctx| {
            act.busy = false;
            if std::mem::take(&mut act.again) || more {
                act.pass(ctx);
            }
        }));
    }
}

impl Actor for Outbox {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pass(ctx);
        ctx.run_interval(POLL, |act, ctx| act.pass(ctx));
    }
}

/// Mails were queued: send them now rather than at the next poll.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WakeOutbox;

impl Handler<WakeOutbox> for Outbox {
    type Result = ();

    fn handle(&mut self, _: WakeOutbox, ctx: &mut Context<Self>) {
        self.pass(ctx);
    }
}

/// Sends what is due; true when a full batch was read (more may be due).
async fn send_due(
    store: Store,
    smtp: SmtpSettings,
    transport: Result<Transport, Arc<MailError>>,
    log_length: i64,
) -> bool {
    let rows = match store.read(|c| mail_outbox::due(c, now(), BATCH)).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "mail outbox cannot be read; trying again shortly");
            return false;
        }
    };
    let full = rows.len() as i64 == BATCH;
    for row in rows {
        let (to, what, result) = attempt(&store, &smtp, &transport, &row).await;
        let outcome = settle(&smtp, &row, &to, &what, result);
        let (id, agent_id) = (row.id, row.agent_id);
        let write = store.writer().write(move |c, _| {
            let still_owed = match outcome.next {
                Outcome::Sent => mail_outbox::sent(c, id)?,
                Outcome::Retry(at) => {
                    mail_outbox::failed(c, id, outcome.attempts, &outcome.error, Some(at))?
                }
                Outcome::Dead => {
                    mail_outbox::failed(c, id, outcome.attempts, &outcome.error, None)?
                }
            };
            // A deleted agent took its mails (and its log) with it.
            if still_owed {
                agent_logs::append(c, agent_id, std::slice::from_ref(&outcome.log), log_length)?;
            }
            Ok(())
        });
        if let Err(e) = write.await {
            tracing::error!(outbox_id = id, error = %e, "mail outcome cannot be recorded; the mail stays due");
            return false;
        }
    }
    full
}

/// One attempt: the recipient and the events it was for (for the log), and what
/// happened.
async fn attempt(
    store: &Store,
    smtp: &SmtpSettings,
    transport: &Result<Transport, Arc<MailError>>,
    row: &OutboxRow,
) -> (String, String, Result<(), MailError>) {
    let mail: Mail = match store
        .keys()
        .open(OUTBOX_PURPOSE, &row.message)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => return ("?".into(), String::new(), Err(MailError::Corrupt(e))),
    };
    let what = match (row.event_id, mail.event_ids.as_slice()) {
        (Some(id), _) => format!("with event {id}"),
        (None, ids) => format!(
            "with events [{}]",
            ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ),
    };
    // An unconfigured hub is the first thing to say, whoever the mail is for.
    let transport = match transport {
        Ok(t) => t,
        Err(_) if !smtp.configured() => {
            let to = mail.to.clone().unwrap_or_else(|| "the owner".into());
            return (to, what, Err(MailError::NotConfigured));
        }
        Err(e) => return ("?".into(), what, Err(MailError::Build(e.to_string()))),
    };
    let to = match &mail.to {
        Some(to) => to.clone(),
        None => {
            let user = row.user_id;
            match store.read(move |c| users::email_of(c, user)).await {
                Ok(Some(e)) if !e.trim().is_empty() => e,
                Ok(_) => return ("the owner".into(), what, Err(MailError::NoRecipient)),
                Err(e) => {
                    return (
                        "the owner".into(),
                        what,
                        Err(MailError::Temporary(e.to_string())),
                    );
                }
            }
        }
    };
    let message = match super::message::build(&mail, &to, smtp.default_from()) {
        Ok(m) => m,
        Err(e) => return (to, what, Err(e)),
    };
    let result = transport.send(message).await;
    (to, what, result)
}

enum Outcome {
    Sent,
    Retry(chrono::NaiveDateTime),
    Dead,
}

struct Settled {
    next: Outcome,
    attempts: i32,
    error: String,
    log: NewLog,
}

/// What an attempt's result means for the row, and the agent-log line saying so.
fn settle(
    smtp: &SmtpSettings,
    row: &OutboxRow,
    to: &str,
    what: &str,
    result: Result<(), MailError>,
) -> Settled {
    let attempts = row.attempts.saturating_add(1);
    let line = |level, message| NewLog {
        level,
        message,
        inbound_event_id: row.event_id,
    };
    match result {
        Ok(()) => Settled {
            next: Outcome::Sent,
            attempts,
            error: String::new(),
            log: line(LEVEL_INFO, format!("Sent mail to {to} {what}")),
        },
        Err(e) => {
            let max = smtp.config.max_attempts.max(1);
            let error = e.to_string();
            tracing::warn!(agent_id = row.agent_id.0, outbox_id = row.id, attempt = attempts, error = %error, "mail not sent");
            if e.retryable() && (attempts as u32) < max {
                let wait = retry_wait(smtp.config.retry_base_ms, attempts);
                let at = now() + chrono::Duration::from_std(wait).unwrap_or_default();
                Settled {
                    next: Outcome::Retry(at),
                    attempts,
                    log: line(
                        LEVEL_ERROR,
                        format!(
                            "Error sending mail to {to} {what}: {error} (attempt {attempts} of {max}; retrying in {:.1} s)",
                            wait.as_secs_f64()
                        ),
                    ),
                    error,
                }
            } else {
                Settled {
                    next: Outcome::Dead,
                    attempts,
                    log: line(
                        LEVEL_ERROR,
                        format!(
                            "Error sending mail to {to} {what}: {error}; gave up after {attempts} attempt{}, the mail is kept in the outbox as dead",
                            if attempts == 1 { "" } else { "s" }
                        ),
                    ),
                    error,
                }
            }
        }
    }
}

/// The wait after `attempts` failures: the base, doubling per failure, capped.
fn retry_wait(base_ms: u64, attempts: i32) -> Duration {
    let mut b = Backoff::new(Duration::from_millis(base_ms.max(1)), RETRY_CAP);
    for _ in 0..attempts.clamp(1, 32) {
        b.fail();
    }
    b.delay()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        assert_eq!(retry_wait(100, 1), Duration::from_millis(100));
        assert_eq!(retry_wait(100, 3), Duration::from_millis(400));
        assert_eq!(retry_wait(30_000, 30), RETRY_CAP);
    }
}
