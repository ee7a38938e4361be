//! Operator actions. Each acts on one object: the open detail's, else the selected
//! row's, found by key. An action whose object is not the one in focus (`r` with a
//! subscription selected, or on Overview) does nothing but say where it applies.
//! Every action that changes the hub asks first, naming the object by kind, id and
//! name; the command it will send carries that id.

use crate::app::{Action, App, Confirm, Detail, EditForm, Key};
use crate::ui::util::cut;
use crate::worker::Command;

/// Names in questions are cut so the dialog stays readable.
const NAME_MAX: usize = 48;

/// The time ranges a replay offers (←/→ in its dialog): by when the delivery was
/// created, in hours; `None` is all of them.
pub const REPLAY_WINDOWS: [Option<i64>; 4] = [None, Some(1), Some(6), Some(24)];

/// The command that loads (or reloads) the detail of `key`.
pub fn reload(key: Key) -> Command {
    match key {
        Key::Delivery(id) => Command::DeliveryDetail(id),
        Key::Agent(id) => Command::AgentDetail(id),
        Key::Sub(id) => Command::QueueDetail(id),
        Key::AgentEndpoint(_) | Key::Incoming(_) => Command::EndpointDetail(key),
        Key::Credentials => Command::Credentials,
        // The node view comes with every refresh.
        Key::Stream(_) | Key::Scenario(_) | Key::Nodes => Command::Refresh,
    }
}

/// Where an action applies, for when it is pressed elsewhere.
fn applies_to(a: Action) -> &'static str {
    match a {
        Action::Retry => "r retries a delivery: select one on 3 Failures",
        Action::ReplayDead
        | Action::TogglePause
        | Action::TestDelivery
        | Action::ResetCircuit
        | Action::EditSub
        | Action::DeleteSub => "this acts on a subscription: select one on 2 Queues",
        Action::ToggleAgent | Action::RunAgent | Action::ClearMemory => {
            "this acts on an agent: select one on 4 Agents"
        }
        _ => "",
    }
}

impl App {
    /// The object actions act on: the open detail's, else the selected row's.
    pub fn focus(&self) -> Option<Key> {
        match &self.detail {
            Some(d) => Some(d.key()),
            None => self.selected(),
        }
    }

    pub(super) fn act(&mut self, a: Action) -> Option<Command> {
        let hint = applies_to(a);
        if hint.is_empty() {
            return None;
        }
        let confirm = match (a, self.focus()) {
            (Action::Retry, Some(Key::Delivery(id))) => self.ask_retry(id),
            (Action::EditSub, Some(Key::Sub(id))) => return self.open_edit(id),
            (
                Action::ReplayDead
                | Action::TogglePause
                | Action::TestDelivery
                | Action::ResetCircuit
                | Action::DeleteSub,
                Some(Key::Sub(id)),
            ) => self.ask_sub(a, id),
            (
                Action::ToggleAgent | Action::RunAgent | Action::ClearMemory,
                Some(Key::Agent(id)),
            ) => Some(self.ask_agent(a, id)),
            _ => {
                self.say(hint, false);
                None
            }
        };
        if confirm.is_some() {
            // A hint left from an earlier key would read as if about this question.
            self.message = None;
        }
        self.confirm = confirm;
        None
    }

    fn ask_retry(&mut self, id: i64) -> Option<Confirm> {
        let from_detail = match &self.detail {
            Some(Detail::Delivery(d, Some(x))) if *d == id => Some(x.as_ref().clone()),
            _ => None,
        };
        let known = self.failures.iter().find(|f| f.delivery.id == id);
        let status = from_detail
            .as_ref()
            .map(|d| d.status.clone())
            .or_else(|| known.map(|f| f.delivery.status.clone()));
        if let Some(s) = status.as_deref()
            && s != "dead"
            && s != "delivered"
        {
            self.say(
                format!("delivery #{id} is {s}: the hub retries it by itself"),
                false,
            );
            return None;
        }
        let webhook = from_detail
            .as_ref()
            .map(|d| d.webhook_id)
            .or_else(|| known.map(|f| f.delivery.webhook_id));
        let about = match (webhook, known) {
            (_, Some(f)) => format!(
                " to \"{}\" ({})",
                cut(&self.sub_label(f.delivery.webhook_id), NAME_MAX),
                f.event_type
            ),
            (Some(w), None) => format!(" to \"{}\"", cut(&self.sub_label(w), NAME_MAX)),
            (None, None) => String::new(),
        };
        Some(Confirm {
            target: Key::Delivery(id),
            question: format!("Retry delivery #{id}{about}?"),
            command: Command::RetryDelivery(id),
            window: None,
        })
    }

    fn ask_sub(&mut self, a: Action, id: i64) -> Option<Confirm> {
        let q = self
            .summary
            .as_ref()
            .and_then(|s| s.subscriptions.iter().find(|q| q.id == id));
        let name = format!(
            "subscription #{id} \"{}\"",
            cut(&self.sub_label(id), NAME_MAX)
        );
        let (question, command) = match a {
            Action::ReplayDead => {
                if q.is_some_and(|q| q.dead == 0) {
                    self.say(format!("{name} has no dead deliveries"), false);
                    return None;
                }
                return Some(self.replay_confirm(id, 0));
            }
            Action::TogglePause if q.is_some_and(|q| q.paused) => (
                format!("Resume {name}? Its queue is sent again."),
                Command::SetPaused {
                    webhook_id: id,
                    paused: false,
                },
            ),
            Action::TogglePause => (
                format!("Pause {name}? Nothing is sent until it is resumed."),
                Command::SetPaused {
                    webhook_id: id,
                    paused: true,
                },
            ),
            Action::ResetCircuit => {
                if q.is_some_and(|q| !q.circuit_open()) {
                    self.say(format!("the circuit of {name} is closed"), false);
                    return None;
                }
                (
                    format!("Close the circuit of {name} now? Its queue is sent at once."),
                    Command::ResetCircuit { webhook_id: id },
                )
            }
            Action::DeleteSub => (
                format!(
                    "Delete {name}? Its queued and dead deliveries go with it. This cannot be undone."
                ),
                Command::DeleteSubscription { webhook_id: id },
            ),
            _ => (
                format!("Send a test delivery to {name}?"),
                Command::TestDelivery { webhook_id: id },
            ),
        };
        Some(Confirm {
            target: Key::Sub(id),
            question,
            command,
            window: None,
        })
    }

