//! The network side of the console: a background thread running an actix runtime.
//! It refreshes the data every interval, follows `/api/stream`, and runs the actions
//! the UI asks for, each as its own task, so the draw loop never waits on the network.
//! The UI sends `Command`s and receives `Update`s over channels.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::api::{
    Agent, AgentLog, Delivery, EndpointDetail, Failure, IncomingWebhook, QueueDetail, StreamItem,
    Summary,
};
use crate::app::Key;
use crate::client::{Client, ClientError};

/// Failures shown: the newest of each status.
pub const FAILURES_LIMIT: u32 = 100;

/// What the UI asks the worker to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Refresh now instead of at the next tick.
    Refresh,
    DeliveryDetail(i64),
    AgentDetail(i64),
    /// The names of the user's credentials.
    Credentials,
    /// A subscription's settings, retrying deliveries and latest attempts.
    QueueDetail(i64),
    /// An endpoint's request log (`Key::AgentEndpoint` or `Key::Incoming`).
    EndpointDetail(Key),
    RetryDelivery(i64),
    TestDelivery {
        webhook_id: i64,
    },
    /// Dead deliveries created since the time given (RFC 3339), or all.
    ReplayDead {
        webhook_id: i64,
        since: Option<String>,
    },
    SetPaused {
        webhook_id: i64,
        paused: bool,
    },
    /// Close a subscription's circuit now.
    ResetCircuit {
        webhook_id: i64,
    },
    /// Change a subscription: `body` holds only the fields the operator changed.
    UpdateSubscription {
        webhook_id: i64,
        body: serde_json::Value,
    },
    DeleteSubscription {
        webhook_id: i64,
    },
    SetAgentDisabled {
        agent_id: i64,
        disabled: bool,
    },
    RunAgent(i64),
    ClearAgentMemory(i64),
    Quit,
}

impl Command {
    /// The object a command changes on the hub; `None` for reads.
    pub fn target(&self) -> Option<Key> {
        match self {
            Command::RetryDelivery(id) => Some(Key::Delivery(*id)),
            Command::ReplayDead { webhook_id, .. }
            | Command::SetPaused { webhook_id, .. }
            | Command::TestDelivery { webhook_id }
            | Command::ResetCircuit { webhook_id }
            | Command::UpdateSubscription { webhook_id, .. }
            | Command::DeleteSubscription { webhook_id } => Some(Key::Sub(*webhook_id)),
            Command::SetAgentDisabled { agent_id, .. } => Some(Key::Agent(*agent_id)),
            Command::RunAgent(id) | Command::ClearAgentMemory(id) => Some(Key::Agent(*id)),
            Command::Refresh
            | Command::DeliveryDetail(_)
            | Command::AgentDetail(_)
            | Command::Credentials
            | Command::QueueDetail(_)
            | Command::EndpointDetail(_)
            | Command::Quit => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Connecting,
    Connected,
    /// The hub cannot be reached; the worker keeps trying.
    Disconnected(String),
    /// The hub refused the token.
    Unauthorized(String),
}

/// What the worker tells the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Connection(Connection),
    Summary(Summary),
    Failures(Vec<Failure>),
    Agents(Vec<Agent>),
    Incoming(Vec<IncomingWebhook>),
    Scenarios(Vec<crate::api::Scenario>),
    DeliveryDetail(Delivery),
    QueueDetail(QueueDetail),
    EndpointDetail(Key, EndpointDetail),
    AgentDetail {
        agent: Agent,
        logs: Vec<AgentLog>,
    },
    Credentials(Vec<crate::api::Credential>),
    /// The node that answered `/worker_status` and its cluster view.
    Node(crate::api::NodeStatus),
    Stream(StreamItem),
    /// An action finished: (message, ok).
    Done(String, bool),
}

pub struct Handle {
    pub commands: UnboundedSender<Command>,
    pub updates: mpsc::Receiver<Update>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    pub fn send(&self, c: Command) {
        // The worker is gone only when the console is quitting.
        let _ = self.commands.send(c);
    }

