//! `POST /api/webhooks/outgoing/{id}/reset-circuit`: an operator closes a
//! subscription's circuit by hand, so deliveries held behind it go now instead of
//! after the cooldown. The live actor's breaker is closed and the stored circuit
//! written; resetting a closed circuit is harmless (idempotent).

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::subscriptions::{to_out, visible};
use crate::delivery::ResetCircuit;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::subscriptions;

pub async fn reset(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    // Another user's subscription is not found, as for every other action on it.
    let current = visible(&state, &user, path.into_inner()).await?;
    let id = current.id;
    let was_open = match state.addrs.registry.subscription(id) {
        Some(entry) => entry.addr.send(ResetCircuit).await??,
        // Not running (its stored settings are invalid): only the stored state.
        None => {
            let was_open = current.circuit_state != "closed";
            state
                .addrs
                .store
                .writer()
                .write(move |c, _| subscriptions::save_circuit(c, id, "closed", None, 0))
                .await?;
            was_open
        }
    };
    let row = state
        .addrs
        .store
        .read(move |c| subscriptions::find(c, id))
        .await?
        .ok_or_else(|| ApiError::not_found("webhook", id))?;
    Ok(HttpResponse::Ok().json(json!({
        "id": id,
        "was_open": was_open,
        "subscription": to_out(row, None, state.addrs.store.keys()),
    })))
}
