//! Graceful shutdown: the signals that start it, and the steps after the HTTP server
//! stopped (settle deliveries within a deadline, then close the writer).
//!
//! The order matters for "nothing acknowledged is lost": HTTP stops first, so no new
//! request is accepted while the in-flight ones still get their commit and their 2xx;
//! then subscriptions stop starting attempts and the ones in flight record their
//! outcome; then the writer commits what is queued and closes the database. A delivery
//! still unsettled at the deadline was never marked done, so it stays due in the
//! database and is sent again (same message id) after the restart.

use std::time::Duration;

use actix_rt::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT, listened to from the moment this is created.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers. Must run inside the actix (tokio) runtime.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT and names it.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = self.term.recv() => "SIGTERM",
            Some(()) = self.int.recv() => "SIGINT",
            else => std::future::pending().await,
        }
    }
}

/// Waits, at most `deadline`, for every one of `waits` (one per thing that must settle,
/// such as a subscription finishing its attempts in flight). Returns how many had not
/// finished by then. The waits are built by their owner (`Registry::drain_deliveries`),
/// so this module stays below the subsystems it shuts down.
pub async fn settle_within<F>(waits: Vec<F>, deadline: Duration) -> usize
where
    F: std::future::Future<Output = ()>,
{
    let total = waits.len();
    let settled = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let counted = waits.into_iter().map(|w| {
        let settled = settled.clone();
        async move {
            w.await;
            settled.set(settled.get() + 1);
        }
    });
    let _ = actix_rt::time::timeout(deadline, futures_util::future::join_all(counted)).await;
    total.saturating_sub(settled.get())
}
