//! One delivery session of a jabber agent: dial `jabber_server:jabber_port` through the
//! target guard, open the XML stream, upgrade it with STARTTLS (required: the password
//! is never sent in the clear), log in with SASL as `jabber_sender`, bind a resource,
//! send each message as a `chat` stanza and close the stream. Every element on the wire
//! is written and parsed by tokio-xmpp / xmpp-parsers; this file only orders the steps,
//! because the crate's own `Client` retries a refused login forever in a detached task
//! and trusts no authority but the public ones.
//!
//! Bounded: the whole session by [`SESSION_TIMEOUT`], each silence by the stream's
//! timeouts, and what the server may send by [`MAX_READ_BYTES`].

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio_xmpp::parsers::bind::{BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Id, Lang, Message};
use tokio_xmpp::parsers::{ns, starttls};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmppStream, XmppStreamElement,
    initiate_stream,
};
use tokio_xmpp::{Stanza, jid::BareJid, jid::Jid};

use super::error::XmppError;

/// How long one whole session may take (connect, TLS, login, every message, close).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may stay silent while an answer is awaited.
const SILENCE: Duration = Duration::from_secs(10);
/// The most bytes a session reads from the server (its answers are small).
pub const MAX_READ_BYTES: usize = 1024 * 1024;
/// The id of the resource-binding request.
const BIND_ID: &str = "bind-1";

/// Where and as whom a session logs in.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub server: String,
    pub port: u16,
    pub sender: BareJid,
    pub password: String,
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event_id: i64,
    pub receiver: Jid,
    pub body: String,
}

/// What the hub lends a session.
#[derive(Debug, Clone)]
pub struct Env {
    /// `delivery.allow_private_targets`.
    pub allow_private: bool,
    /// `[jabber] extra_ca_files`, trusted besides the webpki roots.
    pub extra_roots: Arc<Vec<CertificateDer<'static>>>,
}

/// What a session did: how many of its messages (in order) were sent, and why it
/// stopped short when it did.
#[derive(Debug)]
pub struct Delivered {
    pub sent: usize,
    pub error: Option<XmppError>,
}

/// Sends `messages` in one session.
pub async fn deliver(account: Account, messages: Vec<Outgoing>, env: Env) -> Delivered {
    let mut sent = 0;
    let work = session(&account, &messages, &env, &mut sent);
    let error = match actix_rt::time::timeout(SESSION_TIMEOUT, work).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(XmppError::Timeout {
            server: account.server.clone(),
            port: account.port,
        }),
    };
    Delivered { sent, error }
}

async fn session(
    account: &Account,
    messages: &[Outgoing],
    env: &Env,
    sent: &mut usize,
) -> Result<(), XmppError> {
    let timeouts = Timeouts {
        read_timeout: SILENCE,
        response_timeout: SILENCE,
    };
    let mut stream = login(account, env, ReadCap::Total(MAX_READ_BYTES), timeouts).await?;
    for m in messages {
        let mut message =
            Message::chat(Some(m.receiver.clone())).with_body(Lang(String::new()), m.body.clone());
        message.id = Some(Id(format!("muninn-event-{}", m.event_id)));
        stream
            .send(&XmppStreamElement::Stanza(Stanza::Message(message)))
            .await
            .map_err(XmppError::step("sending the message"))?;
        *sent += 1;
    }
    close(&mut stream).await;
    Ok(())
}

/// A logged-in stream with a bound resource.
pub type Session = XmppStream<BufStream<tokio_rustls::client::TlsStream<Capped>>>;

