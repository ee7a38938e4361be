//! What the Hub and the API tell a subscription actor: new deliveries, a changed
//! subscription, look again, drain for shutdown, stop.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix::prelude::*;

use super::{Item, SubscriptionActor, rate_bucket, report_signing};
use crate::delivery::spec::Spec;
use crate::store::subscriptions::SubscriptionRow;

/// New deliveries, committed, due now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue(pub Vec<Item>);

impl Handler<Enqueue> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        // An earlier push was dropped: its deliveries wait in the database, ahead of these.
        if self.shared.lagging.swap(false, Ordering::AcqRel) {
            self.backlog = true;
        }
        // With several nodes every delivery is claimed before it is sent (`claims`):
        // a push only says there is work, the refill claims and reads it.
        if self.settings.claims.is_some() {
            self.backlog = true;
        }
        for item in msg.0 {
            // With a backlog in the database, newer items must not jump ahead of it.
            if self.backlog || !self.admit(item) {
                self.backlog = true;
            }
        }
        if self.backlog {
            self.refill(ctx);
        }
        self.pump(ctx);
    }
}

/// The subscription changed (options, pause, resume) or deliveries were re-queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub SubscriptionRow);

impl Handler<Reconfigure> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) {
        // The row may carry circuit columns written elsewhere: save ours again.
        self.saved_circuit = None;
        match Spec::from_row(&msg.0, self.store.keys()) {
            Ok(s) => {
                report_signing(&s);
                self.bucket = rate_bucket(&s);
                self.gone = !s.active;
                self.spec = Arc::new(s);
            }
            Err(e) => {
                tracing::error!(subscription_id = msg.0.id.0, error = %e, "subscription is invalid")
            }
        }
        self.backlog = true;
        self.refill(ctx);
        self.pump(ctx);
    }
}

/// Look in the database again now (after a manual retry or a replay).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

impl Handler<Wake> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.backlog = true;
        self.refill(ctx);
    }
}

/// The hub is shutting down: start no new attempt and answer once every attempt in
/// flight has its outcome committed. What is not sent stays due in the database and
/// is sent after the restart.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for SubscriptionActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        let (done, drained) = tokio::sync::oneshot::channel();
        self.drained.push(done);
        self.answer_drained();
        Box::pin(async move {
            let _ = drained.await;
        })
    }
}

/// The subscription was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
