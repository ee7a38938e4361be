//! Step 4 of the pipeline, transform: the endpoint's logic makes events and an answer
//! of a checked request.

use std::sync::Arc;

use serde_json::Value;

use super::Refused;
use crate::endpoints::{InboundRequest, OwnRefusal, WebResponse};

/// How a request's data becomes events and an answer.
pub(super) enum Shaper {
    Agent(
        Arc<crate::endpoints::webhook::Webhook>,
        Arc<dyn crate::template::liquid::CredentialSource>,
    ),
    /// An incoming webhook's id and transform.
    Template(
        crate::ids::IncomingWebhookId,
        Option<Arc<crate::endpoints::transform::Transform>>,
    ),
}

/// A request that passed its checks, before the endpoint's logic shaped it.
pub(super) struct Checked {
    pub(super) shaper: Shaper,
    pub(super) data: Value,
    pub(super) request: InboundRequest,
    pub(super) key: Option<String>,
    pub(super) captcha: Option<crate::endpoints::recaptcha::Check>,
}

/// What a request is answered once its events are committed.
pub(super) enum Reply {
    /// Decided before the write (a webhook agent's answer).
    Ready(WebResponse),
    /// An incoming webhook's receipt, made from the committed events.
    Receipt(crate::ids::IncomingWebhookId),
}

/// What the endpoint's logic made of a request: its events and its answer.
pub(super) struct Shaped {
    pub(super) response: Reply,
    pub(super) render_error: Option<String>,
    pub(super) payloads: Vec<Value>,
    pub(super) key: Option<String>,
    pub(super) captcha: Option<crate::endpoints::recaptcha::Check>,
}

/// Step 4, transform. The response template, `payload_path` and `transform_template`
/// are user-written and bounded by the sandboxes (a render may take up to its
/// deadline), so an endpoint that has any runs them on the blocking pool: one user's
/// template never holds the HTTP worker that serves everyone's requests. Plain
/// endpoints stay inline, on the fast path.
pub(super) async fn shape_off_worker(checked: Checked) -> Result<Shaped, Refused> {
    let user_logic = match &checked.shaper {
        Shaper::Agent(w, _) => w.runs_user_logic(),
        Shaper::Template(_, t) => t.is_some(),
    };
    if !user_logic {
        return shape(checked);
    }
    let template = matches!(checked.shaper, Shaper::Template(..));
    actix_web::web::block(move || shape(checked))
        .await
        .unwrap_or_else(|_| {
            Err(if template {
                (
                    "transform_failed",
                    WebResponse::refuse(
                        OwnRefusal::TransformFailed,
                        "the transform could not run; retry later",
                    ),
                )
            } else {
                (
                    "internal",
                    WebResponse::refuse(
                        OwnRefusal::Unavailable,
                        "the request could not be processed; retry later",
                    ),
                )
            })
        })
}

pub(super) fn shape(checked: Checked) -> Result<Shaped, Refused> {
    let Checked {
        shaper,
        data,
        request,
        key,
        captcha,
    } = checked;
    match shaper {
        Shaper::Agent(webhook, credentials) => {
            let (response, render_error) = webhook.response(&data, &request.url, credentials);
            let payloads = webhook
                .payloads(data, &request.headers)
                .map_err(|r| ("bad_request", r))?;
            Ok(Shaped {
                response: Reply::Ready(response),
                render_error,
                payloads,
                key,
                captcha,
            })
        }
        Shaper::Template(webhook_id, transform) => {
            let payload = match transform {
                None => data,
                Some(t) => t
                    .apply(&data, &request.headers, &request.query)
                    .map_err(|e| {
                        tracing::warn!(incoming_webhook = webhook_id.0, error = %e, "transform_template failed; answered 422 and stored nothing");
                        ("transform_failed", WebResponse::refuse(OwnRefusal::TransformFailed, e.to_string()))
                    })?,
            };
            Ok(Shaped {
                response: Reply::Receipt(webhook_id),
                render_error: None,
                payloads: vec![payload],
                key,
                captcha,
            })
        }
    }
}
