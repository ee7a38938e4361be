//! The running hub as the subsystems' services see it: each service takes a small
//! trait for "tell the hub", implemented here over the tree's addresses, so the
//! services never import the Hub.
//!
//! The agents service is told in two ways: from outside (the HTTP face), which waits
//! until the link graph is reloaded so the answer reflects it; and from inside the Hub's
//! own control handler ([`FromInside`]), which must not wait on the Hub it runs in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;

use super::{
    Addrs, AgentRemoved, AgentSaved, Hub, IncomingRemoved, IncomingSaved, LinksChanged, Registry,
    SubscriptionRemoved, SubscriptionSaved, UserAdded,
};
use crate::accounts::{AccountError, AccountsRunning};
use crate::agents::actor::AgentActor;
use crate::agents::service::actions::ActorAsk as AgentAsk;
use crate::agents::service::{AgentServiceError, Running as AgentsRunning};
use crate::delivery::SubscriptionActor;
use crate::delivery::subscription::actor_ask::ActorAsk as SubscriptionAsk;
use crate::delivery::subscription::{Running as SubscriptionsRunning, SubscriptionError};
use crate::endpoints::FlushIncomingLog;
use crate::endpoints::incoming_service::logs::FlushLogs;
use crate::endpoints::incoming_service::{IncomingError, IncomingRunning};
use crate::ids::{AgentId, EventId, SubscriptionId};
use crate::store::agents::AgentRow;
use crate::store::incoming_webhooks::IncomingRow;
use crate::store::subscriptions::SubscriptionRow;

impl SubscriptionsRunning for Addrs {
    async fn saved(&self, row: SubscriptionRow) -> Result<(), SubscriptionError> {
        Ok(self.hub.send(SubscriptionSaved(row)).await?)
    }

    async fn removed(&self, id: SubscriptionId) -> Result<(), SubscriptionError> {
        Ok(self.hub.send(SubscriptionRemoved(id)).await?)
    }

    fn actor(&self, id: SubscriptionId) -> Option<Addr<SubscriptionActor>> {
        self.registry.subscription(id).map(|e| e.addr)
    }

    async fn ask_owner<T: serde::de::DeserializeOwned>(
        &self,
        id: SubscriptionId,
        ask: SubscriptionAsk,
    ) -> Result<Option<T>, SubscriptionError> {
        // A test send waits for the target as long as the owner does.
        let timeout = match &ask {
            SubscriptionAsk::Test { .. } => self
                .subscriptions
                .get(id)
                .map_or(Duration::ZERO, |spec| spec.timeout),
            SubscriptionAsk::ResetCircuit => Duration::ZERO,
        };
        self.forward.ask_subscription(id, ask, timeout).await
    }
}

impl AccountsRunning for Addrs {
    async fn user_added(&self, id: i64) -> Result<(), AccountError> {
        Ok(self.hub.send(UserAdded(id)).await?)
    }
}

impl IncomingRunning for Addrs {
    async fn saved(&self, row: IncomingRow) -> Result<(), IncomingError> {
        Ok(self.hub.send(IncomingSaved(row)).await?)
    }

    async fn removed(&self, id: crate::ids::IncomingWebhookId) -> Result<(), IncomingError> {
        Ok(self.hub.send(IncomingRemoved(id)).await?)
    }

    fn receives_events(&self, agent_type: &str) -> bool {
        crate::agents::kind(agent_type).is_some_and(|k| k.can_receive_events)
    }
}

impl FlushLogs for Addrs {
    fn flush_agent_log(&self, agent_id: AgentId) {
        if let Some(core) = self.registry.web_target(agent_id).and_then(|t| t.core) {
            core.flush_log_for_read();
        }
    }

    async fn flush_incoming_log(&self, id: crate::ids::IncomingWebhookId) {
        if let Some(addr) = self.registry.incoming_endpoint(id) {
            // A stopped endpoint flushed its lines when it stopped.
            let _ = addr.send(FlushIncomingLog).await;
        }
    }
}

impl AgentsRunning for Addrs {
    fn agent_saved(&self, row: AgentRow) -> impl Future<Output = Result<(), AgentServiceError>> {
        let hub = self.hub.clone();
        async move { Ok(hub.send(AgentSaved(row)).await??) }
    }

    fn agent_removed(
        &self,
        id: AgentId,
        subscription_id: Option<SubscriptionId>,
    ) -> impl Future<Output = Result<(), AgentServiceError>> {
        let hub = self.hub.clone();
        async move {
            hub.send(AgentRemoved(id)).await??;
            if let Some(sub) = subscription_id {
                hub.send(SubscriptionRemoved(sub)).await?;
            }
            Ok(())
        }
    }

    fn links_changed(&self) -> impl Future<Output = Result<(), AgentServiceError>> {
        let hub = self.hub.clone();
        async move { Ok(hub.send(LinksChanged).await??) }
    }

    fn feeds_changed(&self, user_id: i64) {
        super::feeds_changed(&self.registry, Some(user_id));
    }

    fn actor(&self, id: AgentId) -> Option<Addr<AgentActor>> {
        self.registry.agent(id).and_then(|e| e.addr)
    }

    fn ask_owner(
        &self,
        id: AgentId,
        ask: AgentAsk,
    ) -> impl Future<Output = Result<Option<Vec<EventId>>, AgentServiceError>> {
        let forward = self.forward.clone();
        async move { forward.ask_agent(id, ask).await }
    }
}

/// The Hub telling itself: messages are queued, not awaited (awaiting would wait on the
/// handler that is running).
pub struct FromInside {
    pub hub: Addr<Hub>,
    pub registry: Arc<Registry>,
    /// A controller's target may run on another node.
    pub forward: Arc<super::forward::Forward>,
}

impl AgentsRunning for FromInside {
    fn agent_saved(&self, row: AgentRow) -> impl Future<Output = Result<(), AgentServiceError>> {
        self.hub.do_send(AgentSaved(row));
        std::future::ready(Ok(()))
    }

    fn agent_removed(
        &self,
        id: AgentId,
        subscription_id: Option<SubscriptionId>,
    ) -> impl Future<Output = Result<(), AgentServiceError>> {
        self.hub.do_send(AgentRemoved(id));
        if let Some(sub) = subscription_id {
            self.hub.do_send(SubscriptionRemoved(sub));
        }
        std::future::ready(Ok(()))
    }

    fn links_changed(&self) -> impl Future<Output = Result<(), AgentServiceError>> {
        self.hub.do_send(LinksChanged);
        std::future::ready(Ok(()))
    }

    fn feeds_changed(&self, user_id: i64) {
        super::feeds_changed(&self.registry, Some(user_id));
    }

    fn actor(&self, id: AgentId) -> Option<Addr<AgentActor>> {
        self.registry.agent(id).and_then(|e| e.addr)
    }

    fn ask_owner(
        &self,
        id: AgentId,
        ask: AgentAsk,
    ) -> impl Future<Output = Result<Option<Vec<EventId>>, AgentServiceError>> {
        // Waits on the other node, never on this Hub.
        let forward = self.forward.clone();
        async move { forward.ask_agent(id, ask).await }
    }
}
