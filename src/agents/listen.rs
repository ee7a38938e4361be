//! Listeners: long-lived work a behaviour runs for as long as its agent is enabled (a
//! jabber agent in a chat room: Huginn's `LongRunnable` workers). The agent's actor
//! starts one when the agent starts or is enabled, and stops it (drops its future)
//! when the agent is disabled, deleted or its options change; a listener reports what
//! it hears to the actor, which commits each report like a check's outcome.
//!
//! A listener holds only a weak address of its actor: it never keeps a stopped agent
//! alive, and it ends when the actor is gone.

use actix::WeakRecipient;
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::task::TaskEnv;

/// What a listener reports.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum Heard {
    /// An event to emit (its payload).
    Event(Value),
    /// An info line for the agent's log.
    Log(String),
    /// An error line for the agent's log (it makes the agent not working).
    Error(String),
}

/// Where a listener sends its reports.
pub type Reports = WeakRecipient<Heard>;

/// One listener: a future that runs until it is dropped (or its actor is gone).
pub struct Listener {
    run: Box<dyn FnOnce(TaskEnv, Reports) -> LocalBoxFuture<'static, ()> + Send>,
}

impl Listener {
    pub fn new(
        run: impl FnOnce(TaskEnv, Reports) -> LocalBoxFuture<'static, ()> + Send + 'static,
    ) -> Self {
        Listener { run: Box::new(run) }
    }

    /// Starts the work (the actor runs the future on its arbiter).
    pub fn start(self, env: TaskEnv, reports: Reports) -> LocalBoxFuture<'static, ()> {
        (self.run)(env, reports)
    }
}

/// Sends `heard` to the actor, waiting while its mailbox is full. False: the actor is
/// gone, and the listener should end.
pub async fn report(reports: &Reports, heard: Heard) -> bool {
    match reports.upgrade() {
        Some(actor) => actor.send(heard).await.is_ok(),
        None => false,
    }
}
