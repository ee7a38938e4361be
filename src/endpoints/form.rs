//! What an inbound endpoint is configured with: everything in which the two URL forms
//! differ, as data. A webhook agent's Huginn URL (`/users/{uid}/web_requests/{id}/{secret}`)
//! and an incoming webhook (`/webhook/{token}`) run the same pipeline
//! ([`super::pipeline`]); a [`Form`] says, per step, what that endpoint does: which
//! requests it refuses before anything else, who may call, how the body becomes data,
//! which logic shapes it into events, whose events they are and what the sender is
//! answered. The two constructors below are the only places that know the forms apart.

use std::sync::Arc;

use serde::Serialize;

use super::guard::{Guard, InboundSettings};
use super::incoming::{AgentExists, compile};
use super::signature::{Scheme, SignatureCheck};
use super::transform::Transform;
use super::webhook::Webhook;
use super::{OwnRefusal, WebResponse};
use crate::event_types::WEBHOOK_RECEIVED;
use crate::options::{OptionError, emitted_event_type};
use crate::secrets::Keyring;
use crate::store::agents::AgentRow;
use crate::store::incoming_webhooks::IncomingRow;

/// One endpoint's configuration; replaced as a whole when it changes, so a request in
/// flight finishes with the form it started with.
pub struct Form {
    /// Whether the endpoint answers at all (an incoming webhook that is inactive, or
    /// whose agent is gone, answers 404 and logs nothing).
    pub open: Open,
    /// The answer to a CORS preflight (before [`Form::headers`] are added).
    pub preflight: WebResponse,
    /// Added to every answer once the endpoint is open (incoming webhooks'
    /// `response_headers`; a webhook agent's own answers carry its headers already).
    pub headers: Vec<(String, String)>,
    /// Who may call, checked before the body is read.
    pub access: Access,
    /// How the body becomes data.
    pub parse: Parse,
    /// What shapes the data into events and the answer; `Err` while the options are
    /// invalid.
    pub logic: Result<Logic, Invalid>,
    /// Whose events the request makes.
    pub events: Events,
}

pub enum Open {
    Always,
    /// Open while the row is active and its target agent still exists.
    While {
        active: bool,
        agent_id: crate::ids::AgentId,
        exists: AgentExists,
    },
}

