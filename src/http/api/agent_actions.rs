//! Agent actions the console needs: `POST /api/agents/{id}/run` (run the agent's
//! check now) and `DELETE /api/agents/{id}/memory` (clear its memory).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::agents::actor::{ClearMemory, RunNow};
use crate::http::api::agents::visible_agent;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::agents;

pub async fn run(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = visible_agent(&state, &user, path.into_inner()).await?;
    if row.disabled {
        return Err(ApiError::Conflict(format!(
            "agent {} is disabled; enable it before running it",
            row.id
        )));
    }
    let entry = state
        .addrs
        .registry
        .agent(row.id)
        .ok_or_else(|| ApiError::Unavailable {
            message: format!("agent {} is not running; try again shortly", row.id),
            retry_after: 1,
        })?;
    entry.addr.send(RunNow).await?;
    Ok(HttpResponse::Accepted().json(json!({"agent_id": row.id, "run": "started"})))
}

pub async fn clear_memory(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = visible_agent(&state, &user, path.into_inner()).await?.id;
    state
        .addrs
        .store
        .writer()
        .write(move |c, _| agents::set_memory(c, id, "{}"))
        .await?;
    if let Some(entry) = state.addrs.registry.agent(id) {
        entry.addr.send(ClearMemory).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
