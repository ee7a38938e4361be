//! `/api/links`: the edges between agents. The workflows and their rules are the agents
//! service's (`agents::service::links`); these handlers extract, call and answer.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ts;
use crate::agents::service::links as service;
use crate::http::api::agents::deps;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::links::LinkRow;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    pub source_id: i64,
    pub receiver_id: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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
            id: l.id.0,
            source_id: l.source_id.0,
            receiver_id: l.receiver_id.0,
            event_id_at_creation: l.event_id_at_creation,
            created_at: ts(l.created_at),
            warnings: Vec::new(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/links",
    operation_id = "links_list",
    tag = "links",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "OK", body = Vec<LinkOut>)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let rows = service::page(&deps(&state), user.scope(), page.after(), page.fetch()).await?;
    let (rows, next) = page.cut(rows, |l| l.id.0);
    let outs: Vec<LinkOut> = rows.into_iter().map(LinkOut::from).collect();
    Ok(page.respond(&req, &outs, next))
}

#[utoipa::path(
    post,
    path = "/api/links",
    operation_id = "links_create",
    tag = "links",
    request_body = LinkIn,
    responses(
        (status = 201, description = "Created", body = LinkOut)
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<LinkIn>,
) -> Result<HttpResponse, ApiError> {
    let LinkIn {
        source_id,
        receiver_id,
    } = body.into_inner();
    let (row, warnings) = service::create(
        &deps(&state),
        user.scope(),
        crate::ids::AgentId(source_id),
        crate::ids::AgentId(receiver_id),
    )
    .await?;
    let mut out = LinkOut::from(row);
    out.warnings = warnings;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(
    delete,
    path = "/api/links/{id}",
    operation_id = "links_delete",
    tag = "links",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "No content")
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<crate::ids::LinkId>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&deps(&state), user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
