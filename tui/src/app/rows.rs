//! The rows each screen shows: its own filter applied, then its own sort order. Each
//! row has a `Key` (the object it stands for); the selection and every action go by
//! that key.

use std::cmp::Ordering;

use crate::api::{Agent, Failure, IncomingWebhook, Queue, Scenario, StreamItem};
use crate::app::App;
use crate::app::view::{Key, Screen};

/// An inbound face of the hub: an agent's URL or an incoming webhook.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    Agent(&'a Agent),
    Incoming(&'a IncomingWebhook),
}

impl Endpoint<'_> {
    pub fn key(&self) -> Key {
        match self {
            Endpoint::Agent(a) => Key::AgentEndpoint(a.id),
            Endpoint::Incoming(w) => Key::Incoming(w.id),
        }
    }

    pub fn id(&self) -> i64 {
        match self {
            Endpoint::Agent(a) => a.id,
            Endpoint::Incoming(w) => w.id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Endpoint::Agent(a) => &a.name,
            Endpoint::Incoming(w) => &w.name,
        }
    }

    /// `incoming` for an incoming webhook, else the agent's type (`webhook`,
    /// `data_output`, ...).
    pub fn kind(&self) -> &str {
        match self {
            Endpoint::Agent(a) => &a.agent_type,
            Endpoint::Incoming(_) => "incoming",
        }
    }

    pub fn last_request(&self) -> Option<&str> {
        match self {
            Endpoint::Agent(a) => a.last_web_request_at.as_deref(),
            Endpoint::Incoming(_) => None,
        }
    }

    pub fn disabled(&self) -> bool {
        match self {
            Endpoint::Agent(a) => a.disabled,
            Endpoint::Incoming(w) => !w.is_active,
        }
    }
}

/// Agents with a URL of their own on the hub.
fn is_endpoint(a: &Agent) -> bool {
    a.web_request_url.is_some() || matches!(a.agent_type.as_str(), "webhook" | "data_output")
}

pub fn stream_key(seq: u64) -> Key {
    Key::Stream(seq)
}

impl App {
    fn matches(&self, screen: Screen, texts: &[&str]) -> bool {
        let f = &self.views[screen.index()].filter;
        if f.is_empty() {
            return true;
        }
        let f = f.to_lowercase();
        texts.iter().any(|t| t.to_lowercase().contains(&f))
    }

    fn order<T>(&self, screen: Screen, rows: &mut [T], cmp: impl Fn(usize, &T, &T) -> Ordering) {
        let v = &self.views[screen.index()];
        rows.sort_by(|a, b| {
            let o = cmp(v.sort, a, b);
            if v.reversed { o.reverse() } else { o }
        });
    }

    /// Subscriptions, filtered and sorted (worst first by default).
    pub fn queues(&self) -> Vec<&Queue> {
        let mut q: Vec<&Queue> = self
            .summary
            .iter()
            .flat_map(|s| s.subscriptions.iter())
            .filter(|q| self.matches(Screen::Queues, &[&q.label(), &q.url]))
            .collect();
        self.order(Screen::Queues, &mut q, |col, a, b| {
            let o = match col {
                1 => a.label().to_lowercase().cmp(&b.label().to_lowercase()),
                2 => b.pending.cmp(&a.pending),
                3 => b.retrying.cmp(&a.retrying),
                4 => b.dead.cmp(&a.dead),
                5 => b.per_minute.cmp(&a.per_minute),
                6 => a
                    .success_ratio
                    .unwrap_or(2.0)
                    .total_cmp(&b.success_ratio.unwrap_or(2.0)),
                _ => b.badness().cmp(&a.badness()),
            };
            o.then(a.id.cmp(&b.id))
        });
        q
    }

    pub fn visible_failures(&self) -> Vec<&Failure> {
        let mut l: Vec<&Failure> = self
            .failures
            .iter()
            .filter(|f| {
                self.matches(
                    Screen::Failures,
                    &[
                        &f.subscription,
                        &f.event_type,
                        &f.delivery.status,
                        &f.delivery.id.to_string(),
                        f.delivery.last_error.as_deref().unwrap_or(""),
                    ],
                )
            })
            .collect();
        self.order(Screen::Failures, &mut l, |col, a, b| {
            let (x, y) = (&a.delivery, &b.delivery);
            let o = match col {
                1 => a.subscription.cmp(&b.subscription),
                2 => a.event_type.cmp(&b.event_type),
                3 => x.status.cmp(&y.status),
                4 => y.attempts.cmp(&x.attempts),
                _ => y.updated_at.cmp(&x.updated_at),
            };
            o.then(y.id.cmp(&x.id))
        });
        l
    }

    pub fn visible_agents(&self) -> Vec<&Agent> {
        let mut l: Vec<&Agent> = self
            .agents
            .iter()
            .filter(|a| self.matches(Screen::Agents, &[&a.name, &a.agent_type]))
            .collect();
        self.order(Screen::Agents, &mut l, |col, a, b| {
            let o = match col {
                1 => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                2 => a.agent_type.cmp(&b.agent_type),
                // Not working first: what needs a look.
                3 => (a.working(), !a.disabled).cmp(&(b.working(), !b.disabled)),
                4 => b.last_event_at.cmp(&a.last_event_at),
                5 => b.events_count.cmp(&a.events_count),
                _ => Ordering::Equal,
            };
            o.then(a.id.cmp(&b.id))
        });
        l
    }

