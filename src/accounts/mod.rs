//! Accounts: the users of the hub, their API tokens and their credentials, as callers
//! manage them. Each workflow checks ownership in its query, validates its input, writes
//! through the Writer and answers its own error type ([`AccountError`]); the HTTP
//! handlers extract, call one of these and map the answer. The running hub is told of
//! a new user through [`AccountsRunning`], so nothing here imports the Hub or HTTP.

pub mod credentials;
pub mod error;
pub mod tokens;
pub mod users;

pub use error::AccountError;

/// How the running hub learns that a user was added (so its per-user state, e.g. the
/// feeds' index, knows the user).
#[allow(async_fn_in_trait)]
pub trait AccountsRunning {
    async fn user_added(&self, id: i64) -> Result<(), AccountError>;
}

/// `name` trimmed, when it is 1 to 100 characters: the rule for user and token names.
fn checked_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(AccountError::invalid(
            "name",
            "field \"name\" must be 1 to 100 characters",
        ));
    }
    Ok(name)
}
