//! The Clock: the hub's periodic work. Deletes expired events in bounded batches and
//! runs the periodic propagation for agents with `propagate_immediately: false`.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::registry::Registry;
use crate::agents::actor::CatchUp;
use crate::store::{Store, events};

const EXPIRY_EVERY: Duration = Duration::from_secs(60);
const EXPIRY_BATCH: i64 = 1000;

pub struct Clock {
    store: Store,
    registry: Arc<Registry>,
    propagation_every: Duration,
}

impl Clock {
    pub fn new(store: Store, registry: Arc<Registry>, propagation_every: Duration) -> Self {
        Clock {
            store,
            registry,
            propagation_every,
        }
    }

    fn expire(&mut self, ctx: &mut Context<Self>) {
        let write = self
            .store
            .writer()
            .write(|c, _| events::delete_expired(c, EXPIRY_BATCH));
        ctx.spawn(write.into_actor(self).map(|res, _, ctx| match res {
            Ok(n) if n as i64 == EXPIRY_BATCH => {
                // More to delete: go on soon, one bounded batch at a time.
                ctx.run_later(Duration::from_millis(50), |act, ctx| act.expire(ctx));
            }
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired events deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deleting expired events failed; will retry"),
        }));
    }

    fn propagate(&mut self) {
        self.registry.for_each_agent(|_, entry| {
            if entry.receives_events && !entry.propagate_immediately && !entry.disabled {
                entry.addr.do_send(CatchUp);
            }
        });
    }
}

impl Actor for Clock {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(EXPIRY_EVERY, |act, ctx| act.expire(ctx));
        ctx.run_interval(self.propagation_every, |act, _| act.propagate());
    }
}
