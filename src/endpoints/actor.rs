//! `EndpointActor`: one per inbound endpoint (here: each `webhook` agent's Huginn URL).
//! It authenticates, parses and splits a request, hands the events to the Writer and
//! answers only once they are committed. The handler does not wait inside the actor:
//! it returns a future, so many requests to one endpoint share one group commit.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDateTime;

use super::{InboundRequest, Rejection, WebResponse, params};
use crate::agents::webhook::Webhook;
use crate::agents::{OptionError, emitted_event_type};
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents::{self as agents_table, AgentRow};
use crate::store::events::NewEvent;
use crate::store::{Store, StoreError};

/// How often the time of the last web request is written back (not once per request).
const FLUSH_EVERY: Duration = Duration::from_secs(5);

pub struct EndpointActor {
    agent_id: i64,
    user_id: i64,
    webhook: Result<Arc<Webhook>, OptionError>,
    event_type: String,
    keep_events_for: i64,
    store: Store,
    log_length: i64,
    last_request_at: Option<NaiveDateTime>,
    flushed: bool,
}

impl EndpointActor {
    pub fn new(row: &AgentRow, store: Store, log_length: i64) -> Self {
        let mut actor = EndpointActor {
            agent_id: row.id,
            user_id: row.user_id,
            webhook: Err(OptionError::new("options", "not loaded")),
            event_type: String::new(),
            keep_events_for: 0,
            store,
            log_length,
            last_request_at: None,
            flushed: true,
        };
        actor.configure(row);
        actor
    }

    fn configure(&mut self, row: &AgentRow) {
        let options = row
            .options_json()
            .map_err(|e| OptionError::new("options", e.to_string()));
        self.event_type = options
            .as_ref()
            .map(emitted_event_type)
            .unwrap_or_else(|_| "event.created".into());
        self.webhook = options.and_then(|o| Webhook::new(&o)).map(Arc::new);
        self.keep_events_for = row.keep_events_for;
        if let Err(e) = &self.webhook {
            tracing::error!(agent_id = row.id, error = %e, "webhook agent has invalid options; its URL answers 503 until they are fixed");
        }
    }

    fn flush_last_request(&mut self) {
        if self.flushed {
            return;
        }
        if let Some(at) = self.last_request_at {
            self.flushed = true;
            let id = self.agent_id;
            let write = self
                .store
                .writer()
                .write(move |c, _| agents_table::note_web_request(c, id, at));
            actix::spawn(async move {
                if let Err(e) = write.await {
                    tracing::warn!(agent_id = id, error = %e, "could not record the last web request time");
                }
            });
        }
    }
}

impl Actor for EndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FLUSH_EVERY, |act, _| act.flush_last_request());
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.flush_last_request();
        Running::Stop
    }
}

impl Supervised for EndpointActor {}

/// One request to the endpoint's URL; `secret` is the URL's last segment.
#[derive(Message)]
#[rtype(result = "WebResponse")]
pub struct HandleWebRequest {
    pub secret: String,
    pub request: InboundRequest,
}

/// The agent behind the endpoint changed; take its new options.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub AgentRow);

impl Handler<Reconfigure> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        self.configure(&msg.0);
    }
}

fn store_failure(e: &StoreError) -> Rejection {
    match e {
        StoreError::Overloaded(_) => WebResponse::text(
            503,
            "muninn is busy storing earlier requests; retry in a moment",
        )
        .with_header("Retry-After", "1"),
        other => {
            tracing::error!(error = %other, "storing events failed");
            WebResponse::text(
                503,
                "The event could not be stored right now (the database is unavailable); nothing was saved, retry later",
            )
            .with_header("Retry-After", "5")
        }
    }
}

impl Handler<HandleWebRequest> for EndpointActor {
    type Result = ResponseFuture<WebResponse>;

    fn handle(&mut self, msg: HandleWebRequest, _: &mut Context<Self>) -> Self::Result {
        self.last_request_at = Some(crate::store::now());
        self.flushed = false;
        let outcome = self.prepare(msg);
        Box::pin(async move {
            match outcome {
                Err(rejection) => rejection,
                Ok((write, response)) => match write.await {
                    Ok(()) => response,
                    Err(e) => store_failure(&e),
                },
            }
        })
    }
}

type PendingWrite =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

impl EndpointActor {
    /// Everything up to handing the events to the Writer; synchronous and CPU-only.
    fn prepare(&self, msg: HandleWebRequest) -> Result<(PendingWrite, WebResponse), Rejection> {
        let webhook = match &self.webhook {
            Ok(w) => w.clone(),
            Err(e) => {
                return Err(WebResponse::text(
                    503,
                    format!("This agent's options are invalid ({e}); fix them and retry"),
                ));
            }
        };
        webhook.authorize(&msg.secret, &msg.request.method)?;
        let params = params(&msg.request)?;
        let payloads = webhook.payloads(&params, &msg.request.headers)?;
        let (response, render_error) = webhook.response(&params, &msg.request.url);
        let new: Vec<NewEvent> = payloads
            .into_iter()
            .map(|payload| NewEvent {
                user_id: self.user_id,
                agent_id: Some(self.agent_id),
                event_type: self.event_type.clone(),
                payload,
                keep_for_seconds: self.keep_events_for,
            })
            .collect();
        let agent_id = self.agent_id;
        let log_length = self.log_length;
        let write = self
            .store
            .writer()
            .try_write(move |conn, out| {
                let rows = out.insert(conn, &new, 0)?;
                agents_table::note_emitted(conn, agent_id, rows.len() as i64)?;
                if let Some(message) = render_error {
                    agent_logs::append(
                        conn,
                        agent_id,
                        &[NewLog {
                            level: LEVEL_ERROR,
                            message,
                            inbound_event_id: None,
                        }],
                        log_length,
                    )?;
                }
                Ok(())
            })
            .map_err(|e| store_failure(&e))?;
        Ok((Box::pin(write), response))
    }
}
