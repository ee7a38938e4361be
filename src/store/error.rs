//! Errors of the storage layer.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("could not open the database at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("could not get a database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The data directory's marker says a database was created there, and it is gone.
    #[error("{0}")]
    MissingDatabase(String),
    /// The database file was deleted or replaced while the hub ran; every write is
    /// refused from then on.
    #[error("{0}")]
    DatabaseGone(String),
    /// A setting asks for something this build cannot do yet; the message says what works.
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("running the database migrations failed: {0}")]
    Migration(String),
    #[error("the database writer is not running (the hub is shutting down)")]
    WriterGone,
    #[error("the write queue is full ({0} writes waiting); retry shortly")]
    Overloaded(usize),
    #[error("stored JSON in {what} is invalid: {reason}")]
    CorruptJson { what: &'static str, reason: String },
    /// A constraint violation that the caller can explain to a user (unique, foreign key).
    #[error("{0}")]
    Conflict(String),
    /// A lookup inside a write found nothing to act on.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The write's own code panicked; its transaction was rolled back and the writer
    /// carried on with the next write.
    #[error("the write failed unexpectedly and was rolled back: {0}")]
    Panicked(String),
    /// An operation carried out on another node failed there (see `hub::forward`): its
    /// message, and the seconds after which to retry when retrying can help.
    #[error("{message}")]
    Elsewhere {
        message: String,
        retry_after: Option<u32>,
    },
    /// Another live process runs as this node's `[cluster] node_id`; the message names
    /// the id and says what to do.
    #[error("{0}")]
    NodeIdInUse(String),
}

/// How a caller should answer a failed store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The hub is busy or shutting down: 503, retry after this many seconds.
    RetryLater(u32),
    /// An unexpected failure: 500, with the cause in the log.
    Internal,
}

impl StoreError {
    /// 503 only for overload and shutdown (and a database lost under the running hub,
    /// which refuses every write until an operator restarts it); anything else is a
    /// fault of the hub and answered 500, so a client does not retry into it.
    pub fn answer(&self) -> Answer {
        match self {
            StoreError::Overloaded(_) | StoreError::Pool(_) | StoreError::WriterGone => {
                Answer::RetryLater(1)
            }
            StoreError::Database(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("database is locked")
                    || info.message().contains("busy") =>
            {
                Answer::RetryLater(1)
            }
            StoreError::DatabaseGone(_) => Answer::RetryLater(60),
            StoreError::Elsewhere {
                retry_after: Some(s),
                ..
            } => Answer::RetryLater(*s),
            _ => Answer::Internal,
        }
    }

    /// True when the row the statement needed was absent.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::Database(diesel::result::Error::NotFound) | StoreError::NotFound(_)
        )
    }

    /// True when a UNIQUE constraint rejected the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_overload_shutdown_and_a_lost_database_ask_for_a_retry() {
        assert_eq!(StoreError::Overloaded(10).answer(), Answer::RetryLater(1));
        assert_eq!(StoreError::WriterGone.answer(), Answer::RetryLater(1));
        assert_eq!(
            StoreError::DatabaseGone("replaced".into()).answer(),
            Answer::RetryLater(60)
        );
        let internal = [
            StoreError::CorruptJson {
                what: "agents.options",
                reason: "eof".into(),
            },
            StoreError::Panicked("boom".into()),
            StoreError::Database(diesel::result::Error::NotFound),
            StoreError::Migration("bad".into()),
        ];
        for e in internal {
            assert_eq!(e.answer(), Answer::Internal, "{e}");
        }
    }
}
