//! The messages an agent's actor takes: events, catch-up, reload, checks, emissions,
//! memory, and what it tells the Hub.

use std::sync::atomic::Ordering;

use actix::prelude::*;
use serde_json::Value;

use super::write::Outcome;
use super::{AgentActor, build_behavior};
use crate::agents::ControlAction;
use crate::ids::AgentId;
use crate::store::Committed;
use crate::store::agents::AgentRow;
use crate::store::events::Lineage;
use crate::store::subscriptions::SubscriptionRow;

/// Events committed by the agent's sources, in id order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReceiveEvents(pub Vec<Committed>);

impl Handler<ReceiveEvents> for AgentActor {
    type Result = ();

    fn handle(&mut self, msg: ReceiveEvents, ctx: &mut Context<Self>) {
        self.shared
            .backlog
            .fetch_sub(msg.0.len(), Ordering::Relaxed);
        // An earlier push was dropped (mailbox full). Its events precede these, so
        // handling these first would move the mark past them: read everything unhandled
        // from the database instead, which covers this batch too (it is committed).
        if self.shared.lagging.swap(false, Ordering::AcqRel) {
            self.catch_up(ctx);
            return;
        }
        // A disabled agent keeps its backlog: it is read back when it is enabled.
        if !self.row.disabled {
            self.process(msg.0, ctx);
        }
    }
}

/// Read and handle everything not handled yet.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatchUp;

impl Handler<CatchUp> for AgentActor {
    type Result = ();

    fn handle(&mut self, _: CatchUp, ctx: &mut Context<Self>) {
        self.catch_up(ctx);
    }
}

/// The agent's row changed (options, name, disabled ...).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload(pub AgentRow);

impl Handler<Reload> for AgentActor {
    type Result = ();

    fn handle(&mut self, msg: Reload, ctx: &mut Context<Self>) {
        let was_disabled = self.row.disabled;
        // The listener restarts only when what it was started from changed.
        let relisten = was_disabled != msg.0.disabled
            || self.row.options != msg.0.options
            || self.row.user_id != msg.0.user_id;
        self.behavior = build_behavior(&msg.0);
        self.row = msg.0;
        if was_disabled && !self.row.disabled {
            self.catch_up(ctx);
        }
        if relisten {
            self.listen(ctx);
        }
    }
}

/// The agent was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for AgentActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.stop_listening(ctx);
        ctx.stop();
    }
}

/// A controlling agent asks for actions on its control targets (handled by the Hub).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ControlTargets {
    pub controller_id: AgentId,
    pub actions: Vec<ControlAction>,
}

/// Run the agent's `check` now (its schedule fired, or someone asked).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunCheck;

impl Handler<RunCheck> for AgentActor {
    type Result = ();

    fn handle(&mut self, _: RunCheck, ctx: &mut Context<Self>) {
        if self.row.disabled {
            return;
        }
        self.check(ctx);
    }
}

/// Emit these payloads as the agent's events (a manual_event agent's posted payloads).
#[derive(Message)]
#[rtype(result = "Result<Vec<crate::ids::EventId>, crate::store::StoreError>")]
pub struct EmitPayloads(pub Vec<Value>);

impl Handler<EmitPayloads> for AgentActor {
    type Result = ResponseFuture<Result<Vec<crate::ids::EventId>, crate::store::StoreError>>;

    fn handle(&mut self, msg: EmitPayloads, _: &mut Context<Self>) -> Self::Result {
        let emitted = msg.0.into_iter().map(|p| (p, Lineage::default())).collect();
        let write = self.write_outcome(Outcome {
            emitted,
            ..Outcome::default()
        });
        Box::pin(async move { write.await.map(|(ids, _)| ids) })
    }
}

/// Forget everything in memory (`DELETE /api/agents/{id}/memory`).
#[derive(Message)]
#[rtype(result = "Result<(), crate::store::StoreError>")]
pub struct ClearMemory;

impl Handler<ClearMemory> for AgentActor {
    type Result = ResponseFuture<Result<(), crate::store::StoreError>>;

    fn handle(&mut self, _: ClearMemory, _: &mut Context<Self>) -> Self::Result {
        self.memory = Value::Object(Default::default());
        let write = self.write_outcome(Outcome {
            memory_changed: true,
            ..Outcome::default()
        });
        Box::pin(async move { write.await.map(|_| ()) })
    }
}

/// A post agent queued requests on its subscription: start its actor if it is new,
/// otherwise wake it to read them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionTouched {
    pub row: SubscriptionRow,
    pub created: bool,
}
