//! Why a stored subscription cannot be used as it is: the row does not compile, its
//! secrets cannot sign, or one event's body cannot be built. The messages are what the
//! hub's log, the attempt log and the API show.

use std::sync::Arc;

use super::filters::FilterError;
use super::signer::SignerError;
use crate::secrets::SecretError;
use crate::template::TemplateError;

/// Why a stored row does not compile. Rows are validated when saved, so each of these
/// means the row was changed behind the API's back.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A JSON column does not parse.
    #[error("{column}: {reason}")]
    Column {
        column: &'static str,
        reason: String,
    },
    /// An event-type pattern or a filter is refused.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The payload template does not compile.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The signature scheme is not one muninn has.
    #[error(transparent)]
    Scheme(#[from] SignerError),
    /// The stored secrets open but cannot sign under the scheme.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl SpecError {
    /// A JSON column that does not parse.
    pub fn column(column: &'static str, e: serde_json::Error) -> SpecError {
        SpecError::Column {
            column,
            reason: e.to_string(),
        }
    }
}

/// Why the stored signing secrets cannot sign: the subscription then holds its
/// deliveries rather than send them unsigned (fail closed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretsError {
    /// The column does not open (key missing, value altered).
    #[error("{0}")]
    Unopened(Arc<SecretError>),
    /// It opens to something that is not a list of secrets.
    #[error("the stored signing secrets are not a list ({0})")]
    NotAList(String),
    /// No secret under a scheme that always signs.
    #[error(
        "secrets: none is stored, but signature_scheme {scheme} always signs; set a new secret (rotate-secret)"
    )]
    NoneForScheme { scheme: &'static str },
    /// A secret of another kind than the scheme's.
    #[error(
        "secrets: stored secret {index} cannot sign under {scheme}: {reason}; set a new secret (rotate-secret)"
    )]
    Unfit {
        index: usize,
        scheme: &'static str,
        reason: SignerError,
    },
}

/// Why a delivery cannot be signed now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SigningError {
    #[error("cannot sign: {0}; the webhook holds its deliveries until then")]
    Secrets(SecretsError),
    /// The newest secret never expires (rotation keeps it open-ended), so a list of
    /// expired ones was altered.
    #[error(
        "cannot sign: every stored signing secret has expired (the secrets column was altered); set a new secret (rotate-secret) to send again"
    )]
    AllExpired,
}

/// Why the body of one delivery cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The payload template failed on this event.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A text payload template rendered something that is not JSON.
    #[error("payload_template did not produce JSON ({reason}): {start}")]
    NotJson { reason: String, start: String },
}
