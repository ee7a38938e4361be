//! `/api/webhooks/outgoing`: subscriptions (outgoing webhooks) in the AGiXT shape, with
//! pause/resume, secret rotation, a test send and replay; `/api/webhooks/event-types`.
//! Each handler extracts, calls one workflow of `delivery::subscription` and maps the
//! answer; the rules and the writes live there.

use actix_web::{HttpResponse, web};

use super::ts;
use crate::delivery::signer::{self, Scheme};
use crate::delivery::subscription::{
    Caller, ReplayIn, RotateIn, Settings, SubscriptionError, Subscriptions, TestIn,
};
use crate::event_types::{CATALOG, EventType};
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::Addrs;
use crate::ids::SubscriptionId;
use crate::store::subscriptions::SubscriptionRow;

pub use super::subscription_out::{SubscriptionOut, to_out};
use crate::delivery::actor::TestOutcome;
use crate::delivery::subscription::Replayed;
pub use crate::delivery::subscription::SubscriptionIn;

impl From<SubscriptionError> for ApiError {
    fn from(e: SubscriptionError) -> ApiError {
        match e {
            SubscriptionError::Invalid(m) => ApiError::Unprocessable(m),
            SubscriptionError::NotFound(id) => ApiError::not_found("webhook", id),
            SubscriptionError::NotRunning(_) => ApiError::Unprocessable(e.to_string()),
            SubscriptionError::Store(s) => s.into(),
            SubscriptionError::HubUnavailable => actix::MailboxError::Closed.into(),
            SubscriptionError::OwnerSilent(message) => ApiError::Unavailable {
                message,
                retry_after: 1,
            },
        }
    }
}

/// The workflows over this server's store and hub.
pub fn service(state: &AppState) -> Subscriptions<'_, Addrs> {
    Subscriptions {
        store: &state.addrs.store,
        running: &state.addrs,
        settings: Settings {
            allow_private_targets: state.config.delivery.allow_private_targets,
            rotation_grace_seconds: state.config.delivery.secret_rotation_grace_seconds,
        },
    }
}

pub fn caller(user: &AuthUser) -> Caller {
    Caller {
        user_id: user.id,
        scope: user.scope(),
    }
}

fn out(state: &AppState, row: SubscriptionRow) -> SubscriptionOut {
    to_out(row, None, state.addrs.store.keys())
}

/// A subscription the caller may see.
pub async fn visible(
    state: &AppState,
    user: &AuthUser,
    id: SubscriptionId,
) -> Result<SubscriptionRow, ApiError> {
    Ok(service(state).get(caller(user), id).await?)
}

pub async fn create_from(
    state: &AppState,
    user: &AuthUser,
    input: SubscriptionIn,
) -> Result<SubscriptionOut, ApiError> {
    let saved = service(state).create(caller(user), input).await?;
    Ok(to_out(
        saved.row,
        saved.shown_secret,
        state.addrs.store.keys(),
    ))
}

pub async fn update_from(
    state: &AppState,
    user: &AuthUser,
    id: SubscriptionId,
    input: SubscriptionIn,
) -> Result<SubscriptionOut, ApiError> {
    let saved = service(state).update(caller(user), id, input).await?;
    Ok(to_out(
        saved.row,
        saved.shown_secret,
        state.addrs.store.keys(),
    ))
}

#[utoipa::path(
    post,
    path = "/api/webhooks/outgoing",
    operation_id = "subscriptions_create",
    tag = "subscriptions",
    request_body = SubscriptionIn,
    responses(
        (status = 201, description = "Created; `secret` is shown only here", body = SubscriptionOut)
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<SubscriptionIn>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(create_from(&state, &user, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/outgoing",
    operation_id = "subscriptions_list",
    tag = "subscriptions",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "The webhooks, oldest first; `Link: <...>; rel=\"next\"` when there are more", body = [SubscriptionOut])
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let rows = service(&state)
        .page(caller(&user), page.after(), page.fetch())
        .await?;
    let (rows, next) = page.cut(rows, |r| r.id.0);
    let outs: Vec<_> = rows.into_iter().map(|r| out(&state, r)).collect();
    Ok(page.respond(&req, &outs, next))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/outgoing/{id}",
    operation_id = "subscriptions_get",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The webhook", body = SubscriptionOut)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
) -> Result<HttpResponse, ApiError> {
    let row = visible(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(out(&state, row)))
}

#[utoipa::path(
    method(put, patch),
    path = "/api/webhooks/outgoing/{id}",
    operation_id = "subscriptions_update",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    request_body = SubscriptionIn,
    responses(
        (status = 200, description = "The webhook, changed (a new `secret` is shown only here)", body = SubscriptionOut)
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
    body: web::Json<SubscriptionIn>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(update_from(&state, &user, path.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/webhooks/outgoing/{id}",
    operation_id = "subscriptions_delete",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "No content")
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
) -> Result<HttpResponse, ApiError> {
    service(&state)
        .delete(caller(&user), path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn set_paused(
    state: &AppState,
    user: &AuthUser,
    id: SubscriptionId,
    paused: bool,
) -> Result<HttpResponse, ApiError> {
    let row = service(state).set_paused(caller(user), id, paused).await?;
    Ok(HttpResponse::Ok().json(out(state, row)))
}

#[utoipa::path(
    post,
    path = "/api/webhooks/outgoing/{id}/pause",
    operation_id = "subscriptions_pause",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The webhook, paused", body = SubscriptionOut)
    )
)]
pub async fn pause(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &user, path.into_inner(), true).await
}

