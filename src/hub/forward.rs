//! API actions that need a running actor, asked on a node that does not run it
//! (issue 19, every node equal). An agent's actor runs on the node holding its lease,
//! a subscription's likewise; run now, clear memory, posting to a manual_event agent,
//! a test send and closing a circuit by hand need that actor. Asked anywhere else, the
//! node stores the ask in `node_requests` and announces it; the node running the
//! actor takes it, carries it out with the same function a local call uses
//! (`actions::on_actor`, `actor_ask::on_actor`) and writes the answer, which the asking
//! node turns into the very answer a local call gives. The database is the only thing
//! the nodes share: no node talks to another directly.
//!
//! The asking node waits at most [`WAIT`] (a test send also its webhook's timeout),
//! woken by the answer's notification and reading the row every [`POLL`] in case it
//! was lost; then it answers 503 naming the node that did not answer. A request whose
//! lease moved before it was taken is taken by the new holder on its next look (the
//! listener looks every `listen::REQUEST_SCAN`). On SQLite there is one node: nothing
//! here runs, and a missing actor answers as it always did.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

use super::Registry;
use crate::agents::service::AgentServiceError;
use crate::agents::service::actions::{self, ActorAsk as AgentAsk};
use crate::cluster::Cluster;
use crate::delivery::subscription::SubscriptionError;
use crate::delivery::subscription::actor_ask::{self, ActorAsk as SubscriptionAsk};
use crate::ids::{AgentId, EventId, SubscriptionId};
use crate::store::node_requests::{self, Open};
use crate::store::{Answer, Store, StoreError, leases};

/// How long an asking node waits for the answer.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often an asking node reads its request in case the answer's notification was lost.
const POLL: Duration = Duration::from_millis(200);
/// Requests are taken up to this old, and deleted after it (their asking node died
/// before deleting them).
const KEEP: Duration = Duration::from_secs(300);

/// What the carrying node writes back.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Reply {
    /// The local call's answer, as JSON.
    Done(Value),
    /// This node holds the lease but runs no actor (it is starting, or its settings
    /// are invalid): the asking node answers as for an actor that is not running.
    NoActor,
    Failed(Failure),
}

/// Why the call failed, in a form that crosses nodes and becomes the same answer a
/// local failure gives.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Failure {
    /// The actor could not take the message (it is restarting).
    Busy(String),
    Overloaded(usize),
    WriterGone,
    DatabaseGone(String),
    Conflict(String),
    /// Any other store failure: its message, and when to retry if retrying can help.
    Store {
        message: String,
        retry_after: Option<u32>,
    },
    /// The holder of the lease did not answer within `seconds` (never written to the
    /// table: the asking node makes it).
    Silent {
        node: String,
        seconds: u64,
    },
}

impl Failure {
    fn store(e: &StoreError) -> Failure {
        match e {
            StoreError::Overloaded(n) => Failure::Overloaded(*n),
            StoreError::WriterGone => Failure::WriterGone,
            StoreError::DatabaseGone(m) => Failure::DatabaseGone(m.clone()),
            StoreError::Conflict(m) => Failure::Conflict(m.clone()),
            other => Failure::Store {
                message: other.to_string(),
                retry_after: match other.answer() {
                    Answer::RetryLater(s) => Some(s),
                    Answer::Internal => None,
                },
            },
        }
    }

    fn unreadable(node: &str, e: serde_json::Error) -> Failure {
        Failure::Store {
            message: format!("a request between nodes could not be read on node {node}: {e}"),
            retry_after: None,
        }
    }

    fn into_store(self) -> StoreError {
        match self {
            Failure::Overloaded(n) => StoreError::Overloaded(n),
            Failure::WriterGone => StoreError::WriterGone,
            Failure::DatabaseGone(m) => StoreError::DatabaseGone(m),
            Failure::Conflict(m) => StoreError::Conflict(m),
            Failure::Store {
                message,
                retry_after,
            } => StoreError::Elsewhere {
                message,
                retry_after,
            },
            Failure::Busy(message) => StoreError::Elsewhere {
                message,
                retry_after: Some(1),
            },
            Failure::Silent { node, seconds } => StoreError::Elsewhere {
                message: format!("node {node} did not answer within {seconds} s"),
                retry_after: Some(1),
            },
        }
    }

    fn from_agent(e: &AgentServiceError) -> Failure {
        match e {
            AgentServiceError::Busy(m) => Failure::Busy(m.clone()),
            AgentServiceError::Store(e) => Failure::store(e),
            other => Failure::Store {
                message: other.to_string(),
                retry_after: None,
            },
        }
    }

