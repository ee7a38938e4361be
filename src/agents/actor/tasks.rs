//! Asynchronous work a behaviour asked for (an IMAP session, ...), run on the agent's
//! arbiter; each result goes back to `Behavior::task_done` and is committed.

use actix::prelude::*;

use super::write::Outcome;
use super::{AgentActor, AgentCtx};
use crate::store::events::Lineage;

impl AgentActor {
    /// Starts the tasks a behaviour asked for, on this arbiter (they are futures: their
    /// waits do not hold the mailbox), and commits what the behaviour makes of each result.
    pub(super) fn run_tasks(
        &mut self,
        tasks: Vec<crate::agents::task::Task>,
        ctx: &mut Context<Self>,
    ) {
        let env = crate::agents::task::TaskEnv {
            allow_private_targets: self.settings.allow_private_targets,
            jabber_roots: self.settings.jabber_roots.clone(),
        };
        for task in tasks {
            ctx.spawn(
                task.start(env.clone())
                    .into_actor(self)
                    .map(|output, act, ctx| {
                        let mut actx =
                            Self::agent_ctx(&act.row, &mut act.memory, &act.settings, &act.store);
                        if let Ok(b) = &mut act.behavior {
                            b.task_done(&mut actx, output);
                        }
                        let AgentCtx {
                            emitted,
                            logs,
                            memory_changed,
                            ..
                        } = actx;
                        let emitted = emitted
                            .into_iter()
                            .map(|p| (p, Lineage::default()))
                            .collect();
                        act.persist(
                            Outcome {
                                emitted,
                                logs,
                                memory_changed,
                                ..Outcome::default()
                            },
                            ctx,
                        );
                    }),
            );
        }
    }
}