impl Open {
    pub fn is_open(&self) -> bool {
        match self {
            Open::Always => true,
            Open::While {
                active,
                agent_id,
                exists,
            } => *active && exists(*agent_id),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The URL's secret and the verb, checked against the agent's options (Huginn:
    /// both failures are 401).
    SecretAndVerbs,
    /// POST only; another verb is 405 with `Allow`.
    PostOnly,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// Huginn's params: the query and the body merged; every refusal is `bad_request`.
    Params,
    /// The body alone; an unsupported type is logged as `unsupported_media_type`.
    Body,
}

/// What shapes a request into events and decides its answer.
pub enum Logic {
    /// A webhook agent: its secret and verbs, signature, reCAPTCHA, `payload_path` and
    /// response template. The answer is the agent's own (its code, template and
    /// headers), decided before the write; a redirect is not stored for replay.
    Agent(Arc<Webhook>),
    /// An incoming webhook: its signature and `transform_template`. The answer is a
    /// receipt made from the committed events ([`receipt`]).
    Template {
        webhook_id: crate::ids::IncomingWebhookId,
        signature: Option<SignatureCheck>,
        transform: Option<Arc<Transform>>,
    },
}

impl Logic {
    pub fn signature(&self) -> Option<&SignatureCheck> {
        match self {
            Logic::Agent(w) => w.protections.signature.as_ref(),
            Logic::Template { signature, .. } => signature.as_ref(),
        }
    }

    /// Whether the signature scheme is Standard Webhooks (whose `webhook-id` is also
    /// an idempotency key).
    pub fn standard(&self) -> bool {
        self.signature()
            .is_some_and(|s| s.scheme == Scheme::Standard)
    }

    /// Whether shaping a request runs user-written logic, which is kept off the HTTP
    /// workers.
    pub fn runs_user_logic(&self) -> bool {
        match self {
            Logic::Agent(w) => w.runs_user_logic(),
            Logic::Template { transform, .. } => transform.is_some(),
        }
    }
}

/// Invalid options: what is answered before the body is read (`None`: the request is
/// admitted, and refused once read) and after.
pub struct Invalid {
    pub at_admit: Option<WebResponse>,
    pub at_handle: WebResponse,
}

pub struct Events {
    /// The agent the events come from (a webhook agent's own events).
    pub source: Option<crate::ids::AgentId>,
    /// The agent the events are addressed to (an incoming webhook's agent).
    pub target: Option<crate::ids::AgentId>,
    pub event_type: String,
    pub keep_for_seconds: i64,
}

/// A form with its guard (the rate-limit bucket and allowlist), made together.
pub struct Configured {
    pub form: Form,
    pub guard: Option<Guard>,
}

/// A webhook agent's Huginn URL, from the agent's row.
pub fn web_request(row: &AgentRow, inbound: &InboundSettings) -> Configured {
    let options = row
        .options_json()
        .map_err(|e| OptionError::new("options", e.to_string()));
    let event_type = options
        .as_ref()
        .map(emitted_event_type)
        .unwrap_or_else(|_| "event.created".into());
    let webhook = options.and_then(|o| Webhook::new(&o)).map(Arc::new);
    // A Huginn URL has its own default limit (none, as in Huginn).
    let huginn = InboundSettings {
        default_rate_limit_per_minute: inbound.web_request_rate_limit_per_minute,
        ..inbound.clone()
    };
    let guard = webhook
        .as_ref()
        .ok()
        .map(|w| Guard::new(w.protections.clone(), &huginn).named(format!("agent {}", row.id)));
    if let Err(e) = &webhook {
        tracing::error!(agent_id = row.id.0, error = %e, "webhook agent has invalid options; its URL answers 503 until they are fixed");
    }
    let preflight = WebResponse {
        headers: webhook
            .as_ref()
            .map(|w| w.response_headers().to_vec())
            .unwrap_or_default(),
        ..WebResponse::text(200, "")
    };
    let logic = webhook.map(Logic::Agent).map_err(|e| Invalid {
        at_admit: None,
        at_handle: WebResponse::refuse(
            OwnRefusal::Misconfigured,
            format!("This agent's options are invalid ({e}); fix them and retry"),
        ),
    });
    Configured {
        form: Form {
            open: Open::Always,
            preflight,
            headers: Vec::new(),
            access: Access::SecretAndVerbs,
            parse: Parse::Params,
            logic,
            events: Events {
                source: Some(row.id),
                target: None,
                event_type,
                keep_for_seconds: row.keep_events_for,
            },
        },
        guard,
    }
}

/// An incoming webhook, from its row. Its events are `webhook.received` events of the
/// owner with no source agent, addressed to the target agent.
pub fn incoming(
    row: &IncomingRow,
    keys: &Keyring,
    exists: AgentExists,
    settings: &InboundSettings,
) -> Configured {
    let compiled = compile(row, keys);
    if let Err(e) = &compiled {
        tracing::error!(incoming_webhook = row.id.0, error = %e, "incoming webhook has invalid options; it answers 503 until they are fixed");
    }
    let (logic, guard, headers) = match compiled {
        Ok(c) => {
            let signature = c.protections.signature.clone();
            let guard =
                Guard::new(c.protections, settings).named(format!("incoming webhook {}", row.id));
            let logic = Logic::Template {
                webhook_id: row.id,
                signature,
                transform: c.transform.map(Arc::new),
            };
            (Ok(logic), Some(guard), c.response_headers)
        }
        Err(e) => {
            let invalid = Invalid {
                at_admit: Some(WebResponse::refuse(
                    OwnRefusal::Misconfigured,
                    format!("this webhook's options are invalid ({e}); fix them and retry"),
                )),
                at_handle: WebResponse::refuse(
                    OwnRefusal::Misconfigured,
                    format!("this webhook's options are invalid ({e})"),
                ),
            };
            (Err(invalid), None, Vec::new())
        }
    };
    Configured {
        form: Form {
            open: Open::While {
                active: row.is_active,
                agent_id: row.agent_id,
                exists,
            },
            preflight: WebResponse::text(204, "")
                .with_header("Allow", "POST, OPTIONS")
                .with_header("Access-Control-Allow-Methods", "POST, OPTIONS"),
            headers,
            access: Access::PostOnly,
            parse: Parse::Body,
            logic,
            events: Events {
                source: None,
                target: Some(row.agent_id),
                event_type: WEBHOOK_RECEIVED.to_string(),
                keep_for_seconds: 0,
            },
        },
        guard,
    }
}

/// What an incoming webhook answers once the request's events are committed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookReceipt {
    /// Always true.
    pub success: bool,
    pub webhook_id: i64,
    /// The first event made; null when the transform made none.
    #[schema(required)]
    pub event_id: Option<i64>,
    /// Every event the request made, in order.
    pub event_ids: Vec<i64>,
}

/// The receipt of an incoming webhook's committed events.
pub fn receipt(webhook_id: crate::ids::IncomingWebhookId, ids: &[i64]) -> WebResponse {
    let receipt = WebhookReceipt {
        success: true,
        webhook_id: webhook_id.0,
        event_id: ids.first().copied(),
        event_ids: ids.to_vec(),
    };
    // A struct of numbers and a bool always serializes.
    WebResponse::json(200, &serde_json::to_value(receipt).unwrap_or_default())
}
