//! `/api/links`: the edges between agents.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ts;
use crate::http::api::agents::{check_link_ends, cycle_warnings, visible_agent};
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::LinksChanged;
use crate::store::agents;
use crate::store::links::{self, LinkRow};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    pub source_id: i64,
    pub receiver_id: i64,
}

#[derive(Debug, Serialize)]
pub struct LinkOut {
    pub id: i64,
    pub source_id: i64,
    pub receiver_id: i64,
    pub event_id_at_creation: i64,
    pub created_at: String,
    /// A link cycle this link closes (Huginn allows them; see agents.max_events_per_root).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<LinkRow> for LinkOut {
    fn from(l: LinkRow) -> Self {
        LinkOut {
            id: l.id,
            source_id: l.source_id,
            receiver_id: l.receiver_id,
            event_id_at_creation: l.event_id_at_creation,
            created_at: ts(l.created_at),
            warnings: Vec::new(),
        }
    }
}

pub async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let scope = user.scope();
    let rows = state
        .addrs
        .store
        .read(move |c| links::list(c, scope))
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(LinkOut::from).collect::<Vec<_>>()))
}

pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<LinkIn>,
) -> Result<HttpResponse, ApiError> {
    let LinkIn {
        source_id,
        receiver_id,
    } = body.into_inner();
    if source_id == receiver_id {
        return Err(ApiError::Unprocessable(
            "an agent cannot be linked to itself".into(),
        ));
    }
    let source = visible_agent(&state, &user, source_id).await.map_err(|_| {
        ApiError::Unprocessable(format!("source_id: agent {source_id} does not exist"))
    })?;
    check_link_ends(
        &state,
        source.user_id,
        "source_id",
        &[source_id],
        |k| k.can_create_events,
        "cannot create events",
    )
    .await?;
    check_link_ends(
        &state,
        source.user_id,
        "receiver_id",
        &[receiver_id],
        |k| k.can_receive_events,
        "cannot receive events",
    )
    .await?;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| links::insert(c, source_id, receiver_id))
        .await?;
    state.addrs.hub.send(LinksChanged).await??;
    let mut out = LinkOut::from(row);
    out.warnings = cycle_warnings(&state, source.user_id, vec![source_id]).await?;
    Ok(HttpResponse::Created().json(out))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let found = state
        .addrs
        .store
        .read(move |c| {
            let Some(link) = links::find(c, id)? else {
                return Ok(None);
            };
            Ok(agents::find(c, link.source_id)?.map(|a| a.user_id))
        })
        .await?;
    if !found.is_some_and(|owner| user.can_see(owner)) {
        return Err(ApiError::not_found("link", id));
    }
    state
        .addrs
        .store
        .writer()
        .write(move |c, _| links::delete(c, id))
        .await?;
    state.addrs.hub.send(LinksChanged).await??;
    Ok(HttpResponse::NoContent().finish())
}
