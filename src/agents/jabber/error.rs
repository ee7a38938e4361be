//! Why a jabber session (a delivery, or a connection listening in a room) stopped.
//! Each is said in the agent's log: a delivery's with the events not sent, a listening
//! connection's before it connects again.

use super::session::SESSION_TIMEOUT;
use crate::agents::dial::ConnectError;

#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A step of the session failed on the wire (`step`: "sending STARTTLS", …).
    #[error("{step} failed: {message}")]
    Step { step: &'static str, message: String },
    /// The server refused the sender's name and password.
    #[error("logging in as {jid} failed: {message}")]
    Login { jid: String, message: String },
    #[error("{0} has no user name")]
    NoUserName(String),
    #[error(
        "the server does not offer STARTTLS; the password is not sent over an unencrypted connection"
    )]
    NoStartTls,
    #[error("the server refused STARTTLS")]
    StartTlsRefused,
    #[error("the server offers no resource binding")]
    NoBinding,
    #[error("the server's resource binding answer is invalid: {0}")]
    BindInvalid(String),
    #[error("the server refused to bind a resource: {0}")]
    BindRefused(String),
    #[error("{0} of the configured extra CA certificates cannot be used")]
    ExtraCa(usize),
    #[error("{name:?} is not a name TLS can verify: {message}")]
    NotTlsName { name: String, message: String },
    #[error("the TLS handshake for {0} timed out")]
    HandshakeTimeout(String),
    #[error("the TLS handshake for {domain} failed: {source}")]
    Handshake {
        domain: String,
        source: std::io::Error,
    },
    #[error("the server closed the connection")]
    Closed,
    /// A live stream yields a stanza or a soft timeout well within this.
    #[error("the server sent no whole stanza within {0} s")]
    NoWholeStanza(u64),
    #[error("the server ended the stream")]
    StreamEnded,
    #[error("the server ended the stream with an error: {0}")]
    StreamError(String),
    #[error("the XMPP session with {server}:{port} took longer than {}s", SESSION_TIMEOUT.as_secs())]
    Timeout { server: String, port: u16 },
    #[error("{nick:?} cannot be a nickname in {room}: {message}")]
    BadNick {
        nick: String,
        room: String,
        message: String,
    },
    #[error("the room answered with an error: {0}")]
    RoomError(String),
    #[error("{room} refused to let {nick} in")]
    NotLetIn { room: String, nick: String },
}

impl XmppError {
    /// `step` failed with `e`.
    pub fn step<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> Self {
        move |e| XmppError::Step {
            step,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the ones the agent logged before these were types.
    #[test]
    fn messages_read_as_before() {
        let cases: Vec<(XmppError, &str)> = vec![
            (
                XmppError::NoStartTls,
                "the server does not offer STARTTLS; the password is not sent over an unencrypted connection",
            ),
            (
                XmppError::step("sending STARTTLS")("broken pipe"),
                "sending STARTTLS failed: broken pipe",
            ),
            (
                XmppError::Timeout {
                    server: "h".into(),
                    port: 5222,
                },
                "the XMPP session with h:5222 took longer than 60s",
            ),
            (
                XmppError::BadNick {
                    nick: "n".into(),
                    room: "r@m".into(),
                    message: "x".into(),
                },
                "\"n\" cannot be a nickname in r@m: x",
            ),
            (
                XmppError::NotLetIn {
                    room: "r@m".into(),
                    nick: "n".into(),
                },
                "r@m refused to let n in",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
