//! `POST /api/webhooks/outgoing/{id}/reset-circuit`: an operator closes a
//! subscription's circuit by hand, so deliveries held behind it go now instead of
//! after the cooldown. The live actor's breaker is closed and the stored circuit
//! written; resetting a closed circuit is harmless (idempotent).

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::subscriptions::{SubscriptionOut, caller, service, to_out};
use crate::http::{ApiError, AppState, AuthUser};
use crate::ids::SubscriptionId;

#[utoipa::path(
    post,
    path = "/api/webhooks/outgoing/{id}/reset-circuit",
    operation_id = "circuit_reset",
    tag = "circuit",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The circuit is closed; `was_open` says whether it was open", body = CircuitReset)
    )
)]
pub async fn reset(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<SubscriptionId>,
) -> Result<HttpResponse, ApiError> {
    // Another user's subscription is not found, as for every other action on it.
    let (was_open, row) = service(&state)
        .reset_circuit(caller(&user), path.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(CircuitReset {
        id: row.id.0,
        was_open,
        subscription: to_out(row, None, state.addrs.store.keys()),
    }))
}

/// The answer of a reset: whether the circuit was open, and the webhook as it is now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CircuitReset {
    pub id: i64,
    pub was_open: bool,
    pub subscription: SubscriptionOut,
}
