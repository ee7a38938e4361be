//! One run of an imap_folder agent against its server (async-imap over tokio): connect
//! through the target guard (the name is resolved once and the very addresses checked
//! are dialled), TLS with the webpki roots when `ssl`, LOGIN, then for each folder
//! SELECT, find the mails past the last seen UID, judge each, and mark or delete the
//! matched ones. The first visit to a folder (or a new UIDVALIDITY) only records where
//! the folder stands, as Huginn does. Everything is bounded: the whole run by a
//! timeout, the mails a run reads by count and size (the rest wait for the next run).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_imap::types::Flag;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Settings;
use super::mail::{Verdict, judge};
use crate::agents::dial::{ConnectError, connect};

/// How long a whole run may take (connect, login, every folder).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Mails read per folder per run; the rest are left for the next run.
pub const MAX_MAILS_PER_FOLDER: usize = 200;
/// The largest mail read; a bigger one is logged and passed over.
pub const MAX_MAIL_BYTES: u32 = 10 * 1024 * 1024;
/// Message-Ids remembered to emit a mail found twice only once (Huginn's IDCACHE_SIZE).
pub const NOTIFIED_SIZE: usize = 100;

/// What a run found and did.
#[derive(Debug, Default)]
pub struct RunResult {
    pub events: Vec<serde_json::Value>,
    pub logs: Vec<String>,
    /// Set when the run failed; what was done before it still counts.
    pub error: Option<ImapError>,
    /// UIDVALIDITY → the last UID seen, for every folder reached.
    pub lastseen: BTreeMap<u32, u32>,
    pub notified: Vec<String>,
}

/// Why a run stopped short.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("TLS setup failed: {0}")]
    TlsSetup(rustls::Error),
    #[error("{host:?} is not a name TLS can verify: {message}")]
    NotTlsName { host: String, message: String },
    #[error("the TLS handshake with {0} timed out")]
    HandshakeTimeout(String),
    #[error("the TLS handshake with {host} failed: {source}")]
    Handshake {
        host: String,
        source: std::io::Error,
    },
    #[error("the server closed the connection before its greeting")]
    NoGreeting,
    #[error("reading the server's greeting failed: {0}")]
    Greeting(std::io::Error),
    /// The server answered a command (`LOGIN`, `SELECT "INBOX"`, …) with an error.
    #[error("IMAP {command} failed: {source}")]
    Command {
        command: String,
        source: async_imap::error::Error,
    },
    #[error("the IMAP session took longer than {}s", RUN_TIMEOUT.as_secs())]
    Timeout,
}

/// `command` failed with `source`.
fn imap_err(command: &str, source: async_imap::error::Error) -> ImapError {
    ImapError::Command {
        command: command.to_string(),
        source,
    }
}

/// Runs the agent once. `lastseen` and `notified` are its memory at the start.
pub async fn run(
    settings: Arc<Settings>,
    lastseen: BTreeMap<u32, u32>,
    notified: Vec<String>,
    allow_private: bool,
) -> RunResult {
    let mut out = RunResult {
        notified,
        ..RunResult::default()
    };
    let port = settings
        .port
        .unwrap_or(if settings.ssl { 993 } else { 143 });
    out.logs.push(format!(
        "Connecting to {}{}{}",
        settings.host,
        settings.port.map(|p| format!(":{p}")).unwrap_or_default(),
        if settings.ssl { " via SSL" } else { "" }
    ));
    let work = async {
        let tcp = connect(&settings.host, port, allow_private).await?;
        if settings.ssl {
            let tls = tls_connect(&settings.host, tcp).await?;
            session(&settings, tls, &lastseen, &mut out).await
        } else {
            session(&settings, tcp, &lastseen, &mut out).await
        }
    };
    let result = match actix_rt::time::timeout(RUN_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(ImapError::Timeout),
    };
    if let Err(e) = result {
        out.error = Some(e);
    }
    out.logs.push("Connection closed".into());
    out
}

/// TLS on `tcp`, verified against the webpki roots for `host`.
async fn tls_connect(
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ImapError> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(ImapError::TlsSetup)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| ImapError::NotTlsName {
        host: host.to_string(),
        message: e.to_string(),
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    actix_rt::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| ImapError::HandshakeTimeout(host.to_string()))?
        .map_err(|source| ImapError::Handshake {
            host: host.to_string(),
            source,
        })
}

