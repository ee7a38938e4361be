//! The console's state: what was last loaded from the hub, which screen is shown,
//! each screen's filter, sort and selection (`view`), the open detail, prompt and
//! confirmation. Input turns into `Action`s applied here (`apply`), which answer the
//! `Command` to send to the hub, if any; the UI only reads this state to draw.

mod act;
pub mod edit;
mod nodes;
mod rates;
pub mod rows;
pub mod view;

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::{
    Agent, AgentLog, Delivery, EndpointDetail, Failure, IncomingWebhook, QueueDetail, StreamItem,
    Summary,
};
use crate::worker::{Command, Connection, Update};
pub use act::reload as act_reload;
pub use edit::EditForm;
pub use nodes::NodeCounts;
pub use rows::Endpoint;
pub use view::{Key, Screen, View};

/// Live events kept for the Events screen.
pub const EVENTS_KEPT: usize = 1000;
/// How long a status message stays on the status line.
pub const MESSAGE_SECONDS: i64 = 8;

/// An action that changes something on the hub, waiting for a yes. It names its
/// object (`target`), and its command carries that object's id: a refresh while
/// the question is open cannot change what a yes does.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub target: Key,
    pub question: String,
    pub command: Command,
    /// A replay's time range (index into `act::REPLAY_WINDOWS`), changed with ←/→.
    pub window: Option<usize>,
}

/// A detail view over the screen; the data is `None` while it loads.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Delivery(i64, Option<Box<Delivery>>),
    Agent(i64, Option<Box<(Agent, Vec<AgentLog>)>>),
    Queue(i64, Option<Box<QueueDetail>>),
    /// An event of the live tail (its payload is already here).
    Event(u64),
    /// An endpoint's request log (key: `AgentEndpoint` or `Incoming`).
    Endpoint(Key, Option<Box<EndpointDetail>>),
    /// A scenario's agent graph, full screen.
    Graph(i64),
    /// The edit form of a subscription (its keys are text while it is open).
    Edit(Box<EditForm>),
    /// The names of the user's credentials (never their values).
    Credentials(Option<Vec<crate::api::Credential>>),
    /// The node the console talks to and the cluster (data: `App::node`).
    Nodes,
}

impl Detail {
    /// The object the detail shows: what its action keys act on.
    pub fn key(&self) -> Key {
        match self {
            Detail::Delivery(id, _) => Key::Delivery(*id),
            Detail::Agent(id, _) => Key::Agent(*id),
            Detail::Queue(id, _) => Key::Sub(*id),
            Detail::Event(seq) => Key::Stream(*seq),
            Detail::Endpoint(k, _) => *k,
            Detail::Graph(id) => Key::Scenario(*id),
            Detail::Edit(form) => Key::Sub(form.id),
            Detail::Credentials(_) => Key::Credentials,
            Detail::Nodes => Key::Nodes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// `/`: the screen's filter, applied while typed.
    Filter,
    /// `:`: a screen's name.
    Jump,
}

/// What a key asks for (see `input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Back,
    Goto(Screen),
    NextScreen,
    PrevScreen,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Help,
    StartFilter,
    StartJump,
    PromptChar(char),
    PromptBackspace,
    PromptDone,
    /// Next sort column of the screen.
    SortNext,
    /// Reverse the sort order.
    SortReverse,
    Yes,
    No,
    Refresh,
    /// A delivery (Failures, delivery detail): send it again.
    Retry,
    /// A subscription (Queues, its detail): replay its dead deliveries.
    ReplayDead,
    /// A subscription: pause or resume.
    TogglePause,
    /// A subscription: send a test delivery.
    TestDelivery,
    /// A subscription: close its circuit now.
    ResetCircuit,
    /// A subscription: open its edit form.
    EditSub,
    /// A subscription: delete it.
    DeleteSub,
    /// An agent (Agents, its detail): enable or disable.
    ToggleAgent,
    RunAgent,
    ClearMemory,
    /// Events: clear the tail.
    ClearEvents,
    /// The names of the user's credentials, over any screen.
    Credentials,
    /// The node the console talks to and the cluster, over any screen.
    Nodes,
}

/// Every agent's event count (id, count) at one time: the graph's rates.
type CountSample = (DateTime<Utc>, Vec<(i64, i64)>);

/// A status message and when it was set (it expires).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub ok: bool,
    pub at: DateTime<Utc>,
}