    fn into_agent(self, id: AgentId) -> AgentServiceError {
        match self {
            Failure::Busy(m) => AgentServiceError::Busy(m),
            Failure::Silent { node, seconds } => {
                AgentServiceError::Busy(silent("agent", id.0, &node, seconds))
            }
            other => AgentServiceError::Store(other.into_store()),
        }
    }

    fn from_subscription(e: &SubscriptionError) -> Failure {
        match e {
            SubscriptionError::HubUnavailable => Failure::Busy(e.to_string()),
            SubscriptionError::Store(e) => Failure::store(e),
            other => Failure::Store {
                message: other.to_string(),
                retry_after: None,
            },
        }
    }

    fn into_subscription(self, id: SubscriptionId) -> SubscriptionError {
        match self {
            Failure::Busy(_) => SubscriptionError::HubUnavailable,
            Failure::Silent { node, seconds } => {
                SubscriptionError::OwnerSilent(silent("webhook", id.0, &node, seconds))
            }
            other => SubscriptionError::Store(other.into_store()),
        }
    }
}

fn silent(what: &str, id: i64, node: &str, seconds: u64) -> String {
    format!(
        "{what} {id} runs on node {node}, which did not answer within {seconds} s; retry shortly"
    )
}

/// What a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Agent(AgentId),
    Subscription(SubscriptionId),
}

impl Target {
    fn parse(resource: &str) -> Option<Target> {
        let id = |prefix: &str| resource.strip_prefix(prefix)?.parse::<i64>().ok();
        id("agent:")
            .map(|n| Target::Agent(AgentId(n)))
            .or_else(|| id("subscription:").map(|n| Target::Subscription(SubscriptionId(n))))
    }
}

/// This node's side of the requests between nodes: the asks it waits on, and what it
/// needs to carry out the asks of others.
pub struct Forward {
    store: Store,
    registry: Arc<Registry>,
    cluster: Arc<Cluster>,
    /// The requests this node waits on, each with what wakes its waiter.
    waiting: Mutex<HashMap<i64, Arc<Notify>>>,
    /// A look for requests is under way (looks never overlap: under a burst of asks,
    /// one look finds them all).
    looking: AtomicBool,
    /// Asked for while a look ran: it looks once more.
    again: AtomicBool,
}

