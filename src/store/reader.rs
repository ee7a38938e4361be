//! Readers: a `SyncArbiter` of threads that run queries on pooled read-only
//! connections, so diesel never blocks an actix-web worker or an async actor.

use actix::{Actor, Handler, Message, SyncContext};

use super::{Conn, ReadPool, StoreError};

pub struct Reader {
    pool: ReadPool,
}

impl Reader {
    pub fn new(pool: ReadPool) -> Self {
        Reader { pool }
    }
}

impl Actor for Reader {
    type Context = SyncContext<Self>;
}

/// A query function: runs on one read connection.
pub type Query<R> = Box<dyn FnOnce(&mut Conn) -> Result<R, StoreError> + Send>;

/// Runs one query function on a read connection.
pub struct Read<R>(pub Query<R>);

impl<R: Send + 'static> Message for Read<R> {
    type Result = Result<R, StoreError>;
}

impl<R: Send + 'static> Handler<Read<R>> for Reader {
    type Result = Result<R, StoreError>;

    fn handle(&mut self, msg: Read<R>, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        // A panic in a query must not end this reader thread (the pool has no other
        // way to get it back): it becomes the read's error.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (msg.0)(&mut conn)))
            .unwrap_or_else(|p| Err(StoreError::Panicked(super::panic_message(&*p))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::store::{NoHook, Store, StoreError};

    /// More panicking reads than there are reader threads, then a normal one: each panic
    /// is its read's error, and no reader thread is lost to it.
    #[actix_rt::test]
    async fn a_panicking_read_is_an_error_and_the_readers_carry_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let opts = config.store_options();
        let store = Store::open(&opts, Arc::new(NoHook), Box::new(|_| {})).unwrap();
        for _ in 0..opts.reader_threads + 2 {
            let read = store
                .read(|_| -> Result<(), StoreError> { panic!("bug in a query") })
                .await;
            assert!(
                matches!(&read, Err(StoreError::Panicked(m)) if m == "bug in a query"),
                "{read:?}"
            );
        }
        let answer = store.read(|_| Ok(7)).await;
        assert_eq!(answer.unwrap(), 7, "a reader is still there to run it");
    }
}
