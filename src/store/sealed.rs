//! The secret columns brought to the form the keyring wants: signing and signature
//! secrets and users' credential values sealed with the current key, incoming-webhook
//! tokens as digests. It runs at
//! every start (so rows written in clear by earlier versions are converted, and a key
//! rotation that was interrupted is finished) and is the work of
//! `muninn secrets rotate-key`. One transaction: a crash leaves the rows as they were,
//! and clear or old-key values keep opening until the next run converts them.

use std::path::Path;

use diesel::prelude::*;

use super::schema::{deliveries, incoming_webhooks, mail_outbox, subscriptions};
use super::{Conn, StoreError, credentials};
use crate::secrets::{
    KEY_ENV, KeySource, Keyring, RotationLock, is_token_digest, purpose, token_digest,
};

/// The stored form of a subscription without secrets: it holds nothing to seal.
pub const NO_SECRETS: &str = "[]";

/// What one run changed.
#[derive(Debug, Default)]
pub struct Resealed {
    /// Values (re)sealed or hashed.
    pub converted: usize,
    /// Values that did not open with any key of the keyring, left as they were, each
    /// with its row and reason. They stay unusable (their subscription holds its
    /// deliveries, their endpoint refuses requests, a credential renders empty) until
    /// set again through the API.
    pub unreadable: Vec<String>,
}

impl Resealed {
    /// Re-seals one value; `None` when it is already current.
    fn reseal(
        &mut self,
        keys: &Keyring,
        purpose: &str,
        stored: &str,
        row: String,
    ) -> Option<String> {
        if keys.is_current(stored) {
            return None;
        }
        match keys.open(purpose, stored) {
            Ok(clear) => {
                self.converted += 1;
                Some(keys.seal(purpose, &clear))
            }
            Err(e) => {
                self.unreadable.push(format!("{row}: {e}"));
                None
            }
        }
    }
}

/// Brings every secret column to its current form (see the module comment).
///
/// SQLite leaves the bytes of a replaced value in the page's free space and the old
/// page in the WAL, so a clear value (or one sealed with a retired key) would outlive
/// its conversion in the file. `secure_delete` zeroes what the updates free, and the
/// checkpoint moves the new pages into the database file and empties the WAL.
pub fn reseal_all(conn: &mut Conn, keys: &Keyring) -> Result<Resealed, StoreError> {
    let convert = |c: &mut Conn| {
        let mut done = Resealed::default();
        reseal_subscriptions(c, keys, &mut done)?;
        reseal_incoming(c, keys, &mut done)?;
        reseal_credentials(c, keys, &mut done)?;
        reseal_delivery_requests(c, keys, &mut done)?;
        reseal_mail_outbox(c, keys, &mut done)?;
        Ok::<_, StoreError>(done)
    };
    if conn.is_pg() {
        // PostgreSQL keeps replaced row versions until VACUUM reclaims them; there is
        // no per-connection setting that zeroes them, so only the transaction is shared.
        return conn.transaction(convert);
    }
    diesel::sql_query("PRAGMA secure_delete = ON").execute(conn)?;
    let done = immediate(conn, convert);
    diesel::sql_query("PRAGMA secure_delete = OFF").execute(conn)?;
    let done = done?;
    if done.converted > 0
        && let Err(e) = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(conn)
    {
        tracing::warn!(error = %e, "checkpoint after converting secrets failed; the old values leave the WAL at the next checkpoint");
    }
    Ok(done)
}

/// `f` in a SQLite `BEGIN IMMEDIATE` transaction (the write lock taken at the start,
/// as the conversion writes), begun on the raw connection and ended through the
/// multi-connection, which hands both to the same transaction manager.
fn immediate<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if let super::DbConn::Sqlite(raw) = conn {
        AnsiTransactionManager::begin_transaction_sql(raw, "BEGIN IMMEDIATE")?;
    } else {
        <Conn as Connection>::TransactionManager::begin_transaction(conn)?;
    }
    match f(conn) {
        Ok(v) => {
            <Conn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(v)
        }
        Err(e) => {
            // The write's own error is the one to report.
            let _ = <Conn as Connection>::TransactionManager::rollback_transaction(conn);
            Err(e)
        }
    }
}

fn reseal_subscriptions(
    c: &mut Conn,
    keys: &Keyring,
    done: &mut Resealed,
) -> Result<(), StoreError> {
    let rows: Vec<(i64, String)> = subscriptions::table
        .select((subscriptions::id, subscriptions::secrets))
        .load(c)?;
    for (id, stored) in rows {
        // An empty list holds no secret and stays readable without any key.
        if stored.trim() == NO_SECRETS {
            continue;
        }
        let row = format!("subscription {id}");
        if let Some(sealed) = done.reseal(keys, purpose::SUBSCRIPTION_SECRETS, &stored, row) {
            diesel::update(subscriptions::table.find(id))
                .set(subscriptions::secrets.eq(sealed))
                .execute(c)?;
        }
    }
    Ok(())
}

