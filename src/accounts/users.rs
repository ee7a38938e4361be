//! The users workflows: read and change oneself, list and create users (creating one
//! also issues its first token, shown once).

use super::{AccountError, AccountsRunning, checked_name};
use crate::store::users::{self, UserRow};
use crate::store::{Store, api_tokens};

/// What makes a new user.
#[derive(Debug)]
pub struct NewUser {
    pub name: String,
    pub admin: bool,
    /// Where email agents send when they name no recipients.
    pub email: Option<String>,
}

/// Said when a token outlives its user.
const USER_GONE: &str = "the user of this token no longer exists";

/// A trimmed address, or None for blank; an error names the field.
pub fn checked_email(email: Option<String>) -> Result<Option<String>, AccountError> {
    match email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
    {
        None => Ok(None),
        Some(e) if e.len() <= 254 && crate::mail::message::is_address(&e) => Ok(Some(e)),
        Some(e) => Err(AccountError::invalid(
            "email",
            format!("field \"email\" must be an email address such as bob@example.com (got {e:?})"),
        )),
    }
}

/// The caller's own user.
pub async fn me(store: &Store, id: i64) -> Result<UserRow, AccountError> {
    store
        .read(move |c| users::find(c, id))
        .await?
        .ok_or_else(|| AccountError::Unauthorized(USER_GONE.into()))
}

/// Sets (or, with a blank or null address, removes) the caller's email address.
pub async fn set_my_email(
    store: &Store,
    id: i64,
    email: Option<String>,
) -> Result<UserRow, AccountError> {
    let email = checked_email(email)?;
    store
        .writer()
        .write(move |c, _| {
            users::set_email(c, id, email.as_deref())?;
            users::find(c, id)
        })
        .await?
        .ok_or_else(|| AccountError::Unauthorized(USER_GONE.into()))
}

/// One page of users: ids above `after`, at most `limit`.
pub async fn page(store: &Store, after: i64, limit: i64) -> Result<Vec<UserRow>, AccountError> {
    Ok(store.read(move |c| users::page(c, after, limit)).await?)
}

/// Creates a user with its first token; the answer holds the only copy of the token.
pub async fn create(
    store: &Store,
    running: &impl AccountsRunning,
    input: NewUser,
) -> Result<(UserRow, String), AccountError> {
    let NewUser { name, admin, email } = input;
    let email = checked_email(email)?;
    let name = checked_name(&name)?;
    let token = api_tokens::generate();
    let t = token.clone();
    let row = store
        .writer()
        .write(move |c, _| {
            let mut u = users::insert(c, &name, admin)?;
            if email.is_some() {
                users::set_email(c, u.id, email.as_deref())?;
                u.email = email.clone();
            }
            api_tokens::insert(c, u.id, &t)?;
            Ok(u)
        })
        .await?;
    running.user_added(row.id).await?;
    Ok((row, token))
}