pub struct App {
    pub screen: Screen,
    pub connection: Connection,
    pub base_url: String,
    pub summary: Option<Summary>,
    /// The node that last answered `/worker_status`, with the cluster view.
    pub node: Option<crate::api::NodeStatus>,
    pub failures: Vec<Failure>,
    pub agents: Vec<Agent>,
    pub incoming: Vec<IncomingWebhook>,
    /// The live tail, oldest first, each with the order it arrived in.
    pub events: VecDeque<(u64, StreamItem)>,
    next_seq: u64,
    /// Per screen, by `Screen::index`.
    pub views: [View; 7],
    pub scenarios: Vec<crate::api::Scenario>,
    /// Each agent's events per minute, from its event count a minute apart.
    pub agent_rates: std::collections::HashMap<i64, f64>,
    agent_samples: VecDeque<CountSample>,
    pub prompt: Option<(PromptKind, String)>,
    pub detail: Option<Detail>,
    pub confirm: Option<Confirm>,
    pub help: bool,
    pub detail_scroll: u16,
    message: Option<Message>,
    /// When the hub last answered a refresh: the age of what is on screen.
    pub data_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    pub color: bool,
    pub refresh: Duration,
    pub quit: bool,
    /// Rows a page holds (set by the UI from the last frame).
    pub page: usize,
}

impl App {
    pub fn new(base_url: &str, color: bool, refresh: Duration) -> App {
        App {
            screen: Screen::Overview,
            connection: Connection::Connecting,
            base_url: base_url.to_string(),
            summary: None,
            node: None,
            failures: Vec::new(),
            agents: Vec::new(),
            incoming: Vec::new(),
            events: VecDeque::new(),
            next_seq: 0,
            views: Default::default(),
            scenarios: Vec::new(),
            agent_rates: Default::default(),
            agent_samples: VecDeque::new(),
            prompt: None,
            detail: None,
            confirm: None,
            help: false,
            detail_scroll: 0,
            message: None,
            data_at: None,
            now: Utc::now(),
            color,
            refresh,
            quit: false,
            page: 10,
        }
    }

    pub fn view(&self) -> &View {
        &self.views[self.screen.index()]
    }

    fn view_mut(&mut self) -> &mut View {
        &mut self.views[self.screen.index()]
    }

    pub fn say(&mut self, text: impl Into<String>, ok: bool) {
        self.message = Some(Message {
            text: text.into(),
            ok,
            at: self.now,
        });
    }

    /// The status message, while it is fresh.
    pub fn message(&self) -> Option<&Message> {
        self.message
            .as_ref()
            .filter(|m| (self.now - m.at).num_seconds() < MESSAGE_SECONDS)
    }

    /// Seconds since the hub last answered, when it does not answer now.
    pub fn stale_for(&self) -> Option<i64> {
        match self.connection {
            Connection::Disconnected(_) | Connection::Unauthorized(_) => {
                self.data_at.map(|t| (self.now - t).num_seconds().max(0))
            }
            _ => None,
        }
    }

    pub fn apply_update(&mut self, u: Update) {
        match u {
            Update::Connection(c) => self.connection = c,
            Update::Summary(s) => {
                self.summary = Some(s);
                self.data_at = Some(self.now);
            }
            Update::Failures(f) => self.failures = f,
            Update::Agents(a) => {
                self.sample_rates(&a);
                self.agents = a;
            }
            Update::Scenarios(s) => self.scenarios = s,
            Update::Incoming(w) => self.incoming = w,
            Update::DeliveryDetail(d) => {
                if matches!(&self.detail, Some(Detail::Delivery(id, _)) if *id == d.id) {
                    self.detail = Some(Detail::Delivery(d.id, Some(Box::new(d))));
                }
            }
            Update::AgentDetail { agent, logs } => {
                if matches!(&self.detail, Some(Detail::Agent(id, _)) if *id == agent.id) {
                    self.detail = Some(Detail::Agent(agent.id, Some(Box::new((agent, logs)))));
                }
            }
            Update::Credentials(c) => {
                if matches!(self.detail, Some(Detail::Credentials(_))) {
                    self.detail = Some(Detail::Credentials(Some(c)));
                }
            }
            Update::QueueDetail(q) => match &mut self.detail {
                Some(Detail::Queue(id, _)) if *id == q.sub.id => {
                    self.detail = Some(Detail::Queue(q.sub.id, Some(Box::new(q))));
                }
                // Filled once: a later answer never overwrites what is being typed.
                Some(Detail::Edit(form)) if form.id == q.sub.id && !form.loaded => {
                    form.load(&q.sub);
                }
                _ => {}
            },
            Update::EndpointDetail(key, d) => {
                if matches!(&self.detail, Some(Detail::Endpoint(k, _)) if *k == key) {
                    self.detail = Some(Detail::Endpoint(key, Some(Box::new(d))));
                }
            }
            Update::Stream(item) => {
                if self.events.len() >= EVENTS_KEPT {
                    self.events.pop_front();
                }
                self.events.push_back((self.next_seq, item));
                self.next_seq += 1;
                self.reconcile(Screen::Events);
                return;
            }
            Update::Node(n) => self.node = Some(n),
            Update::Done(m, ok) => self.say(m, ok),
        }
        for s in Screen::ALL {
            self.reconcile(s);
        }
    }

