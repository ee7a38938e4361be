//! Why one attempt did not get a 2xx: the typed outcome of the client, the target
//! guard and the request builder. The outcome decision (`decide`) reads the variant,
//! never the message; the message is what the attempt log and the API show, worded as
//! before the type existed.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The target guard refused the address before any connection: our side's rule,
    /// so retrying cannot help.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer within the subscription's timeout.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection could not be made (name, refused port, reset, ...), as awc words it.
    #[error("{0}")]
    Connect(String),
    /// TLS could not be set up.
    #[error("{0}")]
    Tls(String),
    /// The request went out but failed on the way (body, protocol, bad URL).
    #[error("{0}")]
    Request(String),
    /// The target answered outside 2xx.
    #[error("target answered {0}")]
    Status(u16),
    /// The payload template failed: the body cannot be built, on any attempt.
    #[error("payload_template failed: {0}")]
    Template(String),
    /// The secrets do not open: never sent unsigned.
    #[error("{0}")]
    Signing(String),
    /// A post agent's stored request cannot be read back.
    #[error("the stored request is unreadable: {0}")]
    Unreadable(String),
}

impl SendError {
    /// Our side is wrong and nothing reached the target: the attempt says nothing
    /// about the target (its circuit is left alone) and cannot succeed if repeated.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            SendError::Template(_) | SendError::Signing(_) | SendError::Unreadable(_)
        )
    }

    /// Repeating the attempt cannot succeed.
    pub fn is_final(&self) -> bool {
        self.is_local() || matches!(self, SendError::Refused(_))
    }

    /// awc's error, typed; the message is awc's own.
    pub fn from_awc(e: awc::error::SendRequestError, timeout: Duration) -> SendError {
        use awc::error::{ConnectError, SendRequestError as E};
        match e {
            E::Timeout => SendError::Timeout(timeout),
            E::Connect(ConnectError::SslIsNotSupported) => {
                SendError::Tls(E::Connect(ConnectError::SslIsNotSupported).to_string())
            }
            e @ E::Connect(_) => SendError::Connect(e.to_string()),
            other => SendError::Request(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_wording() {
        assert_eq!(
            SendError::Timeout(Duration::from_millis(1500)).to_string(),
            "timed out after 1500 ms"
        );
        assert_eq!(
            SendError::Refused("target address 10.0.0.1 is private".into()).to_string(),
            "refused: target address 10.0.0.1 is private"
        );
        assert_eq!(SendError::Status(503).to_string(), "target answered 503");
        assert_eq!(
            SendError::Template("no such key".into()).to_string(),
            "payload_template failed: no such key"
        );
        assert_eq!(
            SendError::from_awc(
                awc::error::SendRequestError::Timeout,
                Duration::from_secs(2)
            ),
            SendError::Timeout(Duration::from_secs(2))
        );
    }
}
