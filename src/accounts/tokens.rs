//! The API-token workflows: authenticate a request's token, and list, create, revoke and
//! rotate tokens. An admin token manages every user's tokens, other tokens their own
//! user's; a token never makes or manages a token of a wider scope than its own.

use super::{AccountError, checked_name};
use crate::store::Store;
use crate::store::api_tokens::{self, ApiTokenRow, Caller, Scope};

/// How stale `last_used_at` may get before a request records a new time: one write a
/// minute per token at most, not one per request.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// Who manages tokens: the caller's user, its user filter (`None` for an admin, who
/// sees everyone's) and the scope of the token it came with.
#[derive(Debug, Clone, Copy)]
pub struct TokenCaller {
    pub user_id: i64,
    pub scope: Option<i64>,
    pub token_scope: Scope,
}

/// The caller a request's bearer `token` stands for. `method` is the request's; a
/// `read` token may only GET or HEAD. Records the token's use (at most once a minute,
/// queued without waiting, and not at all while the writer is overloaded).
pub async fn authenticate(
    store: &Store,
    token: String,
    method: &str,
) -> Result<Caller, AccountError> {
    let caller = store
        .read(move |c| api_tokens::caller_for(c, &token))
        .await?
        .ok_or_else(|| AccountError::Unauthorized("invalid API token".into()))?;
    if caller.scope == Scope::Read && method != "GET" && method != "HEAD" {
        return Err(AccountError::Forbidden(format!(
            "this token is read-only (scope read): {method} needs a token of scope full or admin"
        )));
    }
    let stale = caller
        .last_used_at
        .is_none_or(|t| (crate::store::now() - t).num_seconds() >= TOUCH_EVERY_SECONDS);
    let writer = store.writer();
    if stale && !writer.is_overloaded() {
        // Queued now, nobody waits: the request does not pay for the commit.
        let id = caller.token_id;
        drop(writer.write_repeatable(move |c, _| api_tokens::touch(c, id)));
    }
    Ok(caller)
}

/// One page of the tokens the caller may see: ids above `after`, at most `limit`.
pub async fn page(
    store: &Store,
    caller: TokenCaller,
    after: i64,
    limit: i64,
) -> Result<Vec<ApiTokenRow>, AccountError> {
    let scope = caller.scope;
    Ok(store
        .read(move |c| api_tokens::page(c, scope, after, limit))
        .await?)
}

/// Makes a token for the caller's user; `scope` is `admin`, `full` or `read` (`full`
/// when `None`). The answer holds the only copy of the secret.
pub async fn create(
    store: &Store,
    caller: TokenCaller,
    name: &str,
    scope: Option<&str>,
) -> Result<(ApiTokenRow, String), AccountError> {
    let name = checked_name(name)?;
    let wanted = match scope {
        None => Scope::Full,
        Some(s) => Scope::parse(s).ok_or_else(|| {
            AccountError::invalid(
                "scope",
                format!("field \"scope\" must be {}, not {s:?}", Scope::NAMES),
            )
        })?,
    };
    if wanted > caller.token_scope {
        return Err(AccountError::Forbidden(format!(
            "a token of scope {} cannot make a token of scope {}",
            caller.token_scope.as_str(),
            wanted.as_str()
        )));
    }
    let owner = caller.user_id;
    Ok(store
        .writer()
        .write(move |c, _| api_tokens::create(c, owner, &name, wanted))
        .await?)
}

/// The live token `id` when the caller may manage it; not found otherwise (not
/// forbidden: ids of other users' tokens are not confirmed).
pub async fn find_manageable(
    store: &Store,
    caller: TokenCaller,
    id: i64,
) -> Result<ApiTokenRow, AccountError> {
    let scope = caller.scope;
    let row = store
        .read(move |c| api_tokens::find_owned(c, scope, id))
        .await?
        .ok_or(AccountError::NotFound { what: "token", id })?;
    if Scope::parse(&row.scope).is_some_and(|s| s > caller.token_scope) {
        return Err(AccountError::Forbidden(format!(
            "a token of scope {} cannot manage a token of scope {}",
            caller.token_scope.as_str(),
            row.scope
        )));
    }
    Ok(row)
}

/// Revokes token `id`; it stops working at once.
pub async fn revoke(store: &Store, caller: TokenCaller, id: i64) -> Result<(), AccountError> {
    find_manageable(store, caller, id).await?;
    let done = store
        .writer()
        .write(move |c, _| api_tokens::revoke(c, id))
        .await?;
    if !done {
        return Err(AccountError::NotFound { what: "token", id });
    }
    Ok(())
}

/// Gives token `id` a new secret (same id, name and scope); the old one stops working
/// at once. The answer holds the only copy of the new secret.
pub async fn rotate(
    store: &Store,
    caller: TokenCaller,
    id: i64,
) -> Result<(ApiTokenRow, String), AccountError> {
    find_manageable(store, caller, id).await?;
    let not_found = || AccountError::NotFound { what: "token", id };
    let token = store
        .writer()
        .write(move |c, _| api_tokens::rotate(c, id))
        .await?
        .ok_or_else(not_found)?;
    let row = store
        .read(move |c| api_tokens::find(c, id))
        .await?
        .ok_or_else(not_found)?;
    Ok((row, token))
}
