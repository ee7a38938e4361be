//! One queued write as the batch sees it: the job trait the batch loop drives, the
//! write's closure (run at most once, or as often as its batch is retried) and its
//! waiter, and the commands the writer thread receives.

use tokio::sync::oneshot;

use super::emitted::{Committed, Emitted, EventHook};
use super::savepoint::guarded;
use crate::store::{Conn, StoreError};

/// One queued write, as the batch sees it.
pub(super) trait BatchJob: Send {
    /// Runs the write inside the batch's transaction, in a savepoint of its own when
    /// `isolated`; returns whether it succeeded. Sets `broken` when the transaction's
    /// state is no longer known (a savepoint that could not be closed, a diesel
    /// transaction that could not be rolled back): the batch must not commit.
    fn run(
        &mut self,
        conn: &mut Conn,
        out: &mut Vec<Committed>,
        hook: &dyn EventHook,
        next_id: &mut i64,
        isolated: bool,
        broken: &mut bool,
    ) -> bool;
    /// Whether the write may run again after its batch was rolled back.
    fn repeatable(&self) -> bool;
    /// Answers the waiter, once the batch's commit is known.
    fn answer(self: Box<Self>, commit: Result<(), String>);
    /// Answers the waiter with `reason`, without running the write.
    fn fail(self: Box<Self>, reason: String);
    /// Answers the waiter with `error`, without running the write.
    fn refuse(self: Box<Self>, error: StoreError);
}

pub(super) type Job = Box<dyn BatchJob>;

/// The closure of a write: run at most once, or as often as its batch is retried.
pub(super) trait Body<T>: Send {
    const REPEATABLE: bool;
    fn call(&mut self, conn: &mut Conn, emitted: &mut Emitted<'_>) -> Result<T, StoreError>;
}

pub(super) struct Once<F>(pub(super) Option<F>);

impl<T, F> Body<T> for Once<F>
where
    F: FnOnce(&mut Conn, &mut Emitted<'_>) -> Result<T, StoreError> + Send,
{
    const REPEATABLE: bool = false;
    fn call(&mut self, conn: &mut Conn, emitted: &mut Emitted<'_>) -> Result<T, StoreError> {
        match self.0.take() {
            Some(f) => f(conn, emitted),
            // Batches holding a run-once write never retry; this is a writer bug.
            None => Err(StoreError::Panicked(
                "a run-once write was run twice".into(),
            )),
        }
    }
}

pub(super) struct Repeat<F>(pub(super) F);

impl<T, F> Body<T> for Repeat<F>
where
    F: Fn(&mut Conn, &mut Emitted<'_>) -> Result<T, StoreError> + Send,
{
    const REPEATABLE: bool = true;
    fn call(&mut self, conn: &mut Conn, emitted: &mut Emitted<'_>) -> Result<T, StoreError> {
        (self.0)(conn, emitted)
    }
}

/// A write, its latest outcome and its waiter.
pub(super) struct Write<T, B> {
    pub(super) body: B,
    pub(super) result: Option<Result<T, StoreError>>,
    pub(super) reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send, B: Body<T>> BatchJob for Write<T, B> {
    fn run(
        &mut self,
        conn: &mut Conn,
        out: &mut Vec<Committed>,
        hook: &dyn EventHook,
        next_id: &mut i64,
        isolated: bool,
        broken: &mut bool,
    ) -> bool {
        let mut mine = Vec::new();
        let body = &mut self.body;
        let result = guarded(conn, isolated, broken, |c| {
            // A panic must not kill the one thread every write goes through: it becomes
            // this write's error, and what it wrote is rolled back.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                body.call(
                    c,
                    &mut Emitted {
                        out: &mut mine,
                        hook,
                        next_id: &mut *next_id,
                    },
                )
            }))
            .unwrap_or_else(|p| Err(StoreError::Panicked(crate::store::panic_message(&*p))))
        });
        let ok = result.is_ok();
        if ok {
            out.append(&mut mine);
        }
        self.result = Some(result);
        ok
    }

    fn repeatable(&self) -> bool {
        B::REPEATABLE
    }

    fn answer(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (self.result, commit) {
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(reason)) => Err(StoreError::Database(
                diesel::result::Error::QueryBuilderError(reason.into()),
            )),
            (None, _) => Err(StoreError::WriterGone),
        };
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, reason: String) {
        let _ = self.reply.send(Err(StoreError::Database(
            diesel::result::Error::QueryBuilderError(reason.into()),
        )));
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// What the writer thread receives: a job, or the request to finish and close.
pub(super) enum Cmd {
    Job(Job),
    /// Commit everything queued before this, close the connection (which checkpoints
    /// the WAL), then answer. Writes sent afterwards fail with `WriterGone`.
    Close(oneshot::Sender<()>),
}
