//! The credentials workflows (Huginn's user credentials: a named value per user that
//! templates read with `{% credential NAME %}`): list, read, create, update, delete.
//!
//! Credentials are private to their owner, admins included: every query filters by the
//! owner's id. Values are sealed here, before the write: the clear value never reaches
//! the writer or the database; no error message repeats it.

use super::AccountError;
use crate::secrets::{SecretError, purpose};
use crate::store::Store;
use crate::store::credential_cache as cache;
use crate::store::credentials::{self as table, CredentialChanges, CredentialRow, MODES, Saved};

/// Longest name, in characters (Huginn's column is a 255-character string).
const NAME_MAX: usize = 255;
/// Largest value, in bytes (Huginn's column is a 64 KiB text).
const VALUE_MAX: usize = 65_535;

/// The fields of a save: `None` keeps the stored value (on update), `Some(None)` is an
/// explicit null. No Debug: it holds the value.
pub struct CredentialFields {
    pub credential_name: Option<Option<String>>,
    pub credential_value: Option<Option<String>>,
    pub mode: Option<Option<String>>,
}

/// A credential with its value opened (or why it cannot be: it was sealed with a key
/// this hub does not have). No Debug: it holds the value.
pub struct Opened {
    pub row: CredentialRow,
    pub value: Result<String, SecretError>,
}

fn not_found(id: i64) -> AccountError {
    AccountError::NotFound {
        what: "credential",
        id,
    }
}

/// Checks and trims the fields given; `creating` makes name and value required.
/// Every problem is reported, not just the first; none repeats the value.
fn validate(
    input: CredentialFields,
    creating: bool,
) -> Result<(CredentialChanges, Option<String>), AccountError> {
    let mut problems = Vec::new();
    let name = match input.credential_name {
        None if creating => Some(None),
        other => other,
    };
    let name = name.map(|n| n.unwrap_or_default().trim().to_string());
    match &name {
        Some(n) if n.is_empty() => problems.push("credential_name: can't be blank".to_string()),
        Some(n) if n.chars().count() > NAME_MAX => problems.push(format!(
            "credential_name: is too long (at most {NAME_MAX} characters)"
        )),
        _ => {}
    }
    let value = match input.credential_value {
        None if creating => Some(None),
        other => other,
    };
    let value = value.map(|v| v.unwrap_or_default().trim().to_string());
    match &value {
        Some(v) if v.is_empty() => problems.push("credential_value: can't be blank".to_string()),
        Some(v) if v.len() > VALUE_MAX => problems.push(format!(
            "credential_value: is too long (at most {VALUE_MAX} bytes)"
        )),
        _ => {}
    }
    let mode = match input.mode {
        None => None,
        Some(Some(m)) if MODES.contains(&m.as_str()) => Some(m),
        Some(m) => {
            problems.push(format!(
                "mode: must be text or java_script, not {}",
                m.map_or("null".to_string(), |m| format!("{m:?}"))
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(AccountError::invalid("credential", problems.join("; ")));
    }
    let changes = CredentialChanges {
        credential_name: name,
        sealed_value: None,
        mode,
    };
    Ok((changes, value))
}

fn saved(s: Saved, id: Option<i64>) -> Result<CredentialRow, AccountError> {
    match s {
        Saved::Row(r) => Ok(r),
        Saved::NameTaken(name) => Err(AccountError::Taken {
            field: "credential_name",
            message: format!(
                "credential_name: has already been taken: you already have a credential named {name:?}"
            ),
        }),
        Saved::NotFound => Err(not_found(id.unwrap_or_default())),
        Saved::AtLimit(max) => Err(AccountError::AtLimit(format!(
            "you already have {max} credentials, the most one user may have \
             ([accounts] max_credentials_per_user); delete one you no longer use, or ask \
             the operator to raise the limit"
        ))),
    }
}

/// One page of the owner's credentials: ids above `after`, at most `limit`.
pub async fn page(
    store: &Store,
    owner: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<CredentialRow>, AccountError> {
    Ok(store
        .read(move |c| table::page(c, owner, after, limit))
        .await?)
}

/// The owner's credential `id` with its value opened.
pub async fn read(store: &Store, owner: i64, id: i64) -> Result<Opened, AccountError> {
    let row = store
        .read(move |c| table::find(c, owner, id))
        .await?
        .ok_or_else(|| not_found(id))?;
    let value = store
        .keys()
        .open(purpose::USER_CREDENTIALS, &row.sealed_value);
    Ok(Opened { row, value })
}

/// Validates, seals and saves the fields: a new credential when `id` is None (refused
/// when the owner already has `max`, 0: no limit), else an update of the owner's
/// credential `id`.
async fn save(
    store: &Store,
    owner: i64,
    id: Option<i64>,
    max: u64,
    input: CredentialFields,
) -> Result<CredentialRow, AccountError> {
    let (mut changes, value) = validate(input, id.is_none())?;
    changes.sealed_value = value.map(|v| store.keys().seal(purpose::USER_CREDENTIALS, &v));
    let done = cache::write(store, owner, move |c| match id {
        None => table::insert_within(c, owner, max, &changes),
        Some(id) => table::update(c, owner, id, &changes),
    })
    .await?;
    saved(done, id)
}

/// A new credential of the owner, unless they already have `max`
/// (`[accounts] max_credentials_per_user`; 0: no limit).
pub async fn create(
    store: &Store,
    owner: i64,
    max: u64,
    input: CredentialFields,
) -> Result<CredentialRow, AccountError> {
    save(store, owner, None, max, input).await
}

/// Changes the fields given of the owner's credential `id`.
pub async fn update(
    store: &Store,
    owner: i64,
    id: i64,
    input: CredentialFields,
) -> Result<CredentialRow, AccountError> {
    save(store, owner, Some(id), 0, input).await
}

/// Sets the owner's credential `name` to `value`, creating it (mode `text`) when the
/// owner has none by that name: Huginn's `find_or_initialize_by(credential_name:)` and
/// save, what a java_script agent's `this.credential(name, value)` does. The same
/// checks as a save through the API, the limit of `max` credentials included; the
/// lookup and the write are one write, so two agents setting one new name cannot both
/// create it.
pub async fn set_named(
    store: &Store,
    owner: i64,
    max: u64,
    name: &str,
    value: &str,
) -> Result<CredentialRow, AccountError> {
    let input = CredentialFields {
        credential_name: Some(Some(name.to_string())),
        credential_value: Some(Some(value.to_string())),
        mode: None,
    };
    let (mut changes, value) = validate(input, true)?;
    changes.sealed_value = value.map(|v| store.keys().seal(purpose::USER_CREDENTIALS, &v));
    let name = changes.credential_name.clone().unwrap_or_default();
    let done = cache::write(store, owner, move |c| {
        match table::id_by_name(c, owner, &name)? {
            Some(id) => {
                let value_only = CredentialChanges {
                    credential_name: None,
                    sealed_value: changes.sealed_value.clone(),
                    mode: None,
                };
                table::update(c, owner, id, &value_only)
            }
            None => table::insert_within(c, owner, max, &changes),
        }
    })
    .await?;
    saved(done, None)
}

pub async fn delete(store: &Store, owner: i64, id: i64) -> Result<(), AccountError> {
    let gone = cache::write(store, owner, move |c| table::delete(c, owner, id)).await?;
    if !gone {
        return Err(not_found(id));
    }
    Ok(())
}
