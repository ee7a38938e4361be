//! The console's state: what was last loaded from the hub, which screen is shown,
//! selections, the filter, overlays. Input turns into `Action`s applied here; the UI
//! only reads this state to draw.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::{Agent, AgentLog, Delivery, Failure, Queue, StreamItem, Summary};
use crate::worker::{Command, Connection, Update};

/// Live events kept for the Events screen.
pub const EVENTS_KEPT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Overview,
    Queues,
    Failures,
    Agents,
    Endpoints,
    Events,
}

impl Screen {
    pub const ALL: [Screen; 6] = [
        Screen::Overview,
        Screen::Queues,
        Screen::Failures,
        Screen::Agents,
        Screen::Endpoints,
        Screen::Events,
    ];

    pub fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    pub fn title(self) -> &'static str {
        match self {
            Screen::Overview => "Overview",
            Screen::Queues => "Queues",
            Screen::Failures => "Failures",
            Screen::Agents => "Agents",
            Screen::Endpoints => "Endpoints",
            Screen::Events => "Events",
        }
    }
}

/// An action that changes something on the hub and waits for a yes.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub question: String,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    Confirm(Confirm),
    /// The delivery's detail; `None` while it loads.
    Delivery(i64, Option<Box<Delivery>>),
    Agent(i64, Option<Box<(Agent, Vec<AgentLog>)>>),
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
    FilterChar(char),
    FilterBackspace,
    FilterDone,
    Yes,
    No,
    Refresh,
    /// Failures: retry the selected dead delivery.
    Retry,
    /// Queues/Failures: replay all dead deliveries of the selected subscription.
    ReplayDead,
    /// Queues: pause or resume the selected subscription.
    TogglePause,
    /// Agents: enable or disable.
    ToggleAgent,
    RunAgent,
    ClearMemory,
    /// Events: clear the tail.
    ClearEvents,
    /// Scroll the detail overlay.
    ScrollDetail(i32),
}

