//! `AgentActor`: one per agent. Its behaviour comes from the agent's type.
//!
//! Events reach it two ways. The fast path: the Router pushes each committed event
//! to the receivers' mailboxes. The durable path: the agent's `last_checked_event_id`
//! is committed with whatever it emitted, so after a restart, a full mailbox, or a
//! failed write the actor reads what it has not handled yet from the database
//! ("catch-up"). Because both paths deliver in id order and the actor skips ids it has
//! already handled, an event is handled once per run and never lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use super::{AgentCtx, Behavior, OptionError, emitted_event_type, kind};
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents::{self as agents_table, AgentRow};
use crate::store::events::{self, NewEvent};
use crate::store::{Committed, Store};

/// Events read per catch-up query.
const CATCH_UP_BATCH: i64 = 500;

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub max_depth: u32,
    pub log_length: i64,
    pub mailbox_capacity: usize,
}

/// State the Router and the Hub share with the actor.
#[derive(Debug, Default)]
pub struct AgentShared {
    /// Set by the Router when a push did not fit in the mailbox.
    pub lagging: AtomicBool,
    /// Events pushed to the actor and not yet handled.
    pub backlog: AtomicUsize,
}

pub struct AgentActor {
    row: AgentRow,
    behavior: Result<Box<dyn Behavior>, OptionError>,
    memory: Value,
    store: Store,
    settings: AgentSettings,
    shared: Arc<AgentShared>,
    last_processed: i64,
    reload_on_start: bool,
}

fn build_behavior(row: &AgentRow) -> Result<Box<dyn Behavior>, OptionError> {
    let options = row
        .options_json()
        .map_err(|e| OptionError::new("options", e.to_string()))?;
    let k = kind(&row.agent_type).ok_or_else(|| {
        OptionError::new(
            "type",
            format!("{:?} is not an agent type muninn has", row.agent_type),
        )
    })?;
    k.build(&options)
}

impl AgentActor {
    pub fn new(
        row: AgentRow,
        store: Store,
        settings: AgentSettings,
        shared: Arc<AgentShared>,
    ) -> Self {
        let behavior = build_behavior(&row);
        let memory = row
            .memory_json()
            .unwrap_or_else(|_| Value::Object(Default::default()));
        AgentActor {
            last_processed: row.last_checked_event_id,
            row,
            behavior,
            memory,
            store,
            settings,
            shared,
            reload_on_start: false,
        }
    }

    fn receives_events(&self) -> bool {
        kind(&self.row.agent_type).is_some_and(|k| k.can_receive_events)
    }

    fn catch_up(&mut self, ctx: &mut Context<Self>) {
        if self.row.disabled || !self.receives_events() {
            return;
        }
        let (id, after) = (self.row.id, self.last_processed);
        let read = self
            .store
            .read(move |c| events::pending_for_receiver(c, id, after, CATCH_UP_BATCH));
        // `wait` holds the mailbox until the read is handled, so pushes queued meanwhile
        // are seen after it and skipped if the read already covered them.
        ctx.wait(read.into_actor(self).map(|res, act, ctx| match res {
            Ok(rows) => {
                let full = rows.len() as i64 == CATCH_UP_BATCH;
                let batch = rows
                    .into_iter()
                    .map(|r| Committed {
                        event: Arc::new(r),
                        depth: 0,
                        deliveries: Arc::default(),
                    })
                    .collect();
                act.process(batch, ctx);
                if full {
                    act.catch_up(ctx);
                }
            }
            Err(e) => {
                tracing::error!(agent_id = act.row.id, error = %e, "catch-up read failed; retrying in 5 s");
                ctx.run_later(Duration::from_secs(5), |act, ctx| act.catch_up(ctx));
            }
        }));
    }

    /// Runs the behaviour over new events and commits what it emitted together with
    /// the new `last_checked_event_id`.
    fn process(&mut self, batch: Vec<Committed>, ctx: &mut Context<Self>) {
        let fresh: Vec<Committed> = batch
            .into_iter()
            .filter(|c| c.event.id > self.last_processed)
            .collect();
        let Some(last) = fresh.last().map(|c| c.event.id) else {
            return;
        };
        let mut emitted: Vec<(Value, u32)> = Vec::new();
        let mut logs: Vec<NewLog> = Vec::new();
        let mut memory_changed = false;
        for c in &fresh {
            if c.depth >= self.settings.max_depth {
                logs.push(NewLog {
                    level: LEVEL_ERROR,
                    message: format!(
                        "Not handling event {}: it has passed through {} links in one chain (agents.max_propagation_depth). Is there a link cycle?",
                        c.event.id, c.depth
                    ),
                    inbound_event_id: Some(c.event.id),
                });
                continue;
            }
            let mut actx = AgentCtx::new(&self.row, &mut self.memory);
            actx.inbound = Some(c.event.id);
            match (&mut self.behavior, c.event.payload_json()) {
                (Ok(b), Ok(payload)) => b.receive(&mut actx, &c.event, &payload),
                (Err(e), _) => actx.error(format!("Cannot handle event {}: {e}", c.event.id)),
                (_, Err(e)) => actx.error(format!(
                    "Event {} has an unreadable payload: {e}",
                    c.event.id
                )),
            }
            memory_changed |= actx.memory_changed;
            emitted.extend(actx.emitted.into_iter().map(|p| (p, c.depth + 1)));
            logs.extend(actx.logs);
        }
        self.last_processed = last;
        self.persist(emitted, logs, memory_changed, Some(last), ctx);
    }

