//! `jabber` — Huginn's JabberAgent: sends every event it receives as an XMPP chat
//! message from `jabber_sender` (logging in with `jabber_password`) to
//! `jabber_receiver`, through `jabber_server`:`jabber_port` (default 5222). `message`
//! is Liquid rendered with the event, as are the other options, so the password (and
//! the rest) may come from `{% credential %}`.
//!
//! Messages wait in a bounded queue and go out in order over one session at a time
//! ([`session`], an async task on the agent's arbiter); the messages of a batch that
//! share an account share a connection. A session that fails is an error log naming
//! the events whose messages were not sent, so the agent's `working?` turns false.
//!
//! With `connect_to_receiver` true, the agent also listens while it is enabled: it
//! joins `jabber_receiver` as a chat room and emits an event per message it hears
//! ([`listen`], the agent's listener; Huginn's `LongRunnable` worker).

pub mod error;
pub mod listen;
pub mod session;

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;

use super::json_parse::{present, text_of};
use super::listen::Listener;
use super::task::{Task, TaskOutput};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::store::events::EventRow;
use crate::template::liquid::has_markup;
use crate::template::{TemplateTree, Templates};
use session::{Account, Delivered, Env, Outgoing};
use tokio_xmpp::jid::{BareJid, Jid};

/// Huginn's port when `jabber_port` is blank.
pub const DEFAULT_PORT: u16 = 5222;
/// Messages waiting for a session; past it a message is dropped with an error log.
pub const MAX_QUEUED: usize = 500;
/// Messages one session sends at most.
pub const MAX_PER_SESSION: usize = 100;

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Jabber::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Jabber::new(options)?))
}

pub struct Jabber {
    templates: Templates,
    options: TemplateTree,
    queue: VecDeque<(Account, Outgoing)>,
    /// The session under way: its account and messages, in the order it sends them.
    in_flight: Option<(Account, Vec<Outgoing>)>,
}

/// What one rendered event asks for.
#[derive(Debug)]
struct Rendered {
    account: Account,
    receiver: Jid,
    body: String,
}

fn port_of(v: Option<&Value>) -> Result<u16, OptionError> {
    let text = text_of(v);
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| OptionError::new("jabber_port", "must be a port number (1 to 65535)"))
}

fn sender_of(text: &str) -> Result<BareJid, OptionError> {
    let jid = BareJid::new(text.trim()).map_err(|e| {
        OptionError::new(
            "jabber_sender",
            format!("must be a Jabber ID such as user@example.com ({e})"),
        )
    })?;
    if jid.node().is_none() {
        return Err(OptionError::new(
            "jabber_sender",
            "must name a user (user@example.com), not only a server",
        ));
    }
    Ok(jid)
}

fn receiver_of(text: &str) -> Result<Jid, OptionError> {
    Jid::new(text.trim()).map_err(|e| {
        OptionError::new(
            "jabber_receiver",
            format!("must be a Jabber ID such as user@example.com ({e})"),
        )
    })
}

/// Reads rendered options (or options without markup, at validation).
fn read(options: &Value) -> Result<Rendered, OptionError> {
    Ok(Rendered {
        account: Account {
            server: text_of(options.get("jabber_server")).trim().to_string(),
            port: port_of(options.get("jabber_port"))?,
            sender: sender_of(&text_of(options.get("jabber_sender")))?,
            password: text_of(options.get("jabber_password")),
        },
        receiver: receiver_of(&text_of(options.get("jabber_receiver")))?,
        body: text_of(options.get("message")),
    })
}

