//! `AgentActor`: one per agent. Its behaviour comes from the agent's type.
//!
//! Events reach it two ways. The fast path: the Router pushes each committed event
//! to the receivers' mailboxes. The durable path: the agent's `last_checked_event_id`
//! is committed with whatever it emitted, so after a restart, a full mailbox, or a
//! failed write the actor reads what it has not handled yet from the database
//! ("catch-up"). Because both paths deliver in id order and the actor skips ids it has
//! already handled, an event is handled once per run and never lost.

mod credentials;
mod fetch;
mod listen;
mod messages;
mod tasks;
mod write;

pub use messages::{
    CatchUp, ClearMemory, ControlTargets, EmitPayloads, ReceiveEvents, Reload, RunCheck, Shutdown,
    SubscriptionTouched,
};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use self::fetch::FetchCause;
use self::write::Outcome;
use super::fanout::{AgentEmission, FanOut};
use super::{AgentCtx, Behavior, OptionError, kind};
use crate::ids::EventId;
use crate::ops::backoff::{Backoff, Change};
use crate::store::agent_logs::{LEVEL_ERROR, NewLog};
use crate::store::agents::{self as agents_table, AgentRow};
use crate::store::events::{self, Lineage};
use crate::store::{Committed, Store};

/// Events read per catch-up query.
const CATCH_UP_BATCH: i64 = 500;
/// The first wait before an agent whose write or read failed tries again; it doubles
/// while the failures go on, up to [`RETRY_CAP`] (see [`Backoff`]).
const RETRY_BASE: Duration = Duration::from_millis(250);
const RETRY_CAP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub max_depth: u32,
    pub log_length: i64,
    pub mailbox_capacity: usize,
    /// Whether agents may fetch from internal addresses (the delivery engine's guard).
    pub allow_private_targets: bool,
    /// The propagation budget and per-user emission rate every agent shares.
    pub fanout: Arc<FanOut>,
    /// Every running agent as templates see it (`agent` in a rendered event).
    pub directory: Arc<crate::agents::drops::AgentDirectory>,
    /// Woken when an email agent queued mails (None: mails wait for its next poll).
    pub mailer: Option<Recipient<crate::mail::WakeOutbox>>,
    /// The third-party API bases agent types call (`[apis]`).
    pub apis: Arc<crate::config::ApisConfig>,
    /// Where the file agents may read and write (`[files]`).
    pub files: Arc<crate::agents::files::FilePolicy>,
    /// `[insecure_agents]`: the limits shell_command runs within; None: it may not run.
    pub insecure: Option<crate::agents::insecure::Limits>,
    /// `[sentiment]`: the sentiment agents' lexicon; None: none is configured.
    pub sentiment: Option<Arc<crate::agents::sentiment::lexicon::Lexicon>>,
    /// `[jabber] extra_ca_files`, read at start.
    pub jabber_roots: Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
    /// `[accounts] max_credentials_per_user`: the limit a java_script agent's
    /// `this.credential(name, value)` saves within (0: none).
    pub max_credentials_per_user: u64,
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
    /// This agent's emission rate and refusal episode.
    emission: AgentEmission,
    last_processed: i64,
    reload_on_start: bool,
    /// Where control actions (a scheduler's run/enable/disable) are carried out.
    controller: Option<Recipient<ControlTargets>>,
    /// Who starts or wakes the subscription a post agent sends through.
    deliveries: Option<Recipient<SubscriptionTouched>>,
    /// Failed writes and reads in a row: a restart waits this long first, so an agent
    /// whose writes cannot succeed (a full disk) does not spin.
    retry: Backoff,
    /// The behaviour's listener while it runs (see `listen`).
    listening: Option<SpawnHandle>,
}