impl Forward {
    pub fn new(store: Store, registry: Arc<Registry>, cluster: Arc<Cluster>) -> Forward {
        Forward {
            store,
            registry,
            cluster,
            waiting: Mutex::default(),
            looking: AtomicBool::new(false),
            again: AtomicBool::new(false),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Notify>>> {
        // Every change is one insert or remove: a poisoned map is still whole.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has the node running agent `id`'s actor carry out `ask`; `None` when no other
    /// node runs it.
    pub async fn ask_agent(
        &self,
        id: AgentId,
        ask: AgentAsk,
    ) -> Result<Option<Vec<EventId>>, AgentServiceError> {
        let label = match &ask {
            AgentAsk::Run => "run",
            AgentAsk::ClearMemory => "clear_memory",
            AgentAsk::Emit(_) => "emit",
        };
        let argument = serde_json::to_string(&ask)
            .map_err(|e| Failure::unreadable(self.cluster.id(), e).into_agent(id))?;
        match self.ask(leases::agent(id), label, argument, WAIT).await {
            Ok(None) => Ok(None),
            Ok(Some(v)) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| Failure::unreadable(self.cluster.id(), e).into_agent(id)),
            Err(f) => Err(f.into_agent(id)),
        }
    }

    /// Has the node running subscription `id`'s actor carry out `ask`, waiting
    /// `extra` longer than usual (a test send's own timeout); `None` when no other node
    /// runs it.
    pub async fn ask_subscription<T: serde::de::DeserializeOwned>(
        &self,
        id: SubscriptionId,
        ask: SubscriptionAsk,
        extra: Duration,
    ) -> Result<Option<T>, SubscriptionError> {
        let label = match &ask {
            SubscriptionAsk::Test { .. } => "test",
            SubscriptionAsk::ResetCircuit => "reset_circuit",
        };
        let argument = serde_json::to_string(&ask)
            .map_err(|e| Failure::unreadable(self.cluster.id(), e).into_subscription(id))?;
        let resource = leases::subscription(id);
        match self.ask(resource, label, argument, WAIT + extra).await {
            Ok(None) => Ok(None),
            Ok(Some(v)) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| Failure::unreadable(self.cluster.id(), e).into_subscription(id)),
            Err(f) => Err(f.into_subscription(id)),
        }
    }

    /// Asks the node holding `resource`'s lease, when that is another node, to carry
    /// out `argument`; its answer, or `None` when no other node holds the lease or the
    /// holder runs no actor for it.
    async fn ask(
        &self,
        resource: String,
        action: &'static str,
        argument: String,
        wait: Duration,
    ) -> Result<Option<Value>, Failure> {
        if !self.cluster.shared {
            return Ok(None);
        }
        let me = self.cluster.id().to_string();
        let r = resource.clone();
        let holder = self
            .store
            .read(move |c| node_requests::holder(c, &r))
            .await
            .map_err(|e| Failure::store(&e))?;
        // No live holder: it is moving (a failover) or starting; as for a local actor
        // that is not up.
        let Some(owner) = holder.filter(|h| *h != me) else {
            return Ok(None);
        };
        let id = self
            .store
            .read(move |c| node_requests::ask(c, &resource, action, &argument, &me))
            .await
            .map_err(|e| Failure::store(&e))?;
        let woken = Arc::new(Notify::new());
        self.waiting().insert(id, woken.clone());
        let answer = self.wait_for(id, &woken, wait).await;
        self.waiting().remove(&id);
        // Answered, or given up: either way nobody needs it any more (a holder that
        // has not taken it yet never will).
        if let Err(e) = self.store.read(move |c| node_requests::forget(c, id)).await {
            tracing::warn!(request = id, error = %e, "deleting a request between nodes failed; it is pruned later");
        }
        let Some(text) = answer? else {
            return Err(Failure::Silent {
                node: owner,
                seconds: wait.as_secs(),
            });
        };
        match serde_json::from_str(&text) {
            Ok(Reply::Done(v)) => Ok(Some(v)),
            Ok(Reply::NoActor) => Ok(None),
            Ok(Reply::Failed(f)) => Err(f),
            Err(e) => Err(Failure::unreadable(self.cluster.id(), e)),
        }
    }

    /// The answer to request `id`, once written; `None` after `wait`.
    async fn wait_for(
        &self,
        id: i64,
        woken: &Notify,
        wait: Duration,
    ) -> Result<Option<String>, Failure> {
        let deadline = Instant::now() + wait;
        // Bounded: every turn waits up to POLL, and the loop ends at the deadline.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(POLL.min(left), woken.notified()).await;
            let answer = self
                .store
                .read(move |c| node_requests::answer_of(c, id))
                .await
                .map_err(|e| Failure::store(&e))?;
            if answer.is_some() || Instant::now() >= deadline {
                return Ok(answer);
            }
        }
    }

    /// The listener heard that request `id` was answered.
    pub fn answered(&self, id: i64) {
        if let Some(woken) = self.waiting().get(&id) {
            woken.notify_one();
        }
    }

    /// Looks for requests this node can carry out (another node asked, or the look
    /// of every `listen::REQUEST_SCAN`) and carries each out on its own.
    pub async fn look(self: Arc<Self>) {
        if self.looking.swap(true, Ordering::AcqRel) {
            self.again.store(true, Ordering::Release);
            return;
        }
        // Bounded: asks that keep arriving are left to the next notice or scan.
        for _ in 0..8 {
            self.again.store(false, Ordering::Release);
            self.look_once().await;
            if !self.again.load(Ordering::Acquire) {
                break;
            }
        }
        self.looking.store(false, Ordering::Release);
    }

