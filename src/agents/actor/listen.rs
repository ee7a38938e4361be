//! The agent's listener (see `agents::listen`): started while the agent is enabled and
//! its behaviour has one, restarted when its options change, stopped when it is
//! disabled or deleted; what it hears is committed like a check's outcome.

use actix::prelude::*;

use super::AgentActor;
use super::write::Outcome;
use crate::agents::listen::Heard;
use crate::store::agent_logs::{LEVEL_ERROR, LEVEL_INFO, NewLog};
use crate::store::events::Lineage;

impl AgentActor {
    /// Stops the listener, if one runs, and starts the behaviour's listener again when
    /// the agent is enabled and its behaviour asks for one.
    pub(super) fn listen(&mut self, ctx: &mut Context<Self>) {
        if let Some(running) = self.listening.take() {
            ctx.cancel_future(running);
        }
        if self.row.disabled {
            return;
        }
        let mut actx = Self::agent_ctx(&self.row, &mut self.memory, &self.settings, &self.store);
        let listener = match &self.behavior {
            Ok(b) => b.listener(&mut actx),
            Err(_) => None,
        };
        let logs = std::mem::take(&mut actx.logs);
        if !logs.is_empty() {
            self.persist(
                Outcome {
                    logs,
                    ..Outcome::default()
                },
                ctx,
            );
        }
        let Some(listener) = listener else { return };
        let env = crate::agents::task::TaskEnv {
            allow_private_targets: self.settings.allow_private_targets,
            jabber_roots: self.settings.jabber_roots.clone(),
        };
        let reports = ctx.address().downgrade().recipient();
        let work = listener.start(env, reports).into_actor(self);
        self.listening = Some(ctx.spawn(work));
    }

    /// Stops the listener (the agent is being deleted).
    pub(super) fn stop_listening(&mut self, ctx: &mut Context<Self>) {
        if let Some(running) = self.listening.take() {
            ctx.cancel_future(running);
        }
    }
}

impl Handler<Heard> for AgentActor {
    type Result = ();

    fn handle(&mut self, heard: Heard, ctx: &mut Context<Self>) {
        // A report sent just before the agent was disabled is dropped with it.
        if self.row.disabled {
            return;
        }
        let log = |level, message| NewLog {
            level,
            message,
            inbound_event_id: None,
        };
        let outcome = match heard {
            Heard::Event(payload) => Outcome {
                emitted: vec![(payload, Lineage::default())],
                ..Outcome::default()
            },
            Heard::Log(m) => Outcome {
                logs: vec![log(LEVEL_INFO, m)],
                ..Outcome::default()
            },
            Heard::Error(m) => Outcome {
                logs: vec![log(LEVEL_ERROR, m)],
                ..Outcome::default()
            },
        };
        self.persist(outcome, ctx);
    }
}