impl Jabber {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        // Huginn's credentials_present?, on the options as written.
        for key in ["jabber_server", "jabber_sender", "jabber_receiver"] {
            if !present(options.get(key)) {
                return Err(OptionError::new(
                    key,
                    "is required (server and username is required)",
                ));
            }
        }
        // What can be checked before rendering is checked now.
        let literal = |key: &str| {
            options
                .get(key)
                .is_some_and(|v| !v.as_str().is_some_and(has_markup))
        };
        if literal("jabber_port") {
            port_of(options.get("jabber_port"))?;
        }
        if literal("jabber_sender") {
            sender_of(&text_of(options.get("jabber_sender")))?;
        }
        if literal("jabber_receiver") {
            receiver_of(&text_of(options.get("jabber_receiver")))?;
        }
        if literal("connect_to_receiver") && present(options.get("connect_to_receiver")) {
            boolify(options.get("connect_to_receiver")).ok_or_else(|| {
                OptionError::new("connect_to_receiver", "must be a boolean value or blank")
            })?;
        }
        let mut templates = Templates::liquid();
        let tree = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(Jabber {
            templates,
            options: tree,
            queue: VecDeque::new(),
            in_flight: None,
        })
    }

    /// Starts a session with the next messages that share the first one's account.
    fn start(&mut self, ctx: &mut AgentCtx<'_>) {
        let Some(account) = self.queue.front().map(|(a, _)| a.clone()) else {
            return;
        };
        let mut batch = Vec::new();
        while batch.len() < MAX_PER_SESSION
            && self.queue.front().is_some_and(|(a, _)| *a == account)
        {
            if let Some((_, m)) = self.queue.pop_front() {
                batch.push(m);
            }
        }
        self.in_flight = Some((account.clone(), batch.clone()));
        ctx.spawn_task(Task::new(move |env| {
            Box::pin(async move {
                let env = Env {
                    allow_private: env.allow_private_targets,
                    extra_roots: Arc::clone(&env.jabber_roots),
                };
                Box::new(session::deliver(account, batch, env).await) as TaskOutput
            })
        }));
    }
}

impl Behavior for Jabber {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        let rendered = match self.templates.render_tree(&self.options, &rctx) {
            Ok(v) => v,
            Err(e) => return ctx.error(format!("Cannot render the options: {}", e.0)),
        };
        let r = match read(&rendered) {
            Ok(r) => r,
            Err(e) => return ctx.error(format!("Cannot send the IM for event {}: {e}", event.id)),
        };
        if self.queue.len() >= MAX_QUEUED {
            return ctx.error(format!(
                "The IM for event {} was dropped: {MAX_QUEUED} messages are already waiting \
                 for the Jabber server",
                event.id
            ));
        }
        ctx.log(format!(
            "Sending IM to {} with event {}",
            r.receiver, event.id
        ));
        self.queue.push_back((
            r.account,
            Outgoing {
                event_id: event.id.0,
                receiver: r.receiver,
                body: r.body,
            },
        ));
        if self.in_flight.is_none() {
            self.start(ctx);
        }
    }

    /// Huginn's `start_worker?`: `connect_to_receiver` (rendered) is true. The room is
    /// `jabber_receiver`; the nickname its resource (`room@server/nick`), else the
    /// sender's user name.
    fn listener(&self, ctx: &mut AgentCtx<'_>) -> Option<Listener> {
        let rendered = match self.templates.render_tree(&self.options, &ctx.render_ctx()) {
            Ok(v) => v,
            Err(e) => {
                ctx.error(format!("Cannot listen: cannot render the options: {}", e.0));
                return None;
            }
        };
        if boolify(rendered.get("connect_to_receiver")) != Some(true) {
            return None;
        }
        let r = match read(&rendered) {
            Ok(r) => r,
            Err(e) => {
                ctx.error(format!("Cannot listen: {e}"));
                return None;
            }
        };
        let nick = match r.receiver.resource() {
            Some(n) => n.as_str().to_string(),
            None => r
                .account
                .sender
                .node()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
        };
        let room = listen::Room {
            room: r.receiver.to_bare(),
            account: r.account,
            nick,
        };
        Some(Listener::new(move |env, reports| {
            Box::pin(async move {
                let env = Env {
                    allow_private: env.allow_private_targets,
                    extra_roots: Arc::clone(&env.jabber_roots),
                };
                listen::run(room, env, reports).await;
            })
        }))
    }

    fn task_done(&mut self, ctx: &mut AgentCtx<'_>, output: TaskOutput) {
        let batch = self.in_flight.take().map(|(_, b)| b).unwrap_or_default();
        if let Ok(done) = output.downcast::<Delivered>() {
            let Delivered { sent, error } = *done;
            if sent > 0 {
                ctx.log(format!(
                    "Sent {sent} IM{}",
                    if sent == 1 { "" } else { "s" }
                ));
            }
            let unsent: Vec<String> = batch
                .iter()
                .skip(sent)
                .map(|m| m.event_id.to_string())
                .collect();
            if let Some(e) = error.filter(|_| !unsent.is_empty()) {
                ctx.error(format!(
                    "The Jabber session failed: {e}. Not sent: the IM{} for event{} {}",
                    if unsent.len() == 1 { "" } else { "s" },
                    if unsent.len() == 1 { "" } else { "s" },
                    unsent.join(", ")
                ));
            }
        }
        if !self.queue.is_empty() {
            self.start(ctx);
        }
    }
}

#[cfg(test)]
mod tests;