    async fn look_once(self: &Arc<Self>) {
        let keep = chrono::Duration::from_std(KEEP).unwrap_or(chrono::Duration::MAX);
        let found = self
            .store
            .read(move |c| {
                node_requests::prune(c, keep)?;
                node_requests::open(c, keep)
            })
            .await;
        let open = match found {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "reading the requests of other nodes failed; the next look tries again");
                return;
            }
        };
        if open.is_empty() {
            return;
        }
        let view = self.cluster.view();
        for req in open {
            let Some(target) = Target::parse(&req.resource) else {
                continue;
            };
            // Where the actor runs, or where the lease is (then the answer says that no
            // actor runs, and the asking node answers as for one that is not up).
            let mine = match target {
                Target::Agent(id) => {
                    self.registry.agent(id).is_some_and(|e| e.addr.is_some())
                        || view.owned_agents.contains(&id)
                }
                Target::Subscription(id) => {
                    self.registry.subscription(id).is_some()
                        || view.owned_subscriptions.contains(&id)
                }
            };
            if mine {
                actix::spawn(self.clone().carry_out(req, target));
            }
        }
    }

    /// Takes `req` (unless another node took it first), carries it out here and
    /// writes the answer.
    async fn carry_out(self: Arc<Self>, req: Open, target: Target) {
        let (id, node) = (req.id, self.cluster.id().to_string());
        match self
            .store
            .read(move |c| node_requests::take(c, id, &node))
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(request = id, error = %e, "taking a request of another node failed; the next look tries again");
                return;
            }
        }
        let reply = self.reply(target, &req.argument).await;
        // Plain data: it always serialises. Were it not to, the empty answer is
        // unreadable on the asking node, which says so (500) rather than waiting.
        let text = serde_json::to_string(&reply).unwrap_or_default();
        if let Err(e) = self
            .store
            .read(move |c| node_requests::answer(c, id, &text))
            .await
        {
            tracing::warn!(request = id, error = %e, "answering a request of another node failed; it waits until its timeout");
        }
    }

    /// What this node's actor answers to the ask in `argument`.
    async fn reply(&self, target: Target, argument: &str) -> Reply {
        let unreadable = |e| Reply::Failed(Failure::unreadable(self.cluster.id(), e));
        match target {
            Target::Agent(id) => {
                let ask = match serde_json::from_str::<AgentAsk>(argument) {
                    Ok(ask) => ask,
                    Err(e) => return unreadable(e),
                };
                let Some(addr) = self.registry.agent(id).and_then(|e| e.addr) else {
                    return Reply::NoActor;
                };
                match actions::on_actor(&addr, ask).await {
                    Ok(ids) => Reply::Done(Value::from(
                        ids.into_iter().map(i64::from).collect::<Vec<_>>(),
                    )),
                    Err(e) => Reply::Failed(Failure::from_agent(&e)),
                }
            }
            Target::Subscription(id) => {
                let ask = match serde_json::from_str::<SubscriptionAsk>(argument) {
                    Ok(ask) => ask,
                    Err(e) => return unreadable(e),
                };
                let Some(entry) = self.registry.subscription(id) else {
                    return Reply::NoActor;
                };
                match actor_ask::on_actor(&entry.addr, ask).await {
                    Ok(v) => Reply::Done(v),
                    Err(e) => Reply::Failed(Failure::from_subscription(&e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_their_targets() {
        assert_eq!(Target::parse("agent:12"), Some(Target::Agent(AgentId(12))));
        assert_eq!(
            Target::parse("subscription:3"),
            Some(Target::Subscription(SubscriptionId(3)))
        );
        assert_eq!(Target::parse("agent:x"), None);
        assert_eq!(Target::parse("feed:1"), None);
    }

    /// A failure that crossed nodes is answered as the same failure here would be.
    #[test]
    fn failures_cross_nodes_unchanged() {
        let cross = |f: Failure| -> Failure {
            serde_json::from_str(&serde_json::to_string(&Reply::Failed(f)).unwrap())
                .map(|r| match r {
                    Reply::Failed(f) => f,
                    other => panic!("{other:?}"),
                })
                .unwrap()
        };
        let busy = AgentServiceError::Busy("agent 4 is restarting; retry shortly".into());
        match cross(Failure::from_agent(&busy)).into_agent(AgentId(4)) {
            AgentServiceError::Busy(m) => assert_eq!(m, "agent 4 is restarting; retry shortly"),
            other => panic!("{other:?}"),
        }
        let full = StoreError::Overloaded(9);
        let back = cross(Failure::store(&full)).into_store();
        assert_eq!(back.to_string(), full.to_string());
        assert_eq!(back.answer(), full.answer());
        let odd = StoreError::CorruptJson {
            what: "memory",
            reason: "eof".into(),
        };
        let back = cross(Failure::store(&odd)).into_store();
        assert_eq!(back.to_string(), odd.to_string());
        assert_eq!(back.answer(), Answer::Internal);
        assert!(matches!(
            cross(Failure::from_subscription(
                &SubscriptionError::HubUnavailable
            ))
            .into_subscription(SubscriptionId(2)),
            SubscriptionError::HubUnavailable
        ));
        let silent = Failure::Silent {
            node: "b".into(),
            seconds: 10,
        }
        .into_subscription(SubscriptionId(2));
        assert_eq!(
            silent.to_string(),
            "webhook 2 runs on node b, which did not answer within 10 s; retry shortly"
        );
    }
}
