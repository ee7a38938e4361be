//! Credentials a behaviour set while it ran (a java_script agent's
//! `this.credential(name, value)`): saved through the credentials service, in order,
//! after the run, as Huginn saves them during it. The JavaScript worker is a child
//! process and never writes anything itself: the sets come back in its answer. A refused
//! save is an error log on the agent; the value is never in it.

use actix::prelude::*;

use super::AgentActor;
use super::write::Outcome;
use crate::store::agent_logs::{LEVEL_ERROR, NewLog};

impl AgentActor {
    /// Saves `saves` for the agent's owner. `wait` holds the mailbox until they are
    /// saved, so the agent's next run (a check, an event) reads the new values.
    pub(super) fn save_credentials(
        &mut self,
        saves: Vec<(String, String)>,
        ctx: &mut Context<Self>,
    ) {
        if saves.is_empty() {
            return;
        }
        let store = self.store.clone();
        let owner = self.row.user_id;
        let max = self.settings.max_credentials_per_user;
        let work = async move {
            let mut logs = Vec::new();
            for (name, value) in saves {
                let saved =
                    crate::accounts::credentials::set_named(&store, owner, max, &name, &value)
                        .await;
                if let Err(e) = saved {
                    logs.push(NewLog {
                        level: LEVEL_ERROR,
                        message: format!("The credential {name:?} was not saved: {e}"),
                        inbound_event_id: None,
                    });
                }
            }
            logs
        };
        ctx.wait(work.into_actor(self).map(|logs, act, ctx| {
            if !logs.is_empty() {
                act.persist(
                    Outcome {
                        logs,
                        ..Outcome::default()
                    },
                    ctx,
                );
            }
        }));
    }
}