    /// The replay question for one of `REPLAY_WINDOWS`; its command carries the
    /// window's start.
    pub(super) fn replay_confirm(&self, id: i64, window: usize) -> Confirm {
        let window = window % REPLAY_WINDOWS.len();
        let name = format!(
            "subscription #{id} \"{}\"",
            cut(&self.sub_label(id), NAME_MAX)
        );
        let dead = self
            .summary
            .as_ref()
            .and_then(|s| s.subscriptions.iter().find(|q| q.id == id))
            .map_or(0, |q| q.dead);
        let (what, since) = match REPLAY_WINDOWS[window] {
            None => (format!("the {dead} dead deliveries"), None),
            Some(h) => (
                format!("the dead deliveries created in the last {h}h"),
                Some(
                    (self.now - chrono::Duration::hours(h))
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            ),
        };
        let ranges: Vec<String> = REPLAY_WINDOWS
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let l = w.map_or("all".to_string(), |h| format!("{h}h"));
                if i == window { format!("[{l}]") } else { l }
            })
            .collect();
        Confirm {
            target: Key::Sub(id),
            question: format!("Replay {what} of {name}? (←/→ range: {})", ranges.join(" ")),
            command: Command::ReplayDead {
                webhook_id: id,
                since,
            },
            window: Some(window),
        }
    }

    fn ask_agent(&mut self, a: Action, id: i64) -> Confirm {
        let agent = self.agents.iter().find(|x| x.id == id);
        let name = format!(
            "agent #{id} \"{}\"",
            cut(agent.map_or("", |x| x.name.as_str()), NAME_MAX)
        );
        let (question, command) = match a {
            Action::ToggleAgent if agent.is_some_and(|x| x.disabled) => (
                format!("Enable {name}?"),
                Command::SetAgentDisabled {
                    agent_id: id,
                    disabled: false,
                },
            ),
            Action::ToggleAgent => (
                format!("Disable {name}? It stops receiving and emitting."),
                Command::SetAgentDisabled {
                    agent_id: id,
                    disabled: true,
                },
            ),
            Action::RunAgent => (format!("Run {name} now?"), Command::RunAgent(id)),
            _ => (
                format!("Clear the memory of {name}? This cannot be undone."),
                Command::ClearAgentMemory(id),
            ),
        };
        Confirm {
            target: Key::Agent(id),
            question,
            command,
            window: None,
        }
    }

    /// `E`: the edit form of subscription `id`, filled at once from an open detail,
    /// else when the hub answers the command this returns.
    fn open_edit(&mut self, id: i64) -> Option<Command> {
        let mut form = EditForm::loading(id);
        if let Some(Detail::Queue(d, Some(q))) = &self.detail
            && *d == id
        {
            form.load(&q.sub);
        }
        let cmd = (!form.loaded).then_some(Command::QueueDetail(id));
        self.detail = Some(Detail::Edit(Box::new(form)));
        self.detail_scroll = 0;
        self.message = None;
        cmd
    }

    /// Keys while the edit form is open: text for its fields, ↑↓ between them,
    /// Enter asks to save, Esc leaves without saving.
    pub(super) fn edit_key(&mut self, a: Action) -> Option<Command> {
        let Some(Detail::Edit(form)) = self.detail.as_mut() else {
            return None;
        };
        let id = form.id;
        match a {
            Action::Back | Action::Quit => {
                // Back to the subscription, read again.
                self.detail = Some(Detail::Queue(id, None));
                self.say("edit cancelled: nothing was changed", true);
                return Some(Command::QueueDetail(id));
            }
            _ if !form.loaded => {}
            Action::Up => form.move_focus(false),
            Action::Down => form.move_focus(true),
            Action::PromptChar(c) => form.type_char(c),
            Action::PromptBackspace => form.backspace(),
            Action::PromptDone => match form.changes() {
                Err(why) => form.error = Some(why),
                Ok(None) => self.say("nothing changed", true),
                Ok(Some((body, said))) => {
                    let name = format!(
                        "subscription #{id} \"{}\"",
                        cut(&self.sub_label(id), NAME_MAX)
                    );
                    self.message = None;
                    self.confirm = Some(Confirm {
                        target: Key::Sub(id),
                        question: format!("Save {name}: {}?", said.join(", ")),
                        command: Command::UpdateSubscription {
                            webhook_id: id,
                            body,
                        },
                        window: None,
                    });
                }
            },
            _ => {}
        }
        None
    }

    /// What a yes changes in the console itself: a saved form gives way to the
    /// subscription's detail (read back after the save); a deleted subscription's
    /// detail closes.
    pub(super) fn after_yes(&mut self, command: &Command) {
        let shown = self.detail.as_ref().map(|d| d.key());
        match command {
            Command::UpdateSubscription { webhook_id, .. }
                if shown == Some(Key::Sub(*webhook_id)) =>
            {
                self.detail = Some(Detail::Queue(*webhook_id, None));
            }
            Command::DeleteSubscription { webhook_id } if shown == Some(Key::Sub(*webhook_id)) => {
                self.detail = None;
            }
            _ => {}
        }
    }
}