/// Dials the account's server through the target guard, upgrades with STARTTLS, logs
/// in and binds a resource; `cap` bounds what the server may send.
pub async fn login(
    account: &Account,
    env: &Env,
    cap: ReadCap,
    timeouts: Timeouts,
) -> Result<Session, XmppError> {
    let tcp =
        crate::agents::dial::connect(&account.server, account.port, env.allow_private).await?;
    let domain = account.sender.domain().as_str().to_string();
    let header = || StreamHeader {
        to: Some(Cow::Owned(domain.clone())),
        from: None,
        id: None,
    };
    let tcp = upgrade_with_starttls(Capped::new(tcp, cap), &domain, timeouts).await?;
    let (tls, binding) = tls_connect(&domain, tcp, &env.extra_roots).await?;

    // The encrypted stream: log in, then bind a resource.
    let pending = initiate_stream(BufStream::new(tls), ns::JABBER_CLIENT, header(), timeouts)
        .await
        .map_err(XmppError::step("opening the XMPP stream over TLS"))?;
    let (features, stream) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(XmppError::step("reading the server's stream features"))?;
    let Some(node) = account.sender.node() else {
        return Err(XmppError::NoUserName(account.sender.to_string()));
    };
    let creds = sasl::common::Credentials::default()
        .with_username(node.as_str())
        .with_password(account.password.clone())
        .with_channel_binding(binding);
    let reset = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
        .await
        .map_err(|e| XmppError::Login {
            jid: account.sender.to_string(),
            message: e.to_string(),
        })?;
    let (features, mut stream) = reset
        .send_header(header())
        .await
        .map_err(XmppError::step("reopening the stream after login"))?
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(XmppError::step("reading the server's stream features"))?;
    if !features.can_bind() {
        return Err(XmppError::NoBinding);
    }
    bind(&mut stream).await?;
    Ok(stream)
}

/// Opens the plain stream and upgrades it with STARTTLS (required: the password is
/// never sent in the clear); returns the connection for the TLS handshake.
async fn upgrade_with_starttls(
    tcp: Capped,
    domain: &str,
    timeouts: Timeouts,
) -> Result<Capped, XmppError> {
    let header = StreamHeader {
        to: Some(Cow::Owned(domain.to_string())),
        from: None,
        id: None,
    };
    // The plain stream: only STARTTLS is spoken on it.
    let pending = initiate_stream(BufStream::new(tcp), ns::JABBER_CLIENT, header, timeouts)
        .await
        .map_err(XmppError::step("opening the XMPP stream"))?;
    let (features, mut plain) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(XmppError::step("reading the server's stream features"))?;
    if !features.can_starttls() {
        return Err(XmppError::NoStartTls);
    }
    plain
        .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
            starttls::Request,
        )))
        .await
        .map_err(XmppError::step("sending STARTTLS"))?;
    loop {
        match next_element(&mut plain).await? {
            XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)) => break,
            XmppStreamElement::Starttls(_) => return Err(XmppError::StartTlsRefused),
            _ => {}
        }
    }
    Ok(plain.into_inner().into_inner())
}

/// Binds a resource the server chooses (RFC 6120 §7).
async fn bind<S: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut XmppStream<S>,
) -> Result<(), XmppError> {
    let request = Iq::from_set(BIND_ID, BindQuery::new(None));
    stream
        .send(&XmppStreamElement::Stanza(Stanza::Iq(request)))
        .await
        .map_err(XmppError::step("sending the resource binding request"))?;
    loop {
        let XmppStreamElement::Stanza(Stanza::Iq(iq)) = next_element(stream).await? else {
            continue;
        };
        match iq {
            Iq::Result {
                id,
                payload: Some(payload),
                ..
            } if id == BIND_ID => {
                return BindResponse::try_from(payload)
                    .map(|_| ())
                    .map_err(|e| XmppError::BindInvalid(e.to_string()));
            }
            Iq::Error { id, error, .. } if id == BIND_ID => {
                return Err(XmppError::BindRefused(format!(
                    "{:?}",
                    error.defined_condition
                )));
            }
            _ => {}
        }
    }
}

