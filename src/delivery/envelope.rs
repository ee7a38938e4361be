//! The default body of a delivery: `{id, event_type, timestamp, webhook_id, user_id,
//! agent_id, data}`. `id` is the message id (stable across retries, for dedupe),
//! `timestamp` the event's time, so every attempt sends the same bytes.

use serde_json::{Value, json};

use crate::ids::SubscriptionId;
use crate::store::events::EventRow;

pub fn envelope(event: &EventRow, subscription_id: SubscriptionId, message_id: &str) -> Value {
    let data = event.payload_json().unwrap_or(Value::Null);
    json!({
        "id": message_id,
        "event_id": event.id,
        "event_type": event.event_type,
        "timestamp": event.created_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "webhook_id": subscription_id,
        "user_id": event.user_id,
        "agent_id": event.agent_id,
        "data": data,
    })
}
