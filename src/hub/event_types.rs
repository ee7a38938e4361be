//! The catalog of event types the hub emits. The one place they are listed: the API
//! serves it and subscriptions match against it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct EventType {
    /// Served as `type`, the AGiXT document's spelling.
    #[serde(rename = "type")]
    pub name: &'static str,
    pub description: &'static str,
}

pub const EVENT_CREATED: &str = "event.created";
pub const AGENT_CREATED: &str = "agent.created";
pub const AGENT_UPDATED: &str = "agent.updated";
pub const AGENT_DELETED: &str = "agent.deleted";
pub const AGENT_ENABLED: &str = "agent.enabled";
pub const AGENT_DISABLED: &str = "agent.disabled";
pub const DELIVERY_DEAD: &str = "delivery.dead";
pub const SUBSCRIPTION_DISABLED: &str = "subscription.disabled";
pub const CIRCUIT_OPENED: &str = "subscription.circuit_opened";
pub const CIRCUIT_CLOSED: &str = "subscription.circuit_closed";
pub const TEST_WEBHOOK: &str = "test.webhook";
pub const WEBHOOK_RECEIVED: &str = "webhook.received";

pub const CATALOG: &[EventType] = &[
    EventType {
        name: EVENT_CREATED,
        description: "An agent emitted an event (an agent's `event_type` option can name another type).",
    },
    EventType {
        name: AGENT_CREATED,
        description: "An agent was created.",
    },
    EventType {
        name: AGENT_UPDATED,
        description: "An agent's name, options, schedule or links changed.",
    },
    EventType {
        name: AGENT_DELETED,
        description: "An agent was deleted, with its events.",
    },
    EventType {
        name: AGENT_ENABLED,
        description: "A disabled agent was enabled.",
    },
    EventType {
        name: AGENT_DISABLED,
        description: "An agent was disabled.",
    },
    EventType {
        name: DELIVERY_DEAD,
        description: "A delivery used up its retries (or was refused for good) and is in the dead-letter queue, replayable.",
    },
    EventType {
        name: SUBSCRIPTION_DISABLED,
        description: "An outgoing webhook was disabled, e.g. because its target answered 410 Gone.",
    },
    EventType {
        name: CIRCUIT_OPENED,
        description: "An outgoing webhook's circuit breaker opened after consecutive failures; its deliveries wait.",
    },
    EventType {
        name: CIRCUIT_CLOSED,
        description: "An outgoing webhook's circuit breaker closed again after a successful probe.",
    },
    EventType {
        name: TEST_WEBHOOK,
        description: "Sent by POST /api/webhooks/outgoing/{id}/test (or /api/webhooks/test/{id}) to check a target; not stored.",
    },
    EventType {
        name: WEBHOOK_RECEIVED,
        description: "An incoming webhook (POST /webhook/{token}) accepted a request; the event goes to the webhook's agent.",
    },
];

/// Writes a system event (no agent) inside a Writer job, so it commits with the change
/// it reports and reaches the Router like any other event.
pub fn record(
    conn: &mut crate::store::Conn,
    out: &mut crate::store::Emitted<'_>,
    user_id: i64,
    event_type: &str,
    payload: serde_json::Value,
) -> Result<(), crate::store::StoreError> {
    out.insert(
        conn,
        &[crate::store::events::NewEvent {
            user_id,
            agent_id: None,
            event_type: event_type.to_string(),
            payload: crate::store::events::NewEvent::payload_text(&payload),
            keep_for_seconds: 0,
        }],
        0,
    )?;
    Ok(())
}

/// The payload of the `agent.*` events: which agent. The flat fields are the ones the
/// Agent Factory and AGiXT documents print (their receivers read `data.agent_name`);
/// `agent` is muninn's own shape, kept for receivers written against it.
pub fn agent_summary(row: &crate::store::agents::AgentRow) -> serde_json::Value {
    let time = |t: chrono::NaiveDateTime| {
        t.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    serde_json::json!({
        "agent_id": row.id,
        "agent_name": row.name,
        "agent_type": row.agent_type,
        "user_id": row.user_id,
        "created_at": time(row.created_at),
        "updated_at": time(row.updated_at),
        "agent": {"id": row.id, "name": row.name, "type": row.agent_type},
    })
}