fn reseal_credentials(c: &mut Conn, keys: &Keyring, done: &mut Resealed) -> Result<(), StoreError> {
    for (id, stored) in credentials::all_for_reseal(c)? {
        let row = format!("user credential {id}");
        if let Some(sealed) = done.reseal(keys, purpose::USER_CREDENTIALS, &stored, row) {
            credentials::set_sealed(c, id, &sealed)?;
        }
    }
    Ok(())
}

fn reseal_delivery_requests(
    c: &mut Conn,
    keys: &Keyring,
    done: &mut Resealed,
) -> Result<(), StoreError> {
    let rows: Vec<(i64, Option<String>)> = deliveries::table
        .select((deliveries::id, deliveries::request))
        .filter(deliveries::request.is_not_null())
        .load(c)?;
    for (id, stored) in rows {
        let Some(stored) = stored else { continue };
        let row = format!("delivery {id}");
        if let Some(sealed) = done.reseal(keys, purpose::DELIVERY_REQUESTS, &stored, row) {
            diesel::update(deliveries::table.find(id))
                .set(deliveries::request.eq(Some(sealed)))
                .execute(c)?;
        }
    }
    Ok(())
}

/// Mails waiting in the outbox (dead ones too: they are kept to be read).
fn reseal_mail_outbox(c: &mut Conn, keys: &Keyring, done: &mut Resealed) -> Result<(), StoreError> {
    let rows: Vec<(i64, String)> = mail_outbox::table
        .select((mail_outbox::id, mail_outbox::message))
        .load(c)?;
    for (id, stored) in rows {
        let row = format!("queued mail {id}");
        if let Some(sealed) = done.reseal(keys, purpose::MAIL_OUTBOX, &stored, row) {
            diesel::update(mail_outbox::table.find(id))
                .set(mail_outbox::message.eq(sealed))
                .execute(c)?;
        }
    }
    Ok(())
}

type IncomingSecrets = (i64, String, Option<String>, Option<String>);

fn reseal_incoming(c: &mut Conn, keys: &Keyring, done: &mut Resealed) -> Result<(), StoreError> {
    let rows: Vec<IncomingSecrets> = incoming_webhooks::table
        .select((
            incoming_webhooks::id,
            incoming_webhooks::token,
            incoming_webhooks::previous_token,
            incoming_webhooks::signature,
        ))
        .load(c)?;
    for (id, token, previous, signature) in rows {
        if !is_token_digest(&token) {
            done.converted += 1;
            diesel::update(incoming_webhooks::table.find(id))
                .set(incoming_webhooks::token.eq(token_digest(&token)))
                .execute(c)?;
        }
        if let Some(p) = previous.filter(|p| !is_token_digest(p)) {
            done.converted += 1;
            diesel::update(incoming_webhooks::table.find(id))
                .set(incoming_webhooks::previous_token.eq(token_digest(&p)))
                .execute(c)?;
        }
        if let Some(s) = signature {
            let row = format!("incoming webhook {id}");
            if let Some(sealed) = done.reseal(keys, purpose::INCOMING_SIGNATURE, &s, row) {
                diesel::update(incoming_webhooks::table.find(id))
                    .set(incoming_webhooks::signature.eq(sealed))
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{KEY_ENV} holds one key, so there is nothing to rotate to: put the new key first and keep the old one after it ({KEY_ENV}=<new>,<old>; make a key with `openssl rand -base64 32`), run this again, then set {KEY_ENV}=<new>"
    )]
    EnvNeedsNewKey,
}

/// What a key rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub new_id: String,
    /// The keys no longer needed (drop them from `MUNINN_SECRET_KEY` when it is used;
    /// the key file no longer holds them).
    pub retired: Vec<String>,
    pub source: KeySource,
    pub resealed: Resealed,
}

