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

use super::fanout::{AgentEmission, FanOut};
use super::post::PreparedRequest;
use super::rss::{Fetch, Fetched};
use super::{AgentCtx, Behavior, ControlAction, OptionError, emitted_event_type, kind};
use crate::delivery::client;
use crate::ops::backoff::{Backoff, Change};
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents::{self as agents_table, AgentRow};
use crate::store::events::{self, Lineage, NewEvent};
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::{Committed, Store};
use crate::store::{deliveries, mail_outbox};

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
}

/// How long one fetch (an rss agent's) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body a fetch keeps.
const FETCH_MAX_BODY: usize = 8 * 1024 * 1024;

/// Redirects a fetch that follows them takes at most (Faraday's default in Huginn).
const MAX_REDIRECTS: usize = 3;

/// Makes `f`'s request, following redirects when it asks to (each hop a request of
/// its own through the target guard); gives the last response and its URL, or why
/// there is none (too many redirects).
async fn fetch_following(f: &Fetch, allow: bool) -> (Result<client::Sent, String>, String) {
    let mut url = f.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let sent = client::send_reading(
            "GET",
            &url,
            &f.headers,
            Vec::new(),
            FETCH_TIMEOUT,
            allow,
            FETCH_MAX_BODY,
        )
        .await;
        let next = sent
            .status
            .filter(|s| f.follow_redirects && matches!(s, 301 | 302 | 303 | 307 | 308))
            .and_then(|_| {
                sent.headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("location"))
            })
            .and_then(|(_, to)| url::Url::parse(&url).ok()?.join(to).ok());
        match next {
            Some(to) => url = to.to_string(),
            None => return (Ok(sent), url),
        }
    }
    (Err(format!("more than {MAX_REDIRECTS} redirects")), url)
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
                agent_id = id,
                error = %e,
                retry_in_ms = wait.as_millis() as u64,
                "agent {what} failed; it restarts from its stored state after a wait that doubles while the failures go on"
            ),
            Change::Capped => tracing::error!(
                agent_id = id,
                error = %e,
                failures = self.retry.failures(),
                retry_in_s = wait.as_secs(),
                "agent {what} still fails; retrying every {} s, and not logging each failure until it succeeds",
                wait.as_secs()
            ),
            Change::Same => tracing::debug!(agent_id = id, error = %e, "agent {what} failed again"),
        }
        wait
    }

    /// Records a successful write; logs the recovery when failures came before it.
    fn succeeded(&mut self) {
        if let Some(failures) = self.retry.succeed() {
            tracing::info!(
                agent_id = self.row.id,
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
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
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
            .filter(|c| c.event.id > self.last_processed)
            .collect();
        let Some(last) = fresh.last().map(|c| c.event.id) else {
            return;
        };
        let mut emitted: Vec<(Value, Lineage)> = Vec::new();
        let mut logs: Vec<NewLog> = Vec::new();
        let mut requests = Vec::new();
        let mut mails = Vec::new();
        let mut fetches = Vec::new();
        let mut tasks = Vec::new();
        let mut memory_changed = false;
        // A controller that reacts to events (commander) acts on its targets per event.
        let mut controls = Vec::new();
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
        }
        self.last_processed = last;
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

    fn persist(&mut self, mut outcome: Outcome, ctx: &mut Context<Self>) {
        // A log line may quote a rendered option (a URL, a header): the owner's
        // credential values never reach the agent log in clear.
        if !outcome.logs.is_empty() {
            let creds =
                crate::store::credential_cache::UserCredentials::of(&self.store, self.row.user_id);
            for l in &mut outcome.logs {
                l.message = creds.redact_all(&l.message);
            }
        }
        let wake = !outcome.mails.is_empty();
        let write = self.write_outcome(outcome);
        ctx.spawn(write.into_actor(self).map(move |res, act, ctx| match res {
            Ok((_, touched)) => {
                act.succeeded();
                act.wake_mailer(wake);
                if let (Some(hub), Some(touched)) = (&act.deliveries, touched) {
                    hub.do_send(touched);
                }
            }
            // The state in the database is the truth: restart from it.
            Err(e) => act.restart_after("write", &e, ctx),
        }));
    }

    /// Tells the outbox that mails were queued.
    fn wake_mailer(&self, queued: bool) {
        if let (true, Some(m)) = (queued, &self.settings.mailer) {
            m.do_send(crate::mail::WakeOutbox);
        }
    }

    /// How a post agent's own subscription retries (from its options).
    fn owned_policy(&self) -> subscriptions::OwnedPolicy {
        self.row
            .options_json()
            .ok()
            .and_then(|o| super::post::Post::new(&o).ok())
            .map_or(
                subscriptions::OwnedPolicy {
                    retry_count: 4,
                    retry_delay_ms: 30_000,
                    timeout_ms: 30_000,
                },
                |p| p.policy,
            )
    }

    /// Queues the write of what the behaviour produced, in one transaction: emitted
    /// events, the handled-up-to mark, logs, memory, and prepared requests (so a request
    /// is never lost between the event being marked handled and its delivery existing).
    /// Resolves to the new event ids and, when requests were queued, their subscription.
    fn write_outcome(
        &mut self,
        mut o: Outcome,
    ) -> impl std::future::Future<
        Output = Result<(Vec<i64>, Option<SubscriptionTouched>), crate::store::StoreError>,
    > + use<> {
        o.emitted = self.emission.admit(
            &self.settings.fanout,
            self.row.user_id,
            std::mem::take(&mut o.emitted),
            &mut o.logs,
        );
        let Outcome {
            emitted,
            logs,
            memory_changed,
            handled_up_to,
            checked,
            requests,
            mails,
        } = o;
        let options = self.row.options_json().unwrap_or(Value::Null);
        let event_type = emitted_event_type(&options);
        let (id, user_id, keep) = (self.row.id, self.row.user_id, self.row.keep_events_for);
        let name = self.row.name.clone();
        let policy = (!requests.is_empty()).then(|| self.owned_policy());
        let (new, lineages): (Vec<NewEvent>, Vec<Lineage>) = emitted
            .into_iter()
            .map(|(payload, lineage)| {
                (
                    NewEvent {
                        user_id,
                        agent_id: Some(id),
                        event_type: event_type.clone(),
                        payload: NewEvent::payload_text(&payload),
                        keep_for_seconds: keep,
                    },
                    lineage,
                )
            })
            .unzip();
        let memory = memory_changed.then(|| self.memory.to_string());
        let log_length = self.settings.log_length;
        let keys = self.store.keys().clone();
        // Sealed: a mail holds rendered options, so perhaps the owner's credentials.
        let mails: Vec<(Option<i64>, String)> = mails
            .iter()
            .map(|(event_id, m)| {
                let text = serde_json::to_string(m).unwrap_or_default();
                (*event_id, keys.seal(crate::mail::OUTBOX_PURPOSE, &text))
            })
            .collect();
        self.store.writer().write_repeatable(move |conn, out| {
            let mut ids = Vec::with_capacity(new.len());
            for (event, &lineage) in new.iter().zip(&lineages) {
                ids.extend(
                    out.insert_derived(conn, std::slice::from_ref(event), lineage)?
                        .iter()
                        .map(|e| e.id),
                );
            }
            if let Some(up_to) = handled_up_to {
                agents_table::note_received(conn, id, up_to)?;
            }
            if checked {
                agents_table::note_checked(conn, id)?;
            }
            agent_logs::append(conn, id, &logs, log_length)?;
            if let Some(m) = &memory {
                agents_table::set_memory(conn, id, m)?;
            }
            for (event_id, sealed) in &mails {
                mail_outbox::insert(conn, id, user_id, *event_id, sealed)?;
            }
            let touched = match policy {
                Some(policy) => Some(queue_requests(
                    conn, &keys, id, user_id, &name, policy, &requests,
                )?),
                None => None,
            };
            Ok((ids, touched))
        })
    }

    /// Makes the fetches a behaviour asked for, off the mailbox, then hands each
    /// response back to it and commits what it made of them.
    fn fetch_all(&mut self, fetches: Vec<(Fetch, Option<FetchCause>)>, ctx: &mut Context<Self>) {
        let allow = self.settings.allow_private_targets;
        let work = async move {
            let mut out = Vec::with_capacity(fetches.len());
            for (f, cause) in fetches {
                let started = std::time::Instant::now();
                let (sent, final_url) = fetch_following(&f, allow).await;
                let got = match sent {
                    Ok(sent) => Fetched {
                        status: sent.status,
                        headers: sent.headers,
                        body: sent.excerpt.unwrap_or_default().into_bytes(),
                        error: sent.error.map(|e| e.to_string()),
                        elapsed: started.elapsed(),
                        final_url,
                    },
                    Err(error) => Fetched {
                        error: Some(error),
                        elapsed: started.elapsed(),
                        final_url,
                        ..Fetched::default()
                    },
                };
                out.push((f, got, cause));
            }
            out
        };
        ctx.spawn(work.into_actor(self).map(|results, act, ctx| {
            let mut actx = Self::agent_ctx(&act.row, &mut act.memory, &act.settings, &act.store);
            let mut caused = Vec::new();
            if let Ok(b) = &mut act.behavior {
                for (f, got, cause) in &results {
                    // An event's fetch: its logs name the event, its events descend from it
                    // (a run's fetches share one context: the rss agent sorts them together).
                    actx.inbound = cause.map(|c| c.event_id);
                    b.fetched(&mut actx, f, got);
                    if let Some(c) = cause {
                        caused.extend(actx.emitted.drain(..).map(|p| (p, c.lineage)));
                    }
                }
            }
            let AgentCtx {
                emitted,
                logs,
                memory_changed,
                ..
            } = actx;
            let mut emitted: Vec<(Value, Lineage)> = emitted
                .into_iter()
                .map(|p| (p, Lineage::default()))
                .collect();
            emitted.extend(caused);
            act.persist(
                Outcome {
                    emitted,
                    logs,
                    memory_changed,
                    ..Outcome::default()
                },
                ctx,
            );
        }));
    }

    /// Starts the tasks a behaviour asked for, on this arbiter (they are futures: their
    /// waits do not hold the mailbox), and commits what the behaviour makes of each result.
    fn run_tasks(&mut self, tasks: Vec<super::task::Task>, ctx: &mut Context<Self>) {
        let env = super::task::TaskEnv {
            allow_private_targets: self.settings.allow_private_targets,
        };
        for task in tasks {
            ctx.spawn(task.start(env).into_actor(self).map(|output, act, ctx| {
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
            }));
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
            ..
        } = actx;
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

/// The event a fetch was made for (a website agent's `url_from_event`).
#[derive(Debug, Clone, Copy)]
struct FetchCause {
    event_id: i64,
    lineage: Lineage,
}

/// What one handling of events (or one check) produced, to be committed together.
#[derive(Default)]
struct Outcome {
    emitted: Vec<(Value, Lineage)>,
    logs: Vec<NewLog>,
    memory_changed: bool,
    handled_up_to: Option<i64>,
    checked: bool,
    requests: Vec<(i64, PreparedRequest)>,
    /// Mails for the outbox, with the event that caused each.
    mails: Vec<(Option<i64>, crate::mail::Mail)>,
}

/// Writes prepared requests as deliveries on the agent's own subscription, which is
/// created the first time (inside the caller's transaction).
fn queue_requests(
    c: &mut crate::store::Conn,
    keys: &crate::secrets::Keyring,
    agent_id: i64,
    user_id: i64,
    name: &str,
    policy: subscriptions::OwnedPolicy,
    requests: &[(i64, PreparedRequest)],
) -> Result<SubscriptionTouched, crate::store::StoreError> {
    let first_url = requests
        .first()
        .map(|(_, r)| r.url.clone())
        .unwrap_or_default();
    let (sub, created) = match subscriptions::owned_by(c, agent_id)? {
        Some(s) => (s, false),
        None => (
            subscriptions::create_owned(
                c,
                user_id,
                agent_id,
                &format!("post agent: {name}"),
                &first_url,
                policy,
            )?,
            true,
        ),
    };
    for (event_id, req) in requests {
        let text =
            serde_json::to_string(req).map_err(|e| crate::store::StoreError::CorruptJson {
                what: "deliveries.request",
                reason: e.to_string(),
            })?;
        // Sealed: the request holds rendered options, so the owner's credentials.
        let sealed = keys.seal(crate::secrets::purpose::DELIVERY_REQUESTS, &text);
        deliveries::insert_request(c, sub.id, *event_id, &sealed)?;
    }
    Ok(SubscriptionTouched { row: sub, created })
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.settings.mailbox_capacity.max(1));
        if !self.reload_on_start {
            self.catch_up(ctx);
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
                act.last_processed = row.last_checked_event_id;
                act.behavior = build_behavior(&row);
                act.row = row;
                act.catch_up(ctx);
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

/// A controlling agent asks for actions on its control targets (handled by the Hub).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ControlTargets {
    pub controller_id: i64,
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
#[rtype(result = "Result<Vec<i64>, crate::store::StoreError>")]
pub struct EmitPayloads(pub Vec<Value>);

impl Handler<EmitPayloads> for AgentActor {
    type Result = ResponseFuture<Result<Vec<i64>, crate::store::StoreError>>;

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