async fn session<S>(
    settings: &Settings,
    stream: S,
    lastseen: &BTreeMap<u32, u32>,
    out: &mut RunResult,
) -> Result<(), ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let mut client = async_imap::Client::new(stream);
    match client.read_response().await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(ImapError::NoGreeting),
        Err(e) => return Err(ImapError::Greeting(e)),
    }
    out.logs
        .push(format!("Logging in as {}", settings.username));
    let mut imap = client
        .login(&settings.username, &settings.password)
        .await
        .map_err(|(e, _)| imap_err("LOGIN", e))?;
    let result = folders(settings, &mut imap, lastseen, out).await;
    // A failed LOGOUT changes nothing the run did.
    let _ = imap.logout().await;
    result
}

async fn folders<S>(
    settings: &Settings,
    imap: &mut async_imap::Session<S>,
    lastseen: &BTreeMap<u32, u32>,
    out: &mut RunResult,
) -> Result<(), ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    for folder in &settings.folders {
        out.logs.push(format!("Selecting the folder: {folder}"));
        let mailbox = imap
            .select(encode_utf7(folder))
            .await
            .map_err(|e| imap_err(&format!("SELECT {folder:?}"), e))?;
        let uidvalidity = mailbox.uid_validity.unwrap_or(0);
        match lastseen.get(&uidvalidity) {
            Some(&last) => new_mail(settings, imap, folder, uidvalidity, last, out).await?,
            None => initial_status(imap, uidvalidity, mailbox.exists, out).await?,
        }
    }
    Ok(())
}

/// A folder seen for the first time (or with a new UIDVALIDITY): its highest UID is
/// recorded and nothing is emitted.
async fn initial_status<S>(
    imap: &mut async_imap::Session<S>,
    uidvalidity: u32,
    exists: u32,
    out: &mut RunResult,
) -> Result<(), ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    out.logs.push(format!(
        "Recording the initial status: {}",
        plural(exists as usize, "existing mail")
    ));
    // An empty folder is recorded too (Huginn records nothing, so the first
    // mails to arrive would be taken for the initial state and never emitted).
    note_seen(&mut out.lastseen, uidvalidity, 0);
    if exists > 0 {
        let fetched: Vec<_> = imap
            .fetch(exists.to_string(), "UID")
            .await
            .map_err(|e| imap_err("FETCH", e))?
            .try_collect()
            .await
            .map_err(|e| imap_err("FETCH", e))?;
        if let Some(uid) = fetched.iter().filter_map(|f| f.uid).max() {
            note_seen(&mut out.lastseen, uidvalidity, uid);
        }
    }
    Ok(())
}

/// The mails above `last` in the selected folder: each wanted one read and judged, at
/// most `MAX_MAILS_PER_FOLDER` a run.
async fn new_mail<S>(
    settings: &Settings,
    imap: &mut async_imap::Session<S>,
    folder: &str,
    uidvalidity: u32,
    last: u32,
    out: &mut RunResult,
) -> Result<(), ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    note_seen(&mut out.lastseen, uidvalidity, last);
    let listed: Vec<_> = imap
        .uid_fetch(
            format!("{}:*", last.saturating_add(1)),
            "(UID FLAGS RFC822.SIZE)",
        )
        .await
        .map_err(|e| imap_err("UID FETCH", e))?
        .try_collect()
        .await
        .map_err(|e| imap_err("UID FETCH", e))?;
    let (mut highest, mut wanted) = wanted(settings, &listed, last);
    out.logs.push(plural(
        wanted.len(),
        match settings.conditions.is_unread {
            Some(true) => "new unread mail",
            Some(false) => "new read mail",
            None => "new mail",
        },
    ));
    if wanted.len() > MAX_MAILS_PER_FOLDER {
        out.logs.push(format!(
            "Reading the first {MAX_MAILS_PER_FOLDER} now; the others wait for the next run"
        ));
        wanted.truncate(MAX_MAILS_PER_FOLDER);
        highest = wanted.last().map_or(last, |w| w.0);
    }
    for (uid, size) in wanted {
        if size.is_some_and(|s| s > MAX_MAIL_BYTES) {
            out.logs.push(format!(
                "Passing over mail UID {uid}: it is larger than {} MB",
                MAX_MAIL_BYTES / (1024 * 1024)
            ));
        } else {
            one_mail(settings, imap, folder, uid, out).await?;
        }
        // What is done stays done if a later mail fails.
        note_seen(&mut out.lastseen, uidvalidity, uid);
    }
    note_seen(&mut out.lastseen, uidvalidity, highest);
    Ok(())
}