    /// Inbound faces: agents with a URL (webhook, data_output) and incoming webhooks.
    pub fn endpoints(&self) -> Vec<Endpoint<'_>> {
        let mut l: Vec<Endpoint> = self
            .agents
            .iter()
            .filter(|a| is_endpoint(a))
            .map(Endpoint::Agent)
            .chain(self.incoming.iter().map(Endpoint::Incoming))
            .filter(|e| self.matches(Screen::Endpoints, &[e.name(), e.kind()]))
            .collect();
        self.order(Screen::Endpoints, &mut l, |col, a, b| {
            let o = match col {
                1 => a.kind().cmp(b.kind()),
                2 => b.last_request().cmp(&a.last_request()),
                3 => self.rejected(b).cmp(&self.rejected(a)),
                _ => a.name().to_lowercase().cmp(&b.name().to_lowercase()),
            };
            o.then(a.key().cmp_id(&b.key()))
        });
        l
    }

    /// Requests an agent endpoint turned away since the hub started.
    pub fn rejected(&self, e: &Endpoint) -> u64 {
        let Endpoint::Agent(a) = e else { return 0 };
        self.summary
            .as_ref()
            .and_then(|s| s.endpoints.iter().find(|c| c.agent_id == a.id))
            .map_or(0, |c| c.rejected.values().sum())
    }

    pub fn agent_name(&self, id: Option<i64>) -> String {
        match id {
            None => "system".into(),
            Some(id) => self
                .agents
                .iter()
                .find(|a| a.id == id)
                .map_or_else(|| format!("#{id}"), |a| a.name.clone()),
        }
    }

    pub fn sub_label(&self, id: i64) -> String {
        self.summary
            .as_ref()
            .and_then(|s| s.subscriptions.iter().find(|q| q.id == id))
            .map_or_else(|| format!("webhook #{id}"), Queue::label)
    }

    /// The live tail, newest first unless sorted otherwise, filtered by type, agent,
    /// subscription or status.
    pub fn visible_events(&self) -> Vec<(u64, &StreamItem)> {
        let mut l: Vec<(u64, &StreamItem)> = self
            .events
            .iter()
            .map(|(s, e)| (*s, e))
            .filter(|(_, e)| match e {
                StreamItem::Event {
                    event_type,
                    agent_id,
                    ..
                } => self.matches(Screen::Events, &[event_type, &self.agent_name(*agent_id)]),
                StreamItem::Delivery {
                    event_type,
                    status,
                    webhook_id,
                    ..
                } => self.matches(
                    Screen::Events,
                    &[event_type, status, "delivery", &self.sub_label(*webhook_id)],
                ),
                StreamItem::Lagged { .. } => true,
            })
            .collect();
        self.order(Screen::Events, &mut l, |col, (sa, a), (sb, b)| {
            let o = match col {
                1 => kind_of(a).cmp(kind_of(b)),
                2 => type_of(a).cmp(type_of(b)),
                _ => Ordering::Equal,
            };
            o.then(sb.cmp(sa))
        });
        l
    }

    pub fn visible_scenarios(&self) -> Vec<&Scenario> {
        let mut l: Vec<&Scenario> = self
            .scenarios
            .iter()
            .filter(|s| self.matches(Screen::Graph, &[&s.name]))
            .collect();
        self.order(Screen::Graph, &mut l, |col, a, b| {
            let o = match col {
                1 => b.agent_ids.len().cmp(&a.agent_ids.len()),
                _ => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            };
            o.then(a.id.cmp(&b.id))
        });
        l
    }

    /// The keys of a screen's rows, in the order shown.
    pub fn keys(&self, screen: Screen) -> Vec<Key> {
        match screen {
            Screen::Overview => Vec::new(),
            Screen::Queues => self.queues().iter().map(|q| Key::Sub(q.id)).collect(),
            Screen::Failures => self
                .visible_failures()
                .iter()
                .map(|f| Key::Delivery(f.delivery.id))
                .collect(),
            Screen::Agents => self
                .visible_agents()
                .iter()
                .map(|a| Key::Agent(a.id))
                .collect(),
            Screen::Endpoints => self.endpoints().iter().map(Endpoint::key).collect(),
            Screen::Events => self
                .visible_events()
                .iter()
                .map(|(s, _)| stream_key(*s))
                .collect(),
            Screen::Graph => self
                .visible_scenarios()
                .iter()
                .map(|s| Key::Scenario(s.id))
                .collect(),
        }
    }
}

fn kind_of(e: &StreamItem) -> &'static str {
    match e {
        StreamItem::Event { .. } => "event",
        StreamItem::Delivery { .. } => "delivery",
        StreamItem::Lagged { .. } => "skipped",
    }
}

fn type_of(e: &StreamItem) -> &str {
    match e {
        StreamItem::Event { event_type, .. } | StreamItem::Delivery { event_type, .. } => {
            event_type
        }
        StreamItem::Lagged { .. } => "",
    }
}

impl Key {
    /// A stable tie-break between rows of one list.
    fn cmp_id(&self, other: &Key) -> Ordering {
        self.rank().cmp(&other.rank())
    }

    fn rank(&self) -> (u8, i64) {
        match *self {
            Key::Sub(i) => (0, i),
            Key::Delivery(i) => (1, i),
            Key::Agent(i) => (2, i),
            Key::AgentEndpoint(i) => (3, i),
            Key::Incoming(i) => (4, i),
            Key::Stream(s) => (5, i64::try_from(s).unwrap_or(i64::MAX)),
            Key::Scenario(i) => (6, i),
            Key::Credentials => (7, 0),
            Key::Nodes => (8, 0),
        }
    }
}