    /// Keeps a screen's selection on its object; when the object is gone, moves it
    /// to the row now where it was.
    fn reconcile(&mut self, screen: Screen) {
        let keys = self.keys(screen);
        let v = &mut self.views[screen.index()];
        if let Some(pos) = v.selected.and_then(|k| keys.iter().position(|x| *x == k)) {
            v.index = pos;
            return;
        }
        v.index = v.index.min(keys.len().saturating_sub(1));
        v.selected = keys.get(v.index).copied();
    }

    /// The command that reloads the open detail, when it has data on the hub to
    /// reload (the main loop sends it every few seconds, so a detail stays live).
    pub fn detail_reload(&self) -> Option<Command> {
        if let Some(Detail::Edit(form)) = &self.detail {
            return (!form.loaded).then_some(Command::QueueDetail(form.id));
        }
        match self.detail.as_ref()?.key() {
            // The node view comes with every refresh: nothing of its own to reload.
            Key::Stream(_) | Key::Scenario(_) | Key::Nodes => None,
            k => Some(act::reload(k)),
        }
    }

    /// The row of the current screen's selection.
    pub fn selection(&self) -> Option<usize> {
        let v = self.view();
        let keys = self.keys(self.screen);
        v.selected.and_then(|k| keys.iter().position(|x| *x == k))
    }

    /// The object the current screen's selection stands for.
    pub fn selected(&self) -> Option<Key> {
        let k = self.view().selected?;
        self.keys(self.screen).contains(&k).then_some(k)
    }

    fn select(&mut self, f: impl FnOnce(usize, usize) -> usize) {
        let keys = self.keys(self.screen);
        let n = keys.len();
        let cur = self.selection().unwrap_or(self.view().index);
        let v = self.view_mut();
        if n == 0 {
            v.selected = None;
            v.index = 0;
            return;
        }
        v.index = f(cur.min(n - 1), n).min(n - 1);
        v.selected = keys.get(v.index).copied();
    }

    fn goto(&mut self, s: Screen) {
        self.screen = s;
        self.reconcile(s);
    }

    /// Applies one action; answers the command to send to the worker, if any.
    pub fn apply(&mut self, a: Action) -> Option<Command> {
        if let Some(c) = self.confirm.clone() {
            match a {
                Action::Yes | Action::Open => {
                    self.confirm = None;
                    self.after_yes(&c.command);
                    return Some(c.command);
                }
                Action::No | Action::Back | Action::Quit => {
                    self.confirm = None;
                    self.say("cancelled", true);
                }
                Action::NextScreen | Action::PrevScreen => {
                    if let (Some(w), Key::Sub(id)) = (c.window, c.target) {
                        let n = act::REPLAY_WINDOWS.len();
                        let w = if a == Action::NextScreen {
                            w + 1
                        } else {
                            w + n - 1
                        };
                        self.confirm = Some(self.replay_confirm(id, w % n));
                    }
                }
                _ => {}
            }
            return None;
        }
        if self.help {
            if matches!(a, Action::Quit | Action::Back | Action::Help | Action::Open) {
                self.help = false;
            }
            return None;
        }
        if let Some((kind, _)) = self.prompt {
            self.prompt_key(kind, a);
            return None;
        }
        if matches!(self.detail, Some(Detail::Edit(_))) {
            return self.edit_key(a);
        }
        if self.detail.is_some() {
            return self.detail_key(a);
        }
        self.screen_key(a)
    }

    fn prompt_key(&mut self, kind: PromptKind, a: Action) {
        let Some((_, text)) = self.prompt.as_mut() else {
            return;
        };
        match a {
            Action::PromptChar(c) => text.push(c),
            Action::PromptBackspace => {
                text.pop();
            }
            Action::PromptDone => {
                let text = std::mem::take(text);
                self.prompt = None;
                if kind == PromptKind::Jump {
                    match Screen::by_name(&text) {
                        Some(s) => self.goto(s),
                        None => self.say(format!("no screen named \"{text}\""), false),
                    }
                }
            }
            Action::Back | Action::Quit => {
                self.prompt = None;
                if kind == PromptKind::Filter {
                    self.view_mut().filter.clear();
                }
            }
            _ => {}
        }
        if kind == PromptKind::Filter
            && let Some((_, text)) = &self.prompt
        {
            let text = text.clone();
            self.view_mut().filter = text;
        }
        self.reconcile(self.screen);
    }

