//! The Hub's side of the agents service's [`Running`] trait: what the workflows tell the
//! running hub after a write. Two ways to tell it: from outside (the HTTP face), which
//! waits until the link graph is reloaded so the answer reflects it; and from inside
//! the Hub's own control handler, which must not wait on the Hub it runs in.

use std::future::Future;
use std::sync::Arc;

use actix::Addr;

use super::{Addrs, AgentRemoved, AgentSaved, Hub, LinksChanged, Registry, SubscriptionRemoved};
use crate::agents::actor::AgentActor;
use crate::agents::service::{AgentServiceError, Running};
use crate::store::agents::AgentRow;

impl Running for Addrs {
    fn agent_saved(&self, row: AgentRow) -> impl Future<Output = Result<(), AgentServiceError>> {
        let hub = self.hub.clone();
        async move { Ok(hub.send(AgentSaved(row)).await??) }
    }

    fn agent_removed(
        &self,
        id: i64,
        subscription_id: Option<i64>,
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

    fn actor(&self, id: i64) -> Option<Addr<AgentActor>> {
        self.registry.agent(id).map(|e| e.addr)
    }
}

/// The Hub telling itself: messages are queued, not awaited (awaiting would wait on the
/// handler that is running).
pub struct FromInside {
    pub hub: Addr<Hub>,
    pub registry: Arc<Registry>,
}

impl Running for FromInside {
    fn agent_saved(&self, row: AgentRow) -> impl Future<Output = Result<(), AgentServiceError>> {
        self.hub.do_send(AgentSaved(row));
        std::future::ready(Ok(()))
    }

    fn agent_removed(
        &self,
        id: i64,
        subscription_id: Option<i64>,
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

    fn actor(&self, id: i64) -> Option<Addr<AgentActor>> {
        self.registry.agent(id).map(|e| e.addr)
    }
}