#[utoipa::path(
    post,
    path = "/api/webhooks/outgoing/{id}/resume",
    operation_id = "subscriptions_resume",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The webhook, resumed", body = SubscriptionOut)
    )
)]
pub async fn resume(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &user, path.into_inner(), false).await
}

#[utoipa::path(
    post,
    path = "/api/webhooks/outgoing/{id}/rotate-secret",
    operation_id = "subscriptions_rotate_secret",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    request_body = Option<RotateIn>,
    responses(
        (status = 200, description = "The new secret (or `public_key`), shown only here", body = SecretRotated)
    )
)]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    // Ownership first: another user's webhook is a 404 whatever the body says.
    visible(&state, &user, id).await?;
    let input: RotateIn = optional_body(&body)?.unwrap_or_default();
    let r = service(&state)
        .rotate_secret(caller(&user), id, input)
        .await?;
    // A v1a private key stays in the hub: the owner gets the public key to publish.
    let (secret, public_key) = match r.scheme {
        Scheme::StandardV1a => (None, signer::public_key_of(&r.new_secret)),
        _ => (Some(r.new_secret), None),
    };
    Ok(HttpResponse::Ok().json(SecretRotated {
        id: r.row.id.0,
        previous_secrets_expire_at: ts(r.previous_expire_at),
        subscription: out(&state, r.row),
        secret,
        public_key,
    }))
}

/// The answer of rotate-secret: the new secret (shown only here) or, for
/// `standard-v1a`, the public key to publish; the old ones sign until
/// `previous_secrets_expire_at`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SecretRotated {
    pub id: i64,
    pub previous_secrets_expire_at: String,
    pub subscription: SubscriptionOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// An optional JSON body: none (or only whitespace, or `null`) is None, but one that is
/// sent is checked like any other, so a misspelt field is a 422 naming it rather than
/// ignored.
fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map_err(|e| crate::http::error::body_error(&e))
}

/// `POST /api/webhooks/outgoing/{id}/test` and the AGiXT SDK's `/api/webhooks/test/{id}`.
#[utoipa::path(
    post,
    path = "/api/webhooks/outgoing/{id}/test",
    operation_id = "subscriptions_test",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    request_body = Option<TestIn>,
    responses(
        (status = 200, description = "What the test send got", body = TestOutcome)
    )
)]
pub async fn test(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    visible(&state, &user, id).await?;
    let data = optional_body::<TestIn>(&body)?.and_then(|b| b.test_payload);
    let outcome = service(&state).send_test(caller(&user), id, data).await?;
    Ok(HttpResponse::Ok().json(outcome))
}

#[utoipa::path(
    post,
    path = "/api/webhooks/outgoing/{id}/replay",
    operation_id = "subscriptions_replay",
    tag = "subscriptions",
    params(("id" = i64, Path)),
    request_body = Option<ReplayIn>,
    responses(
        (status = 200, description = "Nothing queued (a dry run, or nothing matched)", body = Replayed),
        (status = 202, description = "Deliveries queued again", body = Replayed)
    )
)]
pub async fn replay(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    visible(&state, &user, id).await?;
    let input: ReplayIn = optional_body(&body)?.unwrap_or_default();
    let r = service(&state).replay(caller(&user), id, input).await?;
    Ok(if r.queued > 0 {
        HttpResponse::Accepted().json(r)
    } else {
        HttpResponse::Ok().json(r)
    })
}

/// `{"event_types": [{"type", "description"}]}`, as the AGiXT document prints it.
#[utoipa::path(
    get,
    path = "/api/webhooks/event-types",
    operation_id = "subscriptions_event_types",
    tag = "subscriptions",
    responses(
        (status = 200, description = "The event types a webhook can subscribe to", body = EventTypes)
    )
)]
pub async fn event_types() -> HttpResponse {
    HttpResponse::Ok().json(EventTypes {
        event_types: CATALOG,
    })
}

/// The answer of `GET /api/webhooks/event-types`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventTypes {
    pub event_types: &'static [EventType],
}