    fn detail_key(&mut self, a: Action) -> Option<Command> {
        let page = self.page.max(1) as u16;
        match a {
            Action::Quit | Action::Back => self.detail = None,
            Action::Up => self.detail_scroll = self.detail_scroll.saturating_sub(1),
            Action::Down => self.detail_scroll = self.detail_scroll.saturating_add(1),
            Action::PageUp => self.detail_scroll = self.detail_scroll.saturating_sub(page),
            Action::PageDown => self.detail_scroll = self.detail_scroll.saturating_add(page),
            Action::Top => self.detail_scroll = 0,
            Action::Help => self.help = true,
            Action::Refresh => return self.detail.as_ref().map(|d| act::reload(d.key())),
            _ => return self.act(a),
        }
        None
    }

    fn screen_key(&mut self, a: Action) -> Option<Command> {
        match a {
            Action::Quit => self.quit = true,
            Action::Back => {
                if !self.view().filter.is_empty() {
                    self.view_mut().filter.clear();
                    self.reconcile(self.screen);
                } else if self.screen != Screen::Overview {
                    self.goto(Screen::Overview);
                } else {
                    self.quit = true;
                }
            }
            Action::Goto(s) => self.goto(s),
            Action::NextScreen => {
                let n = Screen::ALL.len();
                self.goto(Screen::ALL[(self.screen.index() + 1) % n]);
            }
            Action::PrevScreen => {
                let n = Screen::ALL.len();
                self.goto(Screen::ALL[(self.screen.index() + n - 1) % n]);
            }
            Action::Up => self.select(|c, _| c.saturating_sub(1)),
            Action::Down => self.select(|c, _| c + 1),
            Action::PageUp => {
                let p = self.page.max(1);
                self.select(|c, _| c.saturating_sub(p));
            }
            Action::PageDown => {
                let p = self.page.max(1);
                self.select(|c, _| c + p);
            }
            Action::Top => self.select(|_, _| 0),
            Action::Bottom => self.select(|_, n| n),
            Action::Help => self.help = true,
            Action::StartFilter => {
                if self.screen != Screen::Overview {
                    let f = self.view().filter.clone();
                    self.prompt = Some((PromptKind::Filter, f));
                }
            }
            Action::StartJump => self.prompt = Some((PromptKind::Jump, String::new())),
            Action::SortNext | Action::SortReverse => self.sort(a),
            Action::Refresh => return Some(Command::Refresh),
            Action::Open => return self.open(),
            Action::Credentials => {
                self.detail_scroll = 0;
                self.detail = Some(Detail::Credentials(None));
                return Some(Command::Credentials);
            }
            Action::Nodes => {
                self.detail_scroll = 0;
                self.detail = Some(Detail::Nodes);
                // What it shows is as of the last refresh: fetch it now.
                return Some(Command::Refresh);
            }
            Action::ClearEvents => {
                if self.screen == Screen::Events {
                    self.events.clear();
                    self.reconcile(Screen::Events);
                }
            }
            Action::Yes
            | Action::No
            | Action::PromptChar(_)
            | Action::PromptBackspace
            | Action::PromptDone => {}
            _ => return self.act(a),
        }
        None
    }

    fn sort(&mut self, a: Action) {
        let n = self.screen.sorts().len();
        if n == 0 {
            return;
        }
        let v = self.view_mut();
        if a == Action::SortNext {
            v.sort = (v.sort + 1) % n;
            v.reversed = false;
        } else {
            v.reversed = !v.reversed;
        }
        // The selection stays on its object; only its row moves.
        self.reconcile(self.screen);
    }

    /// Enter: the detail of the selected object.
    fn open(&mut self) -> Option<Command> {
        let key = self.selected()?;
        self.detail_scroll = 0;
        let (detail, cmd) = match key {
            Key::Delivery(id) => (Detail::Delivery(id, None), Command::DeliveryDetail(id)),
            Key::Agent(id) => (Detail::Agent(id, None), Command::AgentDetail(id)),
            Key::Sub(id) => (Detail::Queue(id, None), Command::QueueDetail(id)),
            Key::AgentEndpoint(_) | Key::Incoming(_) => {
                (Detail::Endpoint(key, None), act::reload(key))
            }
            Key::Scenario(id) => {
                self.detail = Some(Detail::Graph(id));
                return None;
            }
            // Never rows: the credentials list (K) and the nodes (N) open over any screen.
            Key::Credentials | Key::Nodes => return None,
            Key::Stream(seq) => {
                // A delivery of the tail opens the delivery; an event shows its payload.
                let item = self.events.iter().find(|(s, _)| *s == seq).map(|(_, e)| e);
                match item {
                    Some(StreamItem::Delivery { delivery_id, .. }) => (
                        Detail::Delivery(*delivery_id, None),
                        Command::DeliveryDetail(*delivery_id),
                    ),
                    Some(StreamItem::Event { .. }) => {
                        self.detail = Some(Detail::Event(seq));
                        return None;
                    }
                    _ => return None,
                }
            }
        };
        self.detail = Some(detail);
        Some(cmd)
    }
}
