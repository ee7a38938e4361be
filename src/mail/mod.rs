//! Mail: what email agents send and how it leaves the hub. Owns the rendered mail
//! ([`Mail`], as Huginn's SystemMailer takes it), building the MIME message
//! ([`message`]), the SMTP transport ([`transport`], lettre over tokio and rustls) and
//! the outbox actor ([`outbox`]) that sends queued mails with retries and logs each
//! attempt in the agent's log.

pub mod message;
pub mod outbox;
pub mod transport;

pub use outbox::{Outbox, WakeOutbox};
pub use transport::SmtpSettings;

use serde::{Deserialize, Serialize};

/// What the sealed outbox rows are sealed for (see `crate::secrets`).
pub const OUTBOX_PURPOSE: &str = crate::secrets::purpose::MAIL_OUTBOX;

/// Everything that can go wrong with one mail. `retryable` says whether another
/// attempt may succeed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "SMTP is not configured: set host and from in the [smtp] section of the config (or MUNINN_SMTP_HOST and MUNINN_SMTP_FROM) and restart"
    )]
    NotConfigured,
    #[error(
        "no recipient: the agent names no recipients and its owner has no email address (set one with PATCH /api/me {{\"email\": ...}})"
    )]
    NoRecipient,
    #[error("{what} {value:?} is not an email address ({reason})")]
    Address {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the SMTP password variable {0} is not set in the environment")]
    PasswordEnv(String),
    #[error("the SMTP server refused the mail: {0}")]
    Refused(String),
    #[error("the SMTP server failed: {0}")]
    Temporary(String),
    #[error("the queued mail cannot be read: {0}")]
    Corrupt(String),
}

impl MailError {
    /// Whether a later attempt may succeed (a 4xx answer, a network failure).
    pub fn retryable(&self) -> bool {
        matches!(self, MailError::Temporary(_))
    }
}

/// A group of lines for one event, as Huginn's `present(payload)` makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub title: String,
    pub entries: Vec<String>,
}

/// One rendered mail, queued in the outbox (sealed: it holds rendered options).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    /// None: the owner's address, read when the mail is sent.
    pub to: Option<String>,
    pub from: Option<String>,
    pub subject: String,
    pub headline: Option<String>,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub groups: Vec<Group>,
    /// The events it was made from, for the agent log ("with event 5").
    pub event_ids: Vec<i64>,
}