    pub fn stop(mut self) {
        self.send(Command::Quit);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the worker thread.
pub fn start(base: String, token: String, interval: Duration) -> Handle {
    let (tx, rx) = unbounded_channel();
    let (utx, urx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let system = actix_rt::System::new();
        system.block_on(run(base, token, interval, rx, utx));
    });
    Handle {
        commands: tx,
        updates: urx,
        thread: Some(thread),
    }
}

fn connection_of(e: &ClientError) -> Connection {
    match e {
        ClientError::Unauthorized { .. } => Connection::Unauthorized(e.to_string()),
        _ => Connection::Disconnected(e.to_string()),
    }
}

/// Loads the failures (retrying and dead deliveries), newest first, with their
/// subscription names and event types (cached by event id).
pub async fn load_failures(
    client: &Client,
    names: &HashMap<i64, String>,
    event_types: &RefCell<HashMap<i64, String>>,
) -> Result<Vec<Failure>, ClientError> {
    // Event types never change, but the cache must not grow for ever.
    if event_types.borrow().len() > 10 * FAILURES_LIMIT as usize {
        event_types.borrow_mut().clear();
    }
    let mut all = client.deliveries("dead", FAILURES_LIMIT).await?;
    all.extend(client.deliveries("retrying", FAILURES_LIMIT).await?);
    all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
    all.truncate(FAILURES_LIMIT as usize);
    let mut out = Vec::with_capacity(all.len());
    for d in all {
        let known = event_types.borrow().get(&d.event_id).cloned();
        let event_type = match known {
            Some(t) => t,
            None => match client.event(d.event_id).await {
                Ok(e) => {
                    event_types
                        .borrow_mut()
                        .insert(d.event_id, e.event_type.clone());
                    e.event_type
                }
                Err(ClientError::Api { status: 404, .. }) => {
                    event_types
                        .borrow_mut()
                        .insert(d.event_id, "(expired)".into());
                    "(expired)".into()
                }
                Err(e) => return Err(e),
            },
        };
        out.push(Failure {
            subscription: names
                .get(&d.webhook_id)
                .cloned()
                .unwrap_or_else(|| format!("#{}", d.webhook_id)),
            event_type,
            delivery: d,
        });
    }
    Ok(out)
}

async fn refresh(
    client: &Client,
    event_types: &RefCell<HashMap<i64, String>>,
    out: &mpsc::Sender<Update>,
) -> Result<(), ClientError> {
    let summary = client.summary().await?;
    let names: HashMap<i64, String> = summary
        .subscriptions
        .iter()
        .map(|q| (q.id, q.name.clone()))
        .collect();
    let _ = out.send(Update::Summary(summary));
    // Hubs from before several nodes answer without `node`: nothing to show.
    match client.worker_status().await {
        Ok(w) => {
            if let Some(n) = w.node {
                let _ = out.send(Update::Node(n));
            }
        }
        Err(ClientError::Api { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    let _ = out.send(Update::Failures(
        load_failures(client, &names, event_types).await?,
    ));
    let _ = out.send(Update::Agents(client.agents().await?));
    // A hub without incoming webhooks answers 404: it has none to show.
    match client.incoming().await {
        Ok(w) => {
            let _ = out.send(Update::Incoming(w));
        }
        Err(ClientError::Api { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    match client.scenarios().await {
        Ok(s) => {
            let _ = out.send(Update::Scenarios(s));
        }
        Err(ClientError::Api { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

async fn act(client: &Client, c: Command, out: &mpsc::Sender<Update>) {
    let done = |r: Result<String, ClientError>| {
        let _ = out.send(match r {
            Ok(m) => Update::Done(m, true),
            Err(e) => Update::Done(e.to_string(), false),
        });
    };
    match c {
        Command::DeliveryDetail(id) => match client.delivery(id).await {
            Ok(d) => {
                let _ = out.send(Update::DeliveryDetail(d));
            }
            Err(e) => done(Err(e)),
        },
        Command::AgentDetail(id) => {
            let r = async { Ok((client.agent(id).await?, client.agent_logs(id, 50).await?)) }.await;
            match r {
                Ok((agent, logs)) => {
                    let _ = out.send(Update::AgentDetail { agent, logs });
                }
                Err(e) => done(Err(e)),
            }
        }
        Command::Credentials => match client.credentials().await {
            Ok(c) => {
                let _ = out.send(Update::Credentials(c));
            }
            Err(e) => done(Err(e)),
        },
        Command::QueueDetail(id) => match queue_detail(client, id).await {
            Ok(q) => {
                let _ = out.send(Update::QueueDetail(q));
            }
            Err(e) => done(Err(e)),
        },
        Command::EndpointDetail(key) => match endpoint_detail(client, key).await {
            Ok(d) => {
                let _ = out.send(Update::EndpointDetail(key, d));
            }
            Err(e) => done(Err(e)),
        },
        Command::TestDelivery { webhook_id } => {
            done(client.test_delivery(webhook_id).await.map(|v| {
                let status = v
                    .get("status")
                    .or_else(|| v.get("response_status"))
                    .map(|s| s.to_string());
                match status {
                    Some(s) => format!("test delivery to webhook {webhook_id}: {s}"),
                    None => format!("test delivery sent to webhook {webhook_id}"),
                }
            }))
        }
        Command::RetryDelivery(id) => done(
            client
                .retry_delivery(id)
                .await
                .map(|_| format!("delivery {id} queued for retry")),
        ),
        Command::ReplayDead { webhook_id, since } => done(
            client
                .replay_dead(webhook_id, since.as_deref())
                .await
                .map(|v| {
                    let n = v
                        .get("queued")
                        .or_else(|| v.get("matched"))
                        .and_then(|n| n.as_i64());
                    match n {
                        Some(n) => format!("{n} dead deliveries of webhook {webhook_id} re-queued"),
                        None => format!("dead deliveries of webhook {webhook_id} re-queued"),
                    }
                }),
        ),
        Command::SetPaused { webhook_id, paused } => {
            done(client.set_paused(webhook_id, paused).await.map(|_| {
                format!(
                    "webhook {webhook_id} {}",
                    if paused { "paused" } else { "resumed" }
                )
            }))
        }
        Command::ResetCircuit { webhook_id } => {
            done(client.reset_circuit(webhook_id).await.map(|was_open| {
                if was_open {
                    format!("circuit of webhook {webhook_id} closed: its queue is sent again")
                } else {
                    format!("circuit of webhook {webhook_id} was already closed")
                }
            }))
        }
        Command::UpdateSubscription { webhook_id, body } => done(
            client
                .update_subscription(webhook_id, body)
                .await
                .map(|_| format!("webhook {webhook_id} saved")),
        ),
        Command::DeleteSubscription { webhook_id } => done(
            client
                .delete_subscription(webhook_id)
                .await
                .map(|_| format!("webhook {webhook_id} deleted")),
        ),
        Command::SetAgentDisabled { agent_id, disabled } => done(
            client
                .set_agent_disabled(agent_id, disabled)
                .await
                .map(|_| {
                    format!(
                        "agent {agent_id} {}",
                        if disabled { "disabled" } else { "enabled" }
                    )
                }),
        ),
        Command::RunAgent(id) => done(
            client
                .run_agent(id)
                .await
                .map(|_| format!("agent {id} is running")),
        ),
        Command::ClearAgentMemory(id) => done(
            client
                .clear_agent_memory(id)
                .await
                .map(|_| format!("memory of agent {id} cleared")),
        ),
        Command::Refresh | Command::Quit => {}
    }
}

/// Deliveries and attempts the Queues detail reads.
const DETAIL_LIMIT: u32 = 20;

async fn queue_detail(client: &Client, id: i64) -> Result<QueueDetail, ClientError> {
    Ok(QueueDetail {
        sub: client.subscription(id).await?,
        retrying: client.deliveries_of(id, "retrying", 100).await?,
        attempts: client.outgoing_logs(id, DETAIL_LIMIT).await?,
    })
}

pub async fn endpoint_detail(client: &Client, key: Key) -> Result<EndpointDetail, ClientError> {
    let (id, kind) = match key {
        Key::Incoming(id) => (id, "incoming"),
        Key::AgentEndpoint(id) => (id, "agent"),
        _ => return Ok(EndpointDetail::default()),
    };
    let mut logs = client.inbound_logs(id, kind, 50).await;
    let mut kind = kind;
    // The hub logs webhook agents as `agent` and data_output feeds as `feed`; the
    // console knows only that the row is an agent's URL.
    if kind == "agent" && matches!(logs, Err(ClientError::Api { status: 404, .. })) {
        kind = "feed";
        logs = client.inbound_logs(id, kind, 50).await;
    }
    match logs {
        Ok(logs) => Ok(EndpointDetail {
            logs,
            stats: client.inbound_stats(id, kind).await.ok(),
            note: None,
        }),
        // Older hubs keep request logs for webhook agents and incoming webhooks only.
        Err(ClientError::Api {
            status: 404 | 422,
            message,
        }) => Ok(EndpointDetail {
            note: Some(format!(
                "The hub keeps no request log for this endpoint ({message})."
            )),
            ..Default::default()
        }),
        Err(e) => Err(e),
    }
}

async fn follow_stream(client: Rc<Client>, out: mpsc::Sender<Update>) {
    loop {
        match client.stream().await {
            Ok(s) => {
                let mut s = Box::pin(s);
                while let Some(item) = s.next().await {
                    match item {
                        Ok(i) => {
                            if out.send(Update::Stream(i)).is_err() {
                                return;
                            }
                        }
                        Err(ClientError::Decode(_)) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(_) => {
                // The refresh loop reports the connection state; just try again.
            }
        }
        actix_rt::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn run(
    base: String,
    token: String,
    interval: Duration,
    mut commands: UnboundedReceiver<Command>,
    out: mpsc::Sender<Update>,
) {
    let timeout = interval.max(Duration::from_secs(5));
    let client = Rc::new(Client::new(&base, &token, timeout));
    let mut stream_task = actix_rt::spawn(follow_stream(client.clone(), out.clone()));
    // After an outage the old stream may still hang on a hub that is shutting down:
    // the refresher asks for a new one when the hub answers again.
    let (reconnected_tx, mut reconnected) = unbounded_channel::<()>();
    let event_types = Rc::new(RefCell::new(HashMap::new()));
    let (kick_tx, mut kick_rx) = unbounded_channel::<()>();
    let refresher = {
        let (client, out, event_types) = (client.clone(), out.clone(), event_types.clone());
        actix_rt::spawn(async move {
            let mut state = Connection::Connecting;
            loop {
                let next = match refresh(&client, &event_types, &out).await {
                    Ok(()) => Connection::Connected,
                    Err(e) if matches!(e, ClientError::Api { .. } | ClientError::Decode(_)) => {
                        let _ = out.send(Update::Done(e.to_string(), false));
                        Connection::Connected
                    }
                    Err(e) => connection_of(&e),
                };
                if next != state {
                    if next == Connection::Connected
                        && matches!(
                            state,
                            Connection::Disconnected(_) | Connection::Unauthorized(_)
                        )
                    {
                        let _ = reconnected_tx.send(());
                    }
                    state = next.clone();
                    if out.send(Update::Connection(next)).is_err() {
                        return;
                    }
                }
                // Wait for the tick, or for an explicit refresh.
                let wait = if matches!(state, Connection::Connected) {
                    interval
                } else {
                    interval.max(Duration::from_secs(2))
                };
                tokio::select! {
                    _ = actix_rt::time::sleep(wait) => {}
                    k = kick_rx.recv() => if k.is_none() { return },
                }
            }
        })
    };
    loop {
        let c = tokio::select! {
            c = commands.recv() => c,
            Some(()) = reconnected.recv() => {
                stream_task.abort();
                stream_task = actix_rt::spawn(follow_stream(client.clone(), out.clone()));
                continue;
            }
        };
        let Some(c) = c else { break };
        match c {
            Command::Quit => break,
            Command::Refresh => {
                let _ = kick_tx.send(());
            }
            c => {
                let (client, out, kick) = (client.clone(), out.clone(), kick_tx.clone());
                actix_rt::spawn(async move {
                    let target = c.target();
                    // A deleted subscription has no detail to read back.
                    let deleted = matches!(c, Command::DeleteSubscription { .. });
                    act(&client, c, &out).await;
                    if let Some(key) = target {
                        let _ = kick.send(());
                        if deleted {
                            return;
                        }
                        // An open detail of the object shows what the action did
                        // (the UI drops it when no such detail is open).
                        act(&client, crate::app::act_reload(key), &out).await;
                    }
                });
            }
        }
    }
    stream_task.abort();
    refresher.abort();
}
