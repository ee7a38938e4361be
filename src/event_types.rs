//! The catalog of event types the hub emits. The one place they are listed: the API
//! serves it and subscriptions match against it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
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
