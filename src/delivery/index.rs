//! The subscription index: which subscriptions want an event. It is the Writer's
//! `EventHook`, so the deliveries an event owes are inserted in the same transaction as
//! the event (the outbox): a committed event can never be missing its deliveries.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::envelope::envelope;
use super::spec::Spec;
use crate::event_types::DELIVERY_DEAD;
use crate::ids::SubscriptionId;
use crate::store::deliveries::{self, DeliveryRow};
use crate::store::events::EventRow;
use crate::store::{Conn, EventHook, StoreError};

#[derive(Default)]
pub struct SubscriptionIndex {
    specs: RwLock<HashMap<SubscriptionId, Arc<Spec>>>,
}

impl SubscriptionIndex {
    pub fn upsert(&self, spec: Arc<Spec>) {
        self.specs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.id, spec);
    }

    pub fn remove(&self, id: SubscriptionId) {
        self.specs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub fn get(&self, id: SubscriptionId) -> Option<Arc<Spec>> {
        self.specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// The ids of every subscription in the index.
    pub fn ids(&self) -> Vec<SubscriptionId> {
        self.specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// The subscriptions `event` goes to.
    pub fn matching(&self, event: &EventRow) -> Vec<SubscriptionId> {
        let specs = self.specs.read().unwrap_or_else(|e| e.into_inner());
        let mut env = None;
        let mut out: Vec<SubscriptionId> = specs
            .values()
            .filter(|s| s.active && s.user_id == event.user_id && s.wants_type(&event.event_type))
            .filter(|s| s.agent_id.is_none() || s.agent_id == event.agent_id)
            .filter(|s| !reports_on_itself(s, event))
            .filter(|s| {
                let e = env.get_or_insert_with(|| envelope(event, s.id, ""));
                s.filters.matches(e)
            })
            .map(|s| s.id)
            .collect();
        out.sort_unstable();
        out
    }
}

/// A subscription is never sent the news of its own dead deliveries: if it is down,
/// that would feed itself forever.
fn reports_on_itself(spec: &Spec, event: &EventRow) -> bool {
    event.event_type == DELIVERY_DEAD
        && event
            .payload_json()
            .ok()
            .and_then(|p| p.get("webhook_id").and_then(serde_json::Value::as_i64))
            == Some(spec.id.0)
}

impl EventHook for SubscriptionIndex {
    fn on_insert(&self, conn: &mut Conn, event: &EventRow) -> Result<Vec<DeliveryRow>, StoreError> {
        let ids = self.matching(event);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        deliveries::insert_for_event(conn, &ids, event.id)
    }
}
