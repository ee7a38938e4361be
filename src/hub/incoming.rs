//! The Hub's part in incoming webhooks: it starts an endpoint per row and
//! keeps the registry's token map (current token, plus the previous one during its
//! rotation grace period) in step with the table, so `/webhook/{token}` needs no
//! database read.

use std::sync::Arc;

use actix::prelude::*;

use super::Hub;
use super::registry::TokenEntry;
use crate::endpoints::actor::incoming_core;
use crate::endpoints::incoming::AgentExists;
use crate::endpoints::{Endpoint, EndpointActor, StopEndpoint, form};
use crate::secrets::stored_token_digest;
use crate::store::incoming_webhooks::IncomingRow;

impl Hub {
    pub(super) fn spawn_incoming(&self, row: IncomingRow) {
        if self.safe_mode {
            return;
        }
        let registry = self.registry.clone();
        let agent_exists: AgentExists = Arc::new(move |id| registry.agent(id).is_some());
        let endpoint = match self.registry.incoming(row.id) {
            Some(endpoint) => {
                let keys = self.store.keys();
                let configured = form::incoming(&row, keys, agent_exists, &self.inbound);
                endpoint.core.configure(configured);
                endpoint
            }
            None => {
                let arbiter = self.arbiter_for(row.id.0);
                let (store, settings) = (self.store.clone(), self.inbound.clone());
                let core = Arc::new(incoming_core(&row, store, agent_exists, settings));
                let actor_core = core.clone();
                let addr =
                    Supervisor::start_in_arbiter(&arbiter, move |_| EndpointActor::new(actor_core));
                Endpoint { core, addr }
            }
        };
        // Keyed by digest: `/webhook/{token}` looks the digest of what it was given up.
        let mut tokens = vec![(
            stored_token_digest(&row.token),
            TokenEntry {
                webhook_id: row.id,
                agent_id: row.agent_id,
                expires_at: None,
                endpoint: endpoint.clone(),
            },
        )];
        if let (Some(prev), Some(until)) = (row.previous_token, row.previous_expires_at)
            && until > crate::store::now()
        {
            tokens.push((
                stored_token_digest(&prev),
                TokenEntry {
                    webhook_id: row.id,
                    agent_id: row.agent_id,
                    expires_at: Some(until),
                    endpoint,
                },
            ));
        }
        self.registry.set_tokens(row.id, tokens);
    }
}

/// An incoming webhook was created, changed or rotated.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingSaved(pub IncomingRow);

impl Handler<IncomingSaved> for Hub {
    type Result = ();

    fn handle(&mut self, msg: IncomingSaved, _: &mut Context<Self>) {
        self.spawn_incoming(msg.0);
    }
}

/// An incoming webhook was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingRemoved(pub crate::ids::IncomingWebhookId);

impl Handler<IncomingRemoved> for Hub {
    type Result = ();

    fn handle(&mut self, msg: IncomingRemoved, _: &mut Context<Self>) {
        if let Some(addr) = self.registry.remove_tokens(msg.0) {
            addr.do_send(StopEndpoint);
        }
    }
}

impl Hub {
    /// The agent `agent_id` was deleted: its incoming webhooks went with it (the rows
    /// cascade), so stop their endpoints.
    pub(super) fn agent_gone(&self, agent_id: crate::ids::AgentId) {
        for addr in self.registry.remove_tokens_for_agent(agent_id) {
            addr.do_send(StopEndpoint);
        }
    }
}