/// `muninn secrets rotate-key`: with the key file, a new key goes in front of the old
/// ones (saved before any row changes, so every row opens whatever happens next), every
/// secret is re-sealed with it in one transaction, then the file keeps only the new
/// key. With `MUNINN_SECRET_KEY` the operator supplies the new key first in the list.
/// Refused while a hub runs on `data_dir` (see `RotationLock`); a hub started after an
/// interrupted rotation finishes the re-sealing itself.
pub fn rotate_key(
    conn: &mut Conn,
    data_dir: &Path,
    env: Option<&str>,
) -> Result<Rotation, RotateError> {
    let _lock = RotationLock::exclusive(data_dir)?;
    let ring = Keyring::load(data_dir, env)?;
    let ring = match ring.source() {
        KeySource::Env if ring.key_ids().len() < 2 => return Err(RotateError::EnvNeedsNewKey),
        KeySource::Env | KeySource::Memory => ring,
        KeySource::File(_) => {
            let next = ring.with_new_key();
            next.save()?;
            next
        }
    };
    let resealed = reseal_all(conn, &ring)?;
    let after = ring.current_only();
    after.save()?;
    let new_id = ring.current_id().to_string();
    Ok(Rotation {
        retired: ring
            .key_ids()
            .into_iter()
            .filter(|id| *id != new_id)
            .collect(),
        new_id,
        source: ring.source().clone(),
        resealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::subscriptions as subs;
    use crate::store::{incoming_webhooks, test_conn, test_webhook_agent};

    fn clear_rows(conn: &mut Conn) -> (crate::ids::SubscriptionId, crate::ids::IncomingWebhookId) {
        let agent = test_webhook_agent(conn).unwrap();
        let sub: crate::ids::SubscriptionId = diesel::insert_into(subscriptions::table)
            .values((
                subscriptions::user_id.eq(agent.user_id),
                subscriptions::name.eq("s"),
                subscriptions::url.eq("http://example.com/"),
                subscriptions::event_types.eq("[]"),
                subscriptions::secrets.eq(r#"[{"secret":"clear-one","expires_at":null}]"#),
                subscriptions::created_at.eq(crate::store::now()),
                subscriptions::updated_at.eq(crate::store::now()),
            ))
            .returning(subscriptions::id)
            .get_result(conn)
            .unwrap();
        let changes = incoming_webhooks::IncomingChanges {
            agent_id: Some(agent.id),
            name: Some("w".into()),
            signature: Some(Some(r#"{"scheme":"slack","secret":"sig-two"}"#.into())),
            ..Default::default()
        };
        let w = incoming_webhooks::insert(conn, agent.user_id, "whk_three", &changes).unwrap();
        incoming_webhooks::rotate(conn, w.id, "whk_four", Some(crate::store::now())).unwrap();
        (sub, w.id)
    }

    #[test]
    fn clear_rows_are_sealed_and_hashed_once() {
        let (_dir, mut conn) = test_conn();
        let (sub, hook) = clear_rows(&mut conn);
        let keys = Keyring::ephemeral();
        let done = reseal_all(&mut conn, &keys).unwrap();
        assert_eq!(done.converted, 4, "{done:?}");
        assert!(done.unreadable.is_empty());
        let s = subs::find(&mut conn, sub).unwrap().unwrap();
        assert!(keys.is_current(&s.secrets));
        assert!(
            keys.open(purpose::SUBSCRIPTION_SECRETS, &s.secrets)
                .unwrap()
                .contains("clear-one")
        );
        let w = incoming_webhooks::find(&mut conn, hook).unwrap().unwrap();
        assert_eq!(w.token, token_digest("whk_four"));
        assert_eq!(w.previous_token, Some(token_digest("whk_three")));
        let sig = w.signature.unwrap();
        assert_eq!(
            keys.open(purpose::INCOMING_SIGNATURE, &sig).unwrap(),
            r#"{"scheme":"slack","secret":"sig-two"}"#
        );
        // Idempotent: nothing left to do.
        let again = reseal_all(&mut conn, &keys).unwrap();
        assert_eq!(again.converted, 0);
    }

    #[test]
    fn values_no_key_opens_are_reported_and_left_alone() {
        let (_dir, mut conn) = test_conn();
        let (sub, _) = clear_rows(&mut conn);
        let first = Keyring::ephemeral();
        reseal_all(&mut conn, &first).unwrap();
        let before = subs::find(&mut conn, sub).unwrap().unwrap().secrets;
        let other = Keyring::ephemeral();
        let done = reseal_all(&mut conn, &other).unwrap();
        assert_eq!(done.converted, 0);
        assert_eq!(done.unreadable.len(), 2, "{:?}", done.unreadable);
        assert!(done.unreadable[0].starts_with(&format!("subscription {sub}:")));
        let after = subs::find(&mut conn, sub).unwrap().unwrap().secrets;
        assert_eq!(before, after);
    }

    #[test]
    fn credential_values_are_sealed_and_follow_the_key() {
        let (_dir, mut conn) = test_conn();
        let user = crate::store::users::insert(&mut conn, "u", false).unwrap();
        let changes = credentials::CredentialChanges {
            credential_name: Some("k".into()),
            sealed_value: Some("clear-cred-value".into()),
            mode: None,
        };
        credentials::insert(&mut conn, user.id, &changes).unwrap();
        let first = Keyring::ephemeral();
        assert_eq!(reseal_all(&mut conn, &first).unwrap().converted, 1);
        let stored = credentials::sealed_by_name(&mut conn, user.id).unwrap()["k"].clone();
        assert!(first.is_current(&stored), "{stored}");
        assert_eq!(
            first.open(purpose::USER_CREDENTIALS, &stored).unwrap(),
            "clear-cred-value"
        );
        // Another key cannot open it: reported by row, left as it was.
        let done = reseal_all(&mut conn, &Keyring::ephemeral()).unwrap();
        assert_eq!(done.unreadable.len(), 1, "{:?}", done.unreadable);
        assert!(done.unreadable[0].starts_with("user credential "));
        assert!(!done.unreadable[0].contains("clear-cred-value"));
    }
}
