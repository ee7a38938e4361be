//! The HTTP client of the delivery engine: one pooled, keep-alive awc client per
//! arbiter thread, connecting only through the target guard, never following
//! redirects, and reading at most 64 KiB of any response.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use futures_util::StreamExt;

use super::error::SendError;
use super::guard::{GuardedResolver, blocked_reason};
use super::policy::parse_retry_after;
use crate::store::delivery_attempts::MAX_BODY_CHARS;

thread_local! {
    static CLIENT: RefCell<Option<(bool, awc::Client)>> = const { RefCell::new(None) };
}

/// Installs rustls' crypto provider once per process (awc's TLS needs one).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client(allow_private: bool) -> awc::Client {
    CLIENT.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((flag, c)) = slot.as_ref()
            && *flag == allow_private
        {
            return c.clone();
        }
        install_crypto();
        let connector = awc::Connector::new()
            .connector(
                actix_tls::connect::Connector::new(actix_tls::connect::Resolver::custom(
                    GuardedResolver { allow_private },
                ))
                .service(),
            )
            .timeout(Duration::from_secs(10))
            .limit(256);
        let c = awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            .add_default_header(("User-Agent", USER_AGENT))
            .finish();
        *slot = Some((allow_private, c.clone()));
        c
    })
}

/// The `User-Agent` every send carries unless its own headers set one.
pub const USER_AGENT: &str = concat!("muninn/", env!("CARGO_PKG_VERSION"));

/// What one HTTP attempt saw.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status: Option<u16>,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
    pub retry_after: Option<Duration>,
    pub excerpt: Option<String>,
    pub error: Option<SendError>,
    pub duration: Duration,
}

/// POSTs `body` to `url` with `headers`, bounded by `timeout`.
pub async fn post(
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Duration,
    allow_private: bool,
) -> Sent {
    send("POST", url, headers, body, timeout, allow_private).await
}

/// Sends one request, with any method a post agent may use.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Duration,
    allow_private: bool,
) -> Sent {
    send_reading(
        method,
        url,
        headers,
        body,
        timeout,
        allow_private,
        MAX_BODY_CHARS,
    )
    .await
}

/// When `url` names its host by an IP literal (which the resolver's check never sees)
/// and that address is private, why it is refused.
fn literal_refusal(url: &str) -> Option<SendError> {
    let u = url::Url::parse(url).ok()?;
    let ip = match u.host()? {
        url::Host::Ipv4(v4) => std::net::IpAddr::V4(v4),
        url::Host::Ipv6(v6) => std::net::IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    let reason = blocked_reason(ip)?;
    Some(SendError::Refused(format!(
        "target address {ip} is {reason}; set delivery.allow_private_targets = true to allow private targets"
    )))
}

/// Like [`send`], keeping up to `max_body` bytes of the response (a fetched feed needs
/// all of it; an attempt log only an excerpt).
pub async fn send_reading(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Duration,
    allow_private: bool,
    max_body: usize,
) -> Sent {
    let started = Instant::now();
    let failed = |error: SendError| Sent {
        status: None,
        headers: Vec::new(),
        retry_after: None,
        excerpt: None,
        error: Some(error),
        duration: started.elapsed(),
    };
    // IP literals skip the resolver, so they are checked here.
    if !allow_private && let Some(refused) = literal_refusal(url) {
        return failed(refused);
    }
    let method =
        awc::http::Method::from_bytes(method.as_bytes()).unwrap_or(awc::http::Method::POST);
    let mut req = client(allow_private).request(method, url).timeout(timeout);
    for (name, value) in headers {
        req = req.insert_header((name.as_str(), value.as_str()));
    }
    let mut resp = match req.send_body(body).await {
        Ok(r) => r,
        Err(e) => return failed(SendError::from_awc(e, timeout)),
    };
    let status = resp.status().as_u16();
    let response_headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter_map(|(n, v)| {
            v.to_str()
                .ok()
                .map(|v| (n.as_str().to_string(), v.to_string()))
        })
        .collect();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let mut excerpt = Vec::new();
    let mut payload = resp.take_payload();
    let read = actix_rt::time::timeout(timeout, async {
        while let Some(chunk) = payload.next().await {
            let Ok(chunk) = chunk else { break };
            let room = max_body.saturating_sub(excerpt.len());
            excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if excerpt.len() >= max_body {
                break;
            }
        }
    })
    .await;
    let _ = read;
    Sent {
        status: Some(status),
        headers: response_headers,
        retry_after,
        excerpt: Some(String::from_utf8_lossy(&excerpt).into_owned()),
        error: None,
        duration: started.elapsed(),
    }
}