/// Ends the stream and waits (bounded) for the server to end its own, so the messages
/// are not cut off by a reset connection.
pub async fn close<S: AsyncBufRead + AsyncWrite + Unpin>(stream: &mut XmppStream<S>) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async { while next_element(stream).await.is_ok() {} };
    let _ = actix_rt::time::timeout(SILENCE, drain).await;
}

/// The next element the server sends; silence is bounded by the stream's timeouts.
pub async fn next_element<S: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut XmppStream<S>,
) -> Result<XmppStreamElement, XmppError> {
    loop {
        let Some(item) = stream.next().await else {
            return Err(XmppError::Closed);
        };
        match item.and_then(FallibleStreamElement::into_read_error) {
            Ok(XmppStreamElement::StreamError(e)) => {
                return Err(XmppError::StreamError(e.to_string()));
            }
            Ok(element) => return Ok(element),
            Err(ReadError::SoftTimeout) => {}
            Err(ReadError::StreamFooterReceived) => {
                return Err(XmppError::StreamEnded);
            }
            Err(e) => return Err(XmppError::step("reading from the server")(e)),
        }
    }
}

/// TLS on `tcp` for the sender's domain, verified against the webpki roots and the
/// configured extra authorities. Returns the channel binding SCRAM-PLUS may use.
async fn tls_connect(
    domain: &str,
    tcp: Capped,
    extra_roots: &[CertificateDer<'static>],
) -> Result<
    (
        tokio_rustls::client::TlsStream<Capped>,
        sasl::common::ChannelBinding,
    ),
    XmppError,
> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let (_, refused) = roots.add_parsable_certificates(extra_roots.iter().cloned());
    if refused > 0 {
        return Err(XmppError::ExtraCa(refused));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(XmppError::step("TLS setup"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(domain.to_string()).map_err(|e| XmppError::NotTlsName {
        name: domain.to_string(),
        message: e.to_string(),
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = actix_rt::time::timeout(SILENCE, connector.connect(name, tcp))
        .await
        .map_err(|_| XmppError::HandshakeTimeout(domain.to_string()))?
        .map_err(|source| XmppError::Handshake {
            domain: domain.to_string(),
            source,
        })?;
    let (_, connection) = tls.get_ref();
    // RFC 9266: the exporter binding is defined for TLS 1.3 only.
    let binding = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => connection
            .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
            .map(sasl::common::ChannelBinding::TlsExporter)
            .unwrap_or(sasl::common::ChannelBinding::None),
        _ => sasl::common::ChannelBinding::None,
    };
    Ok((tls, binding))
}

/// How much a connection may read from the server.
#[derive(Debug, Clone, Copy)]
pub enum ReadCap {
    /// At most this many bytes in all (a delivery session).
    Total(usize),
    /// At most this many bytes in each window of this length (a listening connection:
    /// it bounds the largest stanza and the rate the server may send at).
    PerWindow(usize, Duration),
}

/// A TCP stream that fails its reads once the server has sent more than its cap.
#[derive(Debug)]
pub struct Capped {
    inner: TcpStream,
    cap: ReadCap,
    left: usize,
    window_start: Instant,
}

impl Capped {
    fn new(inner: TcpStream, cap: ReadCap) -> Capped {
        let left = match cap {
            ReadCap::Total(n) | ReadCap::PerWindow(n, _) => n,
        };
        Capped {
            inner,
            cap,
            left,
            window_start: Instant::now(),
        }
    }
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let ReadCap::PerWindow(budget, window) = self.cap
            && self.window_start.elapsed() >= window
        {
            self.left = budget;
            self.window_start = Instant::now();
        }
        if self.left == 0 {
            let why = match self.cap {
                ReadCap::Total(n) => format!("the server sent more than {n} bytes"),
                ReadCap::PerWindow(n, w) => format!(
                    "the server sent more than {n} bytes within {} s",
                    w.as_secs()
                ),
            };
            return Poll::Ready(Err(std::io::Error::other(why)));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        this.left = this.left.saturating_sub(read);
        poll
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
