//! The running hub as the subsystems' services see it: each service takes a small
//! trait for "tell the hub", implemented here over the tree's addresses, so the
//! services never import the Hub.

use actix::Addr;

use super::{Addrs, IncomingRemoved, IncomingSaved, SubscriptionRemoved, SubscriptionSaved};
use crate::delivery::SubscriptionActor;
use crate::delivery::subscription::{Running, SubscriptionError};
use crate::endpoints::incoming_service::{IncomingError, IncomingRunning};
use crate::store::incoming_webhooks::IncomingRow;
use crate::store::subscriptions::SubscriptionRow;

impl Running for Addrs {
    async fn saved(&self, row: SubscriptionRow) -> Result<(), SubscriptionError> {
        Ok(self.hub.send(SubscriptionSaved(row)).await?)
    }

    async fn removed(&self, id: i64) -> Result<(), SubscriptionError> {
        Ok(self.hub.send(SubscriptionRemoved(id)).await?)
    }

    fn actor(&self, id: i64) -> Option<Addr<SubscriptionActor>> {
        self.registry.subscription(id).map(|e| e.addr)
    }
}

impl IncomingRunning for Addrs {
    async fn saved(&self, row: IncomingRow) -> Result<(), IncomingError> {
        Ok(self.hub.send(IncomingSaved(row)).await?)
    }

    async fn removed(&self, id: i64) -> Result<(), IncomingError> {
        Ok(self.hub.send(IncomingRemoved(id)).await?)
    }

    fn receives_events(&self, agent_type: &str) -> bool {
        crate::agents::kind(agent_type).is_some_and(|k| k.can_receive_events)
    }
}
