//! Recording one attempt's outcome, in one write: the delivery row, the attempt log
//! row, the post agent's response event, the circuit when it changed, and the system
//! events the outcome raises (`delivery.dead`, `subscription.disabled`,
//! `circuit.opened` / `circuit.closed`). The actor builds an [`AttemptRecord`] and
//! hands [`record`] to the Writer; nothing else writes an attempt.

use std::sync::Arc;

use chrono::NaiveDateTime;
use serde_json::json;

use super::breaker::{CircuitState, Transition};
use super::spec::Spec;
use crate::event_types::{CIRCUIT_CLOSED, CIRCUIT_OPENED, DELIVERY_DEAD, SUBSCRIPTION_DISABLED};
use crate::ids::DeliveryId;
use crate::store::deliveries::{self, AttemptResult, DeliveryRow, DeliveryStatus};
use crate::store::delivery_attempts::{self, NewAttempt};
use crate::store::events::NewEvent;
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::system_events;
use crate::store::{Conn, Emitted, StoreError};

/// Why a 410 disables a subscription, as stored and as its event says.
pub const GONE_REASON: &str = "the target answered 410 Gone";

/// The circuit as saved in the subscription row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedCircuit {
    pub state: CircuitState,
    pub opened_at: Option<NaiveDateTime>,
    pub consecutive_failures: i32,
}

/// Everything one attempt's outcome writes.
pub struct AttemptRecord {
    pub spec: Arc<Spec>,
    pub delivery_id: DeliveryId,
    /// The type of the event delivered, for `delivery.dead`.
    pub event_type: String,
    pub result: AttemptResult,
    pub attempt: NewAttempt,
    /// A post agent's response event, once its request is final.
    pub emit: Option<NewEvent>,
    /// The circuit after this attempt.
    pub circuit: SavedCircuit,
    /// It differs from what was last saved (most attempts leave it alone, and skip
    /// that UPDATE).
    pub circuit_changed: bool,
    pub transition: Option<Transition>,
    /// The target answered 410: disable the subscription.
    pub disable: bool,
}

/// Writes the outcome; `disabled` sees the subscription row after a 410 disabled it
/// (the actor keeps its in-memory index in step inside the same write).
pub fn record(
    c: &mut Conn,
    out: &mut Emitted<'_>,
    r: &AttemptRecord,
    disabled: &dyn Fn(&SubscriptionRow),
) -> Result<DeliveryRow, StoreError> {
    let spec = &r.spec;
    let row = deliveries::record_result(c, r.delivery_id, &r.result)?;
    if let Some(new) = &r.emit {
        out.insert(c, std::slice::from_ref(new), 0)?;
    }
    delivery_attempts::insert(c, &r.attempt)?;
    if r.circuit_changed {
        subscriptions::save_circuit(
            c,
            spec.id,
            r.circuit.state,
            r.circuit.opened_at,
            r.circuit.consecutive_failures,
        )?;
    }
    if row.status == DeliveryStatus::Dead {
        system_events::record(
            c,
            out,
            spec.user_id,
            DELIVERY_DEAD,
            json!({"webhook_id": spec.id, "delivery_id": row.id, "message_id": row.message_id,
                   "event_id": row.event_id, "event_type": r.event_type, "attempts": row.attempts,
                   "last_status": row.last_status, "error": row.last_error}),
        )?;
    }
    if r.disable {
        subscriptions::disable(c, spec.id, GONE_REASON)?;
        if let Some(updated) = subscriptions::find(c, spec.id)? {
            disabled(&updated);
        }
        system_events::record(
            c,
            out,
            spec.user_id,
            SUBSCRIPTION_DISABLED,
            json!({"webhook_id": spec.id, "url": spec.url, "reason": GONE_REASON}),
        )?;
    }
    match r.transition {
        Some(Transition::Opened) => system_events::record(
            c,
            out,
            spec.user_id,
            CIRCUIT_OPENED,
            json!({"webhook_id": spec.id, "url": spec.url,
                   "consecutive_failures": r.circuit.consecutive_failures}),
        )?,
        Some(Transition::Closed) => system_events::record(
            c,
            out,
            spec.user_id,
            CIRCUIT_CLOSED,
            json!({"webhook_id": spec.id, "url": spec.url}),
        )?,
        None => {}
    }
    Ok(row)
}
