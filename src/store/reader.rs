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
        (msg.0)(&mut conn)
    }
}
