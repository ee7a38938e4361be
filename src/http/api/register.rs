//! The simple registration API: `POST /webhooks/register {url, events}`,
//! `GET /webhooks`, `DELETE /webhooks/{id}`, `POST /webhooks/{id}/events {events}`.
//! The same subscriptions as `/api/webhooks/outgoing`, in a smaller shape.
//! `payload_format` chooses what a receiver gets: `muninn` (the full envelope, the
//! default) or `event`, the AI Agent API's `{event, data, timestamp}`. `headers` are
//! sent with every delivery: the AI Agent API's receivers check an `X-Webhook-Token`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::delivery::subscription::shapes::format_template;
use crate::http::api::subscriptions::{self, SubscriptionIn, SubscriptionOut};
use crate::http::{ApiError, AppState, AuthUser};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterIn {
    pub url: String,
    /// Required: the event types to send, or `["*"]` for every event.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    /// `muninn` (the default) or `event`.
    pub payload_format: Option<String>,
    /// Headers sent with every delivery, e.g. `{"X-Webhook-Token": "..."}` for a
    /// receiver that checks a shared token (checked as `/api/webhooks/outgoing` checks
    /// its `headers`).
    pub headers: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsIn {
    pub events: Vec<String>,
}

/// A subscription in the registration API's shape.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisterOut {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub is_active: bool,
    pub payload_format: &'static str,
    pub created_at: String,
    /// The signing secret: in the answer to registering only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<String>,
}

fn short(s: SubscriptionOut) -> RegisterOut {
    RegisterOut {
        id: s.id,
        url: s.url,
        events: s.event_types,
        is_active: s.is_active,
        payload_format: s.payload_format,
        created_at: s.created_at,
        secret: None,
    }
}

#[utoipa::path(
    post,
    path = "/webhooks/register",
    operation_id = "register_register",
    tag = "register",
    request_body = RegisterIn,
    responses(
        (status = 201, description = "Created", body = RegisterOut)
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<RegisterIn>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    if b.events.is_none() {
        return Err(ApiError::Unprocessable(
            "events: is required: the event types to send, e.g. [\"agent.created\"], or [\"*\"] for every event".into(),
        ));
    }
    let template = format_template(b.payload_format.as_deref())?;
    let out = subscriptions::create_from(
        &state,
        &user,
        SubscriptionIn {
            url: Some(b.url),
            event_types: b.events,
            secret: b.secret,
            headers: b.headers,
            payload_template: template.map(|t| Some(Value::String(t))),
            ..Default::default()
        },
    )
    .await?;
    let secret = out.secret.clone();
    Ok(HttpResponse::Created().json(RegisterOut {
        secret,
        ..short(out)
    }))
}

#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "register_list",
    tag = "register",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "OK", body = Vec<RegisterOut>)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let rows = subscriptions::service(&state)
        .page(subscriptions::caller(&user), page.after(), page.fetch())
        .await?;
    let (rows, next) = page.cut(rows, |r| r.id.0);
    let out: Vec<_> = rows
        .into_iter()
        .map(|r| short(subscriptions::to_out(r, None, state.addrs.store.keys())))
        .collect();
    Ok(page.respond(&req, &out, next))
}

#[utoipa::path(
    post,
    path = "/webhooks/{id}/events",
    operation_id = "register_set_events",
    tag = "register",
    params(("id" = i64, Path)),
    request_body = EventsIn,
    responses(
        (status = 200, description = "OK", body = RegisterOut)
    )
)]
pub async fn set_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<crate::ids::SubscriptionId>,
    body: web::Json<EventsIn>,
) -> Result<HttpResponse, ApiError> {
    let out = subscriptions::update_from(
        &state,
        &user,
        path.into_inner(),
        SubscriptionIn {
            event_types: Some(body.into_inner().events),
            ..Default::default()
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(short(out)))
}
