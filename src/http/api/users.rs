//! `/api/users` (admin) and `/api/me`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ts;
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::UserAdded;
use crate::store::api_tokens;
use crate::store::users::{self, UserRow};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    pub name: String,
    #[serde(default, alias = "is_admin")]
    pub admin: bool,
}

#[derive(Debug, Serialize)]
pub struct UserOut {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
    pub created_at: String,
    /// Only in the answer to creating the user: the token is shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn out(u: UserRow, token: Option<String>) -> UserOut {
    UserOut {
        id: u.id,
        name: u.name,
        is_admin: u.is_admin,
        created_at: ts(u.created_at),
        token,
    }
}

pub async fn me(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let id = user.id;
    let row = state
        .addrs
        .store
        .read(move |c| users::find(c, id))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the user of this token no longer exists".into()))?;
    Ok(HttpResponse::Ok().json(out(row, None)))
}

pub async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let rows = state.addrs.store.read(users::list).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(|u| out(u, None)).collect::<Vec<_>>()))
}

pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<UserIn>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let UserIn { name, admin } = body.into_inner();
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::Unprocessable(
            "field \"name\" must be 1 to 100 characters".into(),
        ));
    }
    let token = api_tokens::generate();
    let t = token.clone();
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| {
            let u = users::insert(c, &name, admin)?;
            api_tokens::insert(c, u.id, &t)?;
            Ok(u)
        })
        .await?;
    state.addrs.hub.send(UserAdded(row.id)).await?;
    Ok(HttpResponse::Created().json(out(row, Some(token))))
}