    fn persist(
        &mut self,
        emitted: Vec<(Value, u32)>,
        logs: Vec<NewLog>,
        memory_changed: bool,
        handled_up_to: Option<i64>,
        ctx: &mut Context<Self>,
    ) {
        let options = self.row.options_json().unwrap_or(Value::Null);
        let event_type = emitted_event_type(&options);
        let (id, user_id, keep) = (self.row.id, self.row.user_id, self.row.keep_events_for);
        let (new, depths): (Vec<NewEvent>, Vec<u32>) = emitted
            .into_iter()
            .map(|(payload, depth)| {
                (
                    NewEvent {
                        user_id,
                        agent_id: Some(id),
                        event_type: event_type.clone(),
                        payload,
                        keep_for_seconds: keep,
                    },
                    depth,
                )
            })
            .unzip();
        let memory = memory_changed.then(|| self.memory.to_string());
        let log_length = self.settings.log_length;
        let write = self.store.writer().write(move |conn, out| {
            let mut inserted = 0;
            for (event, depth) in new.iter().zip(depths) {
                inserted += out.insert(conn, std::slice::from_ref(event), depth)?.len();
            }
            if inserted > 0 {
                agents_table::note_emitted(conn, id, inserted as i64)?;
            }
            if let Some(up_to) = handled_up_to {
                agents_table::note_received(conn, id, up_to)?;
            }
            agent_logs::append(conn, id, &logs, log_length)?;
            if let Some(m) = memory {
                agents_table::set_memory(conn, id, &m)?;
            }
            Ok(())
        });
        ctx.spawn(write.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                // The state in the database is the truth: restart from it.
                tracing::error!(agent_id = act.row.id, error = %e, "agent write failed; restarting the agent from its stored state");
                ctx.stop();
            }
        }));
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.settings.mailbox_capacity.max(1));
        if self.reload_on_start {
            self.reload_on_start = false;
            let id = self.row.id;
            let read = self.store.read(move |c| agents_table::find(c, id));
            ctx.wait(read.into_actor(self).map(|res, act, ctx| match res {
                Ok(Some(row)) => {
                    act.memory = row.memory_json().unwrap_or_else(|_| Value::Object(Default::default()));
                    act.last_processed = row.last_checked_event_id;
                    act.behavior = build_behavior(&row);
                    act.row = row;
                    act.catch_up(ctx);
                }
                Ok(None) => ctx.stop(),
                Err(e) => {
                    tracing::error!(agent_id = act.row.id, error = %e, "could not reload the agent; retrying");
                    act.reload_on_start = true;
                    ctx.stop();
                }
            }));
        } else {
            self.catch_up(ctx);
        }
    }
}

impl Supervised for AgentActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.reload_on_start = true;
    }
}

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
        // A disabled agent keeps its backlog: it is read back when it is enabled.
        if !self.row.disabled {
            self.process(msg.0, ctx);
        }
        if self.shared.lagging.swap(false, Ordering::AcqRel) {
            self.catch_up(ctx);
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
        self.behavior = build_behavior(&msg.0);
        self.row = msg.0;
        if was_disabled && !self.row.disabled {
            self.catch_up(ctx);
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
        ctx.stop();
    }
}

/// Run the behaviour's `check` now (`POST /api/agents/{id}/run`), committing what it
/// emits and logs like a scheduled run.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunNow;

impl Handler<RunNow> for AgentActor {
    type Result = ();

    fn handle(&mut self, _: RunNow, ctx: &mut Context<Self>) {
        let mut actx = AgentCtx::new(&self.row, &mut self.memory);
        match &mut self.behavior {
            Ok(b) => b.check(&mut actx),
            Err(e) => actx.error(format!("Cannot run: {e}")),
        }
        let memory_changed = actx.memory_changed;
        let emitted = actx.emitted.into_iter().map(|p| (p, 0)).collect();
        let logs = actx.logs;
        self.persist(emitted, logs, memory_changed, None, ctx);
    }
}

/// The stored memory was cleared (`DELETE /api/agents/{id}/memory`): forget ours too.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClearMemory;

impl Handler<ClearMemory> for AgentActor {
    type Result = ();

    fn handle(&mut self, _: ClearMemory, _: &mut Context<Self>) {
        self.memory = Value::Object(Default::default());
    }
}