/// The highest UID listed, and the (UID, size) of each listed mail above `last` that
/// the `is_unread` condition wants, in UID order.
fn wanted(
    settings: &Settings,
    listed: &[async_imap::types::Fetch],
    last: u32,
) -> (u32, Vec<(u32, Option<u32>)>) {
    let mut highest = last;
    let mut wanted: Vec<(u32, Option<u32>)> = Vec::new();
    for f in listed {
        let Some(uid) = f.uid else { continue };
        highest = highest.max(uid);
        if uid <= last {
            continue;
        }
        let seen = f.flags().any(|fl| fl == Flag::Seen);
        if settings
            .conditions
            .is_unread
            .is_none_or(|unread| unread != seen)
        {
            wanted.push((uid, f.size));
        }
    }
    wanted.sort_unstable();
    wanted.dedup_by_key(|w| w.0);
    (highest, wanted)
}

/// Reads, judges and (when it matched) marks or deletes one mail.
async fn one_mail<S>(
    settings: &Settings,
    imap: &mut async_imap::Session<S>,
    folder: &str,
    uid: u32,
    out: &mut RunResult,
) -> Result<(), ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let fetched: Vec<_> = imap
        .uid_fetch(uid.to_string(), "BODY.PEEK[]")
        .await
        .map_err(|e| imap_err("UID FETCH", e))?
        .try_collect()
        .await
        .map_err(|e| imap_err("UID FETCH", e))?;
    let Some(raw) = fetched.iter().find_map(|f| f.body().map(<[u8]>::to_vec)) else {
        return Ok(());
    };
    let verdict = judge(
        &raw,
        folder,
        &settings.conditions,
        &settings.shape,
        &mut out.logs,
    );
    if !settle(verdict, out) {
        return Ok(());
    }
    if settings.mark_as_read {
        out.logs.push("Marking as read".into());
        store(imap, uid, "+FLAGS (\\Seen)").await?;
    }
    if settings.delete {
        out.logs.push("Deleting".into());
        store(imap, uid, "+FLAGS (\\Deleted)").await?;
        let _: Vec<_> = imap
            .expunge()
            .await
            .map_err(|e| imap_err("EXPUNGE", e))?
            .try_collect()
            .await
            .map_err(|e| imap_err("EXPUNGE", e))?;
    }
    Ok(())
}

/// Emits a matched mail unless its Message-Id was emitted before; false when it did
/// not match (it is then neither marked nor deleted).
pub fn settle(verdict: Verdict, out: &mut RunResult) -> bool {
    let Verdict::Matched {
        message_id,
        payload,
    } = verdict
    else {
        return false;
    };
    let id_text = message_id.clone().unwrap_or_default();
    if message_id
        .as_ref()
        .is_some_and(|id| out.notified.contains(id))
    {
        out.logs
            .push(format!("Ignoring mail: {id_text} (already notified)"));
    } else {
        out.logs
            .push(format!("Emitting an event for mail: {id_text}"));
        out.events.push(payload);
        if let Some(id) = message_id {
            remember(&mut out.notified, id);
        }
    }
    true
}

async fn store<S>(imap: &mut async_imap::Session<S>, uid: u32, what: &str) -> Result<(), ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let _: Vec<_> = imap
        .uid_store(uid.to_string(), what)
        .await
        .map_err(|e| imap_err("UID STORE", e))?
        .try_collect()
        .await
        .map_err(|e| imap_err("UID STORE", e))?;
    Ok(())
}

/// Huginn's Seen: a UIDVALIDITY's last UID only grows.
fn note_seen(seen: &mut BTreeMap<u32, u32>, uidvalidity: u32, uid: u32) {
    let e = seen.entry(uidvalidity).or_insert(uid);
    *e = (*e).max(uid);
}

/// Huginn's Notified: the most recent Message-Ids, about [`NOTIFIED_SIZE`] of them.
pub fn remember(notified: &mut Vec<String>, id: String) {
    if notified.len() > NOTIFIED_SIZE {
        let excess = notified.len() - NOTIFIED_SIZE;
        notified.drain(..excess);
    }
    notified.push(id);
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3), as Huginn's
/// `Net::IMAP.encode_utf7`: `&` is `&-`, non-ASCII runs are `&<base64 of UTF-16>-`.
pub fn encode_utf7(name: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut out = String::new();
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if !run.is_empty() {
            let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine.encode(bytes).replace('/', ","));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_in_modified_utf7() {
        assert_eq!(encode_utf7("INBOX"), "INBOX");
        assert_eq!(encode_utf7("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(encode_utf7("日本語"), "&ZeVnLIqe-");
    }

    #[test]
    fn notified_keeps_the_recent_ids() {
        let mut n: Vec<String> = (0..150).map(|i| i.to_string()).collect();
        remember(&mut n, "new".into());
        assert_eq!(n.len(), NOTIFIED_SIZE + 1);
        assert_eq!(n.last().map(String::as_str), Some("new"));
    }
}
