//! Events committed by other nodes on the same PostgreSQL database (issue 19): the
//! listener thread (`store::listen`) reports who they concern, and the Router wakes
//! those of this node's agents, feeds and subscriptions the way it routes the node's
//! own commits, except that each reads the events from the database itself (the
//! Router holds no rows for them). The same listener carries the requests nodes send
//! each other (`forward`). On SQLite there is one node and this never runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::forward::Forward;
use super::router::Router;
use super::{Addrs, AgentEntry};
use crate::agents::actor::CatchUp;
use crate::delivery::actor::Wake;
use crate::feeds::FeedChanged;
use crate::ids::{AgentId, SubscriptionId};
use crate::store::listen::{self, NewEvents, OnNewEvents};

/// What another node committed (see [`NewEvents`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteEvents(pub NewEvents);

/// Wakes one agent for events of its sources: its feed re-renders on the next request
/// (the cache is invalidated here, across nodes, as the Router does for local events),
/// and an agent that propagates immediately reads what it has not handled yet.
fn wake(entry: &AgentEntry) {
    if let Some(feed) = &entry.feed {
        feed.do_send(FeedChanged);
    }
    // An agent another node owns has no actor here: its own node hears the same notice.
    if entry.receives_events
        && entry.propagate_immediately
        && !entry.disabled
        && let Some(addr) = &entry.addr
    {
        addr.do_send(CatchUp);
    }
}

impl Handler<RemoteEvents> for Router {
    type Result = ();

    fn handle(&mut self, msg: RemoteEvents, _: &mut Context<Self>) {
        match msg.0 {
            NewEvents::Everything => {
                self.registry.for_each_agent(|_, e| wake(e));
                for s in self.registry.subscriptions() {
                    s.addr.do_send(Wake);
                }
            }
            NewEvents::Some {
                sources,
                targets,
                subscriptions,
            } => {
                let mut receivers: BTreeSet<AgentId> = targets.into_iter().map(AgentId).collect();
                for source in sources {
                    if let Some(r) = self.graph.get(&AgentId(source)) {
                        receivers.extend(r);
                    }
                }
                for id in receivers {
                    if let Some(entry) = self.registry.agent(id) {
                        wake(&entry);
                    }
                }
                for id in subscriptions {
                    if let Some(s) = self.registry.subscription(SubscriptionId(id)) {
                        s.addr.do_send(Wake);
                    }
                }
            }
        }
    }
}

/// The Router as the listener's hub, and the requests between nodes (see `forward`),
/// carried out on the arbiter the listener was started from.
struct ToRouter {
    router: Addr<Router>,
    forward: Arc<Forward>,
    arbiter: ArbiterHandle,
}

impl OnNewEvents for ToRouter {
    fn new_events(&self, events: NewEvents) {
        self.router.do_send(RemoteEvents(events));
    }

    fn alive(&self) -> bool {
        self.router.connected()
    }

    fn requests_due(&self) {
        let forward = self.forward.clone();
        // Called on the listener's thread; the look runs on the arbiter.
        self.arbiter.spawn_fn(move || {
            actix::spawn(forward.look());
        });
    }

    fn answered(&self, id: i64) {
        self.forward.answered(id);
    }
}

/// Starts listening for other nodes' events on the database at `url`; `poll_every`
/// is the fallback for a notification that never came.
pub fn listen(url: &str, addrs: &Addrs, poll_every: Duration) -> std::io::Result<()> {
    listen::spawn(
        url.to_string(),
        addrs.store.writer().stats().pg_pid.clone(),
        poll_every,
        Box::new(ToRouter {
            router: addrs.router.clone(),
            forward: addrs.forward.clone(),
            arbiter: Arbiter::current(),
        }),
    )
}