/// The agent's behaviour built from its row's type and options.
pub fn build_behavior(row: &AgentRow) -> Result<Box<dyn Behavior>, OptionError> {
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

/// The log line of an event that is not handled: it has passed through too many links.
fn too_deep(c: &Committed) -> NewLog {
    NewLog {
        level: LEVEL_ERROR,
        message: format!(
            "Not handling event {}: it has passed through {} links in one chain (agents.max_propagation_depth). Is there a link cycle?",
            c.event.id, c.depth
        ),
        inbound_event_id: Some(c.event.id),
    }
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
            emission: AgentEmission::new(&settings.fanout.settings),
            last_processed: row.last_checked_event_id,
            row,
            behavior,
            memory,
            store,
            settings,
            shared,
            reload_on_start: false,
            controller: None,
            deliveries: None,
            retry: Backoff::new(RETRY_BASE, RETRY_CAP),
            listening: None,
        }
    }

    /// The context a behaviour runs in, with the directory and this agent's credentials.
    fn agent_ctx<'a>(
        row: &'a AgentRow,
        memory: &'a mut Value,
        settings: &'a AgentSettings,
        store: &Store,
    ) -> AgentCtx<'a> {
        let mut actx = AgentCtx::new(row, memory);
        actx.directory = Some(&settings.directory);
        actx.apis = settings.apis.clone();
        actx.files = Some(&settings.files);
        actx.insecure = settings.insecure;
        actx.sentiment = settings.sentiment.clone();
        // A fresh snapshot per handling: a credential saved a moment ago is what the
        // next rendering reads (taking it is a pointer copy; values open on demand).
        actx.credentials = crate::store::credential_cache::source_for(store, row.user_id);
        actx
    }

    /// Records a failed write or read (`what`), logging only when the failures begin
    /// and when the wait reaches its cap; returns the wait before the next try.
    fn failed(&mut self, what: &str, e: &crate::store::StoreError) -> Duration {
        let (wait, change) = self.retry.fail();
        let id = self.row.id;
        match change {
            Change::Started => tracing::error!(
                agent_id = id.0,
                error = %e,
                retry_in_ms = wait.as_millis() as u64,
                "agent {what} failed; it restarts from its stored state after a wait that doubles while the failures go on"
            ),
            Change::Capped => tracing::error!(
                agent_id = id.0,
                error = %e,
                failures = self.retry.failures(),
                retry_in_s = wait.as_secs(),
                "agent {what} still fails; retrying every {} s, and not logging each failure until it succeeds",
                wait.as_secs()
            ),
            Change::Same => {
                tracing::debug!(agent_id = id.0, error = %e, "agent {what} failed again")
            }
        }
        wait
    }

    /// Records a successful write; logs the recovery when failures came before it.
    fn succeeded(&mut self) {
        if let Some(failures) = self.retry.succeed() {
            tracing::info!(
                agent_id = self.row.id.0,
                failures,
                "agent writes succeed again after {failures} failed attempts"
            );
        }
    }

    /// Restarts the actor from its stored state: `started` waits out the backoff first.
    fn restart_after(&mut self, what: &str, e: &crate::store::StoreError, ctx: &mut Context<Self>) {
        self.failed(what, e);
        ctx.stop();
    }

    /// Sets where this agent's control actions and queued requests are announced (the Hub).
    pub fn with_hub(
        mut self,
        controls: Recipient<ControlTargets>,
        deliveries: Recipient<SubscriptionTouched>,
    ) -> Self {
        self.controller = Some(controls);
        self.deliveries = Some(deliveries);
        self
    }

    fn receives_events(&self) -> bool {
        kind(&self.row.agent_type).is_some_and(|k| k.can_receive_events)
    }

    fn catch_up(&mut self, ctx: &mut Context<Self>) {
        if self.row.disabled || !self.receives_events() {
            return;
        }
        let (id, after) = (self.row.id, self.last_processed);
        let fanout = self.settings.fanout.clone();
        let read = self.store.read(move |c| {
            let rows = events::pending_for_receiver(c, id, after, CATCH_UP_BATCH)?;
            let ids: Vec<EventId> = rows.iter().map(|r| r.id).collect();
            let lineages = events::lineages(c, &ids)?;
            // After a restart a root's budget resumes from what was stored.
            for root in lineages.values().filter_map(|l| l.root) {
                if !fanout.knows(root) {
                    let spent = events::descendants_of(c, root)?;
                    fanout.seed(root, u64::try_from(spent).unwrap_or(0));
                }
            }
            Ok((rows, lineages))
        });
        // `wait` holds the mailbox until the read is handled, so pushes queued meanwhile
        // are seen after it and skipped if the read already covered them.
        ctx.wait(read.into_actor(self).map(|res, act, ctx| match res {
            Ok((rows, lineages)) => {
                let full = rows.len() as i64 == CATCH_UP_BATCH;
                let batch = rows
                    .into_iter()
                    .map(|r| Committed {
                        depth: lineages.get(&r.id).map_or(0, |l| l.depth),
                        root: lineages.get(&r.id).and_then(|l| l.root),
                        event: Arc::new(r),
                        deliveries: Arc::default(),
                    })
                    .collect();
                act.process(batch, ctx);
                if full {
                    act.catch_up(ctx);
                }
            }
            Err(e) => {
                let wait = act.failed("catch-up read", &e);
                ctx.run_later(wait, |act, ctx| act.catch_up(ctx));
            }
        }));
    }

    /// Runs the behaviour over new events and commits what it emitted together with
    /// the new `last_checked_event_id`.
    fn process(&mut self, batch: Vec<Committed>, ctx: &mut Context<Self>) {
        let fresh: Vec<Committed> = batch
            .into_iter()
            .filter(|c| c.event.id.0 > self.last_processed)
            .collect();
        let Some(last) = fresh.last().map(|c| c.event.id.0) else {
            return;
        };
        let mut emitted: Vec<(Value, Lineage)> = Vec::new();
        let mut logs: Vec<NewLog> = Vec::new();
        let mut requests = Vec::new();
        let mut mails = Vec::new();
        let mut fetches = Vec::new();
        let mut tasks = Vec::new();
        let mut credential_saves = Vec::new();
        let mut memory_changed = false;
        // A controller that reacts to events (commander) acts on its targets per event.
        let mut controls = Vec::new();
        for c in &fresh {
            if c.depth >= self.settings.max_depth {
                logs.push(too_deep(c));
                continue;
            }
            let mut actx =
                Self::agent_ctx(&self.row, &mut self.memory, &self.settings, &self.store);
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
            let lineage = c.lineage().child_of(c.event.id);
            emitted.extend(actx.emitted.into_iter().map(|p| (p, lineage)));
            logs.extend(actx.logs);
            requests.extend(actx.requests);
            mails.extend(actx.mails);
            controls.extend(actx.controls);
            // A website agent fetches for an event: what comes of it descends from it.
            let cause = FetchCause {
                event_id: c.event.id,
                lineage,
            };
            fetches.extend(actx.fetches.into_iter().map(|f| (f, Some(cause))));
            tasks.extend(actx.tasks);
            credential_saves.extend(actx.credential_saves);
        }
        self.last_processed = last;
        self.save_credentials(credential_saves, ctx);
        self.persist(
            Outcome {
                emitted,
                logs,
                memory_changed,
                handled_up_to: Some(last),
                checked: false,
                requests,
                mails,
            },
            ctx,
        );
        if !fetches.is_empty() {
            self.fetch_all(fetches, ctx);
        }
        self.run_tasks(tasks, ctx);
        if !controls.is_empty()
            && let Some(hub) = &self.controller
        {
            hub.do_send(ControlTargets {
                controller_id: self.row.id,
                actions: controls,
            });
        }
    }

    /// Runs the behaviour's `check` (on schedule or when asked) and commits its outcome.
    fn check(&mut self, ctx: &mut Context<Self>) {
        let mut actx = Self::agent_ctx(&self.row, &mut self.memory, &self.settings, &self.store);
        match &mut self.behavior {
            Ok(b) => b.check(&mut actx),
            Err(e) => actx.error(format!("Cannot run: {e}")),
        }
        let AgentCtx {
            emitted,
            logs,
            memory_changed,
            controls,
            check_again_in,
            fetches,
            mails,
            tasks,
            credential_saves,
            ..
        } = actx;
        self.save_credentials(credential_saves, ctx);
        if !fetches.is_empty() {
            self.fetch_all(fetches.into_iter().map(|f| (f, None)).collect(), ctx);
        }
        self.run_tasks(tasks, ctx);
        let emitted = emitted
            .into_iter()
            .map(|p| (p, Lineage::default()))
            .collect();
        let wake = !mails.is_empty();
        let write = self.write_outcome(Outcome {
            emitted,
            logs,
            memory_changed,
            handled_up_to: None,
            checked: true,
            requests: Vec::new(),
            mails,
        });
        ctx.spawn(write.into_actor(self).map(move |res, act, ctx| match res {
            Ok(_) => {
                act.succeeded();
                act.wake_mailer(wake);
            }
            Err(e) => act.restart_after("write", &e, ctx),
        }));
        if !controls.is_empty()
            && let Some(hub) = &self.controller
        {
            hub.do_send(ControlTargets {
                controller_id: self.row.id,
                actions: controls,
            });
        }
        if let Some(d) = check_again_in {
            ctx.run_later(d, |act, ctx| {
                if !act.row.disabled {
                    act.check(ctx);
                }
            });
        }
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.settings.mailbox_capacity.max(1));
        if !self.reload_on_start {
            self.catch_up(ctx);
            self.listen(ctx);
            return;
        }
        self.reload_on_start = false;
        // After failures, wait before reading the state back; `wait` holds the mailbox,
        // so events pushed meanwhile are handled after the reload, not with stale state.
        let wait = self.retry.delay();
        if wait.is_zero() {
            self.reload(ctx);
        } else {
            ctx.wait(
                actix::clock::sleep(wait)
                    .into_actor(self)
                    .map(|_, act, ctx| act.reload(ctx)),
            );
        }
    }
}

impl AgentActor {
    /// Reads the agent's row back and carries on from its stored state.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        let id = self.row.id;
        let read = self.store.read(move |c| agents_table::find(c, id));
        ctx.wait(read.into_actor(self).map(|res, act, ctx| match res {
            Ok(Some(row)) => {
                act.memory = row
                    .memory_json()
                    .unwrap_or_else(|_| Value::Object(Default::default()));
                act.settings.directory.set_store(row.id, &act.memory);
                act.last_processed = row.last_checked_event_id;
                act.behavior = build_behavior(&row);
                act.row = row;
                act.catch_up(ctx);
                act.listen(ctx);
            }
            Ok(None) => ctx.stop(),
            Err(e) => {
                act.reload_on_start = true;
                act.restart_after("reload", &e, ctx);
            }
        }));
    }
}

impl Supervised for AgentActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.reload_on_start = true;
        // A restart drops the context's futures, the listener's with them.
        self.listening = None;
    }
}
