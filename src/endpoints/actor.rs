//! The lifecycle of an inbound endpoint (a webhook agent's Huginn URL or an incoming
//! webhook): its [`EndpointActor`] is supervised, takes reconfiguration, and flushes
//! the request log and the last-request time on timers and when it stops. Requests do
//! not pass through it: they run the pipeline on the HTTP worker against the shared
//! [`EndpointCore`] (see [`super::pipeline`]).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::form;
use super::guard::InboundSettings;
use super::incoming::AgentExists;
use super::pipeline::{EndpointCore, Owner};
use crate::store::Store;
use crate::store::agents::AgentRow;
use crate::store::incoming_webhooks::IncomingRow;

/// How often the time of the last web request is written back (not once per request).
const FLUSH_LAST_REQUEST_EVERY: Duration = Duration::from_secs(5);
/// How often the waiting log lines are sent to the Writer.
const FLUSH_LOG_EVERY: Duration = Duration::from_secs(1);

pub fn endpoint_key(agent_id: crate::ids::AgentId) -> String {
    crate::store::inbound_log::agent_endpoint(agent_id)
}

/// How the rest of the hub holds an endpoint: the core for requests, the actor for
/// its lifecycle.
#[derive(Clone)]
pub struct Endpoint {
    pub core: Arc<EndpointCore>,
    pub addr: Addr<EndpointActor>,
}

/// The core of a webhook agent's Huginn URL.
pub fn web_request_core(
    row: &AgentRow,
    store: Store,
    log_length: i64,
    inbound: Arc<InboundSettings>,
) -> EndpointCore {
    let owner = Owner {
        user_id: row.user_id,
        endpoint_key: endpoint_key(row.id),
        records_last_request: Some(row.id),
        log_length,
    };
    EndpointCore::new(owner, form::web_request(row, &inbound), store, inbound)
}

/// The core of an incoming webhook.
pub fn incoming_core(
    row: &IncomingRow,
    store: Store,
    exists: AgentExists,
    inbound: Arc<InboundSettings>,
) -> EndpointCore {
    let owner = Owner {
        user_id: row.user_id,
        endpoint_key: super::incoming::endpoint_key(row.id),
        records_last_request: None,
        log_length: 0,
    };
    let configured = form::incoming(row, store.keys(), exists, &inbound);
    EndpointCore::new(owner, configured, store, inbound)
}

/// Supervises an endpoint: takes reconfiguration and flushes its log and last-request
/// time on timers and when it stops.
pub struct EndpointActor {
    core: Arc<EndpointCore>,
}

impl EndpointActor {
    pub fn new(core: Arc<EndpointCore>) -> Self {
        EndpointActor { core }
    }
}

impl Actor for EndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FLUSH_LAST_REQUEST_EVERY, |act, _| {
            act.core.flush_last_request()
        });
        ctx.run_interval(FLUSH_LOG_EVERY, |act, _| act.core.flush_log());
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.core.flush_last_request();
        self.core.flush_log_for_read();
        Running::Stop
    }
}

impl Supervised for EndpointActor {}

/// The agent or incoming webhook was deleted: flush the log and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopEndpoint;

impl Handler<StopEndpoint> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: StopEndpoint, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The agent behind a Huginn URL changed; take its new options.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub AgentRow);

impl Handler<Reconfigure> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        let configured = form::web_request(&msg.0, self.core.inbound());
        self.core.configure(configured);
    }
}

/// A reader of the log is waiting: send the waiting lines to the Writer now, so the
/// read shows every request answered before it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushIncomingLog;

impl Handler<FlushIncomingLog> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: FlushIncomingLog, _: &mut Context<Self>) {
        self.core.flush_log_for_read();
    }
}