pub struct App {
    pub screen: Screen,
    pub connection: Connection,
    pub base_url: String,
    pub summary: Option<Summary>,
    pub failures: Vec<Failure>,
    pub agents: Vec<Agent>,
    pub events: VecDeque<StreamItem>,
    pub selected: [usize; 6],
    pub filter: String,
    pub filtering: bool,
    pub overlay: Overlay,
    pub detail_scroll: u16,
    /// Last action's outcome: (text, ok).
    pub message: Option<(String, bool)>,
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
            failures: Vec::new(),
            agents: Vec::new(),
            events: VecDeque::new(),
            selected: [0; 6],
            filter: String::new(),
            filtering: false,
            overlay: Overlay::None,
            detail_scroll: 0,
            message: None,
            now: Utc::now(),
            color,
            refresh,
            quit: false,
            page: 10,
        }
    }

    pub fn apply_update(&mut self, u: Update) {
        match u {
            Update::Connection(c) => self.connection = c,
            Update::Summary(s) => self.summary = Some(s),
            Update::Failures(f) => self.failures = f,
            Update::Agents(a) => self.agents = a,
            Update::DeliveryDetail(d) => {
                if matches!(&self.overlay, Overlay::Delivery(id, _) if *id == d.id) {
                    self.overlay = Overlay::Delivery(d.id, Some(Box::new(d)));
                }
            }
            Update::AgentDetail { agent, logs } => {
                if matches!(&self.overlay, Overlay::Agent(id, _) if *id == agent.id) {
                    self.overlay = Overlay::Agent(agent.id, Some(Box::new((agent, logs))));
                }
            }
            Update::Stream(item) => {
                if self.events.len() >= EVENTS_KEPT {
                    self.events.pop_front();
                }
                self.events.push_back(item);
            }
            Update::Done(m, ok) => self.message = Some((m, ok)),
        }
    }

    fn matches(&self, texts: &[&str]) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let f = self.filter.to_lowercase();
        texts.iter().any(|t| t.to_lowercase().contains(&f))
    }

    /// Subscriptions, worst first, filtered.
    pub fn queues(&self) -> Vec<&Queue> {
        let mut q: Vec<&Queue> = self
            .summary
            .iter()
            .flat_map(|s| s.subscriptions.iter())
            .filter(|q| self.matches(&[&q.name, &q.url]))
            .collect();
        q.sort_by(|a, b| b.badness().cmp(&a.badness()).then(a.id.cmp(&b.id)));
        q
    }

    pub fn visible_failures(&self) -> Vec<&Failure> {
        self.failures
            .iter()
            .filter(|f| {
                self.matches(&[
                    &f.subscription,
                    &f.event_type,
                    &f.delivery.status,
                    f.delivery.last_error.as_deref().unwrap_or(""),
                ])
            })
            .collect()
    }

    pub fn visible_agents(&self) -> Vec<&Agent> {
        self.agents
            .iter()
            .filter(|a| self.matches(&[&a.name, &a.agent_type]))
            .collect()
    }

    /// Inbound faces: webhook agents (incoming webhooks join this list when the hub
    /// serves them).
    pub fn endpoints(&self) -> Vec<&Agent> {
        self.agents
            .iter()
            .filter(|a| a.web_request_url.is_some() || a.agent_type == "webhook")
            .filter(|a| self.matches(&[&a.name, &a.agent_type]))
            .collect()
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

    /// The live tail, newest last, filtered by type or agent name.
    pub fn visible_events(&self) -> Vec<&StreamItem> {
        self.events
            .iter()
            .filter(|e| match e {
                StreamItem::Event {
                    event_type,
                    agent_id,
                    ..
                } => self.matches(&[event_type, &self.agent_name(*agent_id)]),
                StreamItem::Delivery {
                    event_type, status, ..
                } => self.matches(&[event_type, status, "delivery"]),
                StreamItem::Lagged { .. } => true,
            })
            .collect()
    }

    fn rows(&self) -> usize {
        match self.screen {
            Screen::Overview => 0,
            Screen::Queues => self.queues().len(),
            Screen::Failures => self.visible_failures().len(),
            Screen::Agents => self.visible_agents().len(),
            Screen::Endpoints => self.endpoints().len(),
            Screen::Events => self.visible_events().len(),
        }
    }

    /// The selected row on the current screen, clamped to what is there.
    pub fn selection(&self) -> usize {
        let n = self.rows();
        self.selected[self.screen.index()].min(n.saturating_sub(1))
    }

    fn select(&mut self, f: impl FnOnce(usize, usize) -> usize) {
        let n = self.rows();
        let cur = self.selection();
        self.selected[self.screen.index()] = if n == 0 { 0 } else { f(cur, n).min(n - 1) };
    }

    fn confirm(&mut self, question: String, command: Command) {
        self.overlay = Overlay::Confirm(Confirm { question, command });
    }

    /// Applies one action; answers the command to send to the worker, if any.
    pub fn apply(&mut self, a: Action) -> Option<Command> {
        // Overlays take the keys first.
        match (&self.overlay, a) {
            (Overlay::Confirm(c), Action::Yes | Action::Open) => {
                let cmd = c.command.clone();
                self.overlay = Overlay::None;
                return Some(cmd);
            }
            (Overlay::Confirm(_), Action::No | Action::Back | Action::Quit) => {
                self.overlay = Overlay::None;
                self.message = Some(("cancelled".into(), true));
                return None;
            }
            (Overlay::Confirm(_), _) => return None,
            (Overlay::Help, _) => {
                if matches!(a, Action::Quit | Action::Back | Action::Help | Action::Open) {
                    self.overlay = Overlay::None;
                }
                return None;
            }
            (Overlay::Delivery(..) | Overlay::Agent(..), Action::Quit | Action::Back) => {
                self.overlay = Overlay::None;
                return None;
            }
            (Overlay::Delivery(..) | Overlay::Agent(..), Action::Up | Action::ScrollDetail(-1)) => {
                self.detail_scroll = self.detail_scroll.saturating_sub(1);
                return None;
            }
            (
                Overlay::Delivery(..) | Overlay::Agent(..),
                Action::Down | Action::ScrollDetail(1),
            ) => {
                self.detail_scroll = self.detail_scroll.saturating_add(1);
                return None;
            }
            (Overlay::Delivery(..) | Overlay::Agent(..), Action::PageUp) => {
                self.detail_scroll = self.detail_scroll.saturating_sub(self.page as u16);
                return None;
            }
            (Overlay::Delivery(..) | Overlay::Agent(..), Action::PageDown) => {
                self.detail_scroll = self.detail_scroll.saturating_add(self.page as u16);
                return None;
            }
            (Overlay::Delivery(..) | Overlay::Agent(..), _) => {}
            (Overlay::None, _) => {}
        }
        if self.filtering {
            match a {
                Action::FilterChar(c) => self.filter.push(c),
                Action::FilterBackspace => {
                    self.filter.pop();
                }
                Action::FilterDone => self.filtering = false,
                Action::Back => {
                    self.filtering = false;
                    self.filter.clear();
                }
                _ => {}
            }
            self.select(|_, _| 0);
            return None;
        }
        let selected = self.selection();
        match a {
            Action::Quit => self.quit = true,
            Action::Back => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                } else if self.screen != Screen::Overview {
                    self.screen = Screen::Overview;
                } else {
                    self.quit = true;
                }
            }
            Action::Goto(s) => self.screen = s,
            Action::NextScreen => self.screen = Screen::ALL[(self.screen.index() + 1) % 6],
            Action::PrevScreen => self.screen = Screen::ALL[(self.screen.index() + 5) % 6],
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
            Action::Help => self.overlay = Overlay::Help,
            Action::StartFilter => {
                if self.screen != Screen::Overview {
                    self.filtering = true;
                }
            }
            Action::Refresh => return Some(Command::Refresh),
            Action::Open => match self.screen {
                Screen::Failures => {
                    let id = self
                        .visible_failures()
                        .get(selected)
                        .map(|f| f.delivery.id)?;
                    self.detail_scroll = 0;
                    self.overlay = Overlay::Delivery(id, None);
                    return Some(Command::DeliveryDetail(id));
                }
                Screen::Agents | Screen::Endpoints => {
                    let list = if self.screen == Screen::Agents {
                        self.visible_agents()
                    } else {
                        self.endpoints()
                    };
                    let id = list.get(selected).map(|a| a.id)?;
                    self.detail_scroll = 0;
                    self.overlay = Overlay::Agent(id, None);
                    return Some(Command::AgentDetail(id));
                }
                _ => {}
            },
            Action::Retry => {
                let f = self
                    .visible_failures()
                    .get(selected)
                    .map(|f| f.delivery.clone())?;
                if f.status != "dead" {
                    self.message = Some((
                        format!(
                            "delivery {} is {}: the hub retries it by itself",
                            f.id, f.status
                        ),
                        false,
                    ));
                    return None;
                }
                return Some(Command::RetryDelivery(f.id));
            }
            Action::ReplayDead => {
                let (id, name, dead) = match self.screen {
                    Screen::Queues => self
                        .queues()
                        .get(selected)
                        .map(|q| (q.id, q.name.clone(), q.dead))?,
                    Screen::Failures => {
                        let f = self
                            .visible_failures()
                            .get(selected)
                            .map(|f| (f.delivery.webhook_id, f.subscription.clone()))?;
                        let dead = self
                            .summary
                            .as_ref()
                            .and_then(|s| s.subscriptions.iter().find(|q| q.id == f.0))
                            .map_or(0, |q| q.dead);
                        (f.0, f.1, dead)
                    }
                    _ => return None,
                };
                self.confirm(
                    format!("Replay all {dead} dead deliveries of \"{name}\"?"),
                    Command::ReplayDead { webhook_id: id },
                );
            }
            Action::TogglePause => {
                if self.screen != Screen::Queues {
                    return None;
                }
                let (id, name, paused) = self
                    .queues()
                    .get(selected)
                    .map(|q| (q.id, q.name.clone(), q.paused))?;
                if paused {
                    return Some(Command::SetPaused {
                        webhook_id: id,
                        paused: false,
                    });
                }
                self.confirm(
                    format!("Pause \"{name}\"? Nothing is sent until it is resumed."),
                    Command::SetPaused {
                        webhook_id: id,
                        paused: true,
                    },
                );
            }
            Action::ToggleAgent | Action::RunAgent | Action::ClearMemory => {
                let list = match self.screen {
                    Screen::Agents => self.visible_agents(),
                    Screen::Endpoints => self.endpoints(),
                    _ => return None,
                };
                let (id, name, disabled) = list
                    .get(selected)
                    .map(|a| (a.id, a.name.clone(), a.disabled))?;
                match a {
                    Action::ToggleAgent if disabled => {
                        return Some(Command::SetAgentDisabled {
                            agent_id: id,
                            disabled: false,
                        });
                    }
                    Action::ToggleAgent => self.confirm(
                        format!("Disable agent \"{name}\"? It stops receiving and emitting."),
                        Command::SetAgentDisabled {
                            agent_id: id,
                            disabled: true,
                        },
                    ),
                    Action::RunAgent => return Some(Command::RunAgent(id)),
                    _ => self.confirm(
                        format!("Clear the memory of agent \"{name}\"? This cannot be undone."),
                        Command::ClearAgentMemory(id),
                    ),
                }
            }
            Action::ClearEvents => {
                if self.screen == Screen::Events {
                    self.events.clear();
                }
            }
            Action::Yes
            | Action::No
            | Action::FilterChar(_)
            | Action::FilterBackspace
            | Action::FilterDone
            | Action::ScrollDetail(_) => {}
        }
        None
    }
}
