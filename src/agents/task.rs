//! Tasks: asynchronous work a behaviour asks for that is not an HTTP fetch (an IMAP
//! session). The AgentActor runs each on its arbiter as a future — network waits do not
//! hold the mailbox — and hands the result back to `Behavior::task_done`, whose outcome
//! (events, logs, memory) is committed like a check's.

use futures_util::future::LocalBoxFuture;

/// What a task produced; the behaviour that asked for it knows its type.
pub type TaskOutput = Box<dyn std::any::Any + Send>;

/// What the actor gives a task when it starts it.
#[derive(Debug, Clone)]
pub struct TaskEnv {
    /// `delivery.allow_private_targets`: whether the task may reach internal addresses.
    pub allow_private_targets: bool,
    /// `[jabber] extra_ca_files`: authorities a jabber session trusts besides the public ones.
    pub jabber_roots: std::sync::Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
}

/// One piece of asynchronous work.
pub struct Task {
    run: Box<dyn FnOnce(TaskEnv) -> LocalBoxFuture<'static, TaskOutput> + Send>,
}

impl Task {
    pub fn new(
        run: impl FnOnce(TaskEnv) -> LocalBoxFuture<'static, TaskOutput> + Send + 'static,
    ) -> Self {
        Task { run: Box::new(run) }
    }

    /// Starts the work (the actor awaits the future).
    pub fn start(self, env: TaskEnv) -> LocalBoxFuture<'static, TaskOutput> {
        (self.run)(env)
    }
}
