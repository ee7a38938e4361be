//! The protections every inbound endpoint shares, checked before the body is read:
//! IP allowlist, rate limit (an in-memory token bucket per endpoint, `ops::rate`: no
//! database write per request), body size; plus the parsed option set both URL forms accept
//! (`rate_limit`, `allowed_ips`, `signature`, `max_body_bytes`).

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;
use serde_json::Value;

pub use crate::net::parse_net;

use super::signature::SignatureCheck;
use super::{OwnRefusal, Rejection, WebResponse};

/// Endpoint-wide settings from `[inbound]` and `[server]`.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// For incoming webhooks (`/webhook/{token}`).
    pub default_rate_limit_per_minute: u32,
    /// For webhook agents' Huginn URLs, which Huginn does not limit.
    pub web_request_rate_limit_per_minute: u32,
    pub max_body_bytes: usize,
    pub idempotency_window_seconds: i64,
    pub log_retention: i64,
    pub recaptcha_verify_url: String,
}

// Built here from the config (not in `config`), so the config stays a leaf.
impl crate::config::Config {
    pub fn inbound_settings(&self) -> InboundSettings {
        InboundSettings {
            default_rate_limit_per_minute: self.inbound.default_rate_limit_per_minute,
            web_request_rate_limit_per_minute: self.inbound.web_request_rate_limit_per_minute,
            max_body_bytes: self.server.max_body_bytes,
            idempotency_window_seconds: self.inbound.idempotency_window_seconds,
            log_retention: self.inbound.log_retention,
            recaptcha_verify_url: self.inbound.recaptcha_verify_url.clone(),
        }
    }
}

impl Default for InboundSettings {
    fn default() -> Self {
        InboundSettings {
            default_rate_limit_per_minute: 100,
            web_request_rate_limit_per_minute: 0,
            max_body_bytes: 1024 * 1024,
            idempotency_window_seconds: 86_400,
            log_retention: 1000,
            recaptcha_verify_url: "https://www.google.com/recaptcha/api/siteverify".into(),
        }
    }
}

/// What is wrong with an endpoint's protection options: the option, and a message
/// that starts with its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtectionError {
    /// `rate_limit`, `allowed_ips`, `signature` or `max_body_bytes`.
    pub option: &'static str,
    pub message: String,
}

fn refused(option: &'static str, message: impl Into<String>) -> ProtectionError {
    ProtectionError {
        option,
        message: message.into(),
    }
}

/// The protection options of one endpoint, checked and parsed.
#[derive(Debug, Clone, Default)]
pub struct ProtectionOptions {
    /// Requests per minute; `None` uses the global default; `Some(0)` means no limit.
    pub rate_limit: Option<u32>,
    pub allowed_ips: Vec<IpNet>,
    pub signature: Option<SignatureCheck>,
    pub max_body_bytes: Option<usize>,
}

impl ProtectionOptions {
    /// Reads the options from an object (agent options or an API body). `previous`
    /// lends its signature secret to an update that omits it.
    pub fn from_json(
        v: &Value,
        previous: Option<&ProtectionOptions>,
    ) -> Result<Self, ProtectionError> {
        let rate_limit = match v.get("rate_limit") {
            None | Some(Value::Null) => None,
            Some(r) => match r
                .as_u64()
                .or_else(|| r.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(n) if n <= u64::from(u32::MAX) => Some(n as u32),
                _ => {
                    return Err(refused(
                        "rate_limit",
                        "rate_limit must be a number of requests per minute (0 for no limit)",
                    ));
                }
            },
        };
        let allowed_ips = match v.get("allowed_ips") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(parse_net)
                .collect::<Result<_, _>>()
                .map_err(|e| refused("allowed_ips", format!("allowed_ips: {e}")))?,
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i.as_str() {
                    Some(p) => parse_net(p)
                        .map_err(|e| refused("allowed_ips", format!("allowed_ips: {e}"))),
                    None => Err(refused(
                        "allowed_ips",
                        "allowed_ips: allowed_ips must be a list of strings",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(refused(
                    "allowed_ips",
                    "allowed_ips must be a list of addresses and CIDR ranges",
                ));
            }
        };
        let signature = match v.get("signature") {
            None | Some(Value::Null) => None,
            Some(s) => Some(
                SignatureCheck::from_json(s, previous.and_then(|p| p.signature.as_ref()))
                    .map_err(|e| refused("signature", e.message))?,
            ),
        };
        let max_body_bytes = match v.get("max_body_bytes") {
            None | Some(Value::Null) => None,
            Some(m) => match m.as_u64() {
                Some(n) if n > 0 => Some(n as usize),
                _ => {
                    return Err(refused(
                        "max_body_bytes",
                        "max_body_bytes must be a positive number of bytes",
                    ));
                }
            },
        };
        Ok(ProtectionOptions {
            rate_limit,
            allowed_ips,
            signature,
            max_body_bytes,
        })
    }

    pub fn allowed_ips_json(&self) -> Option<Value> {
        (!self.allowed_ips.is_empty()).then(|| {
            Value::Array(
                self.allowed_ips
                    .iter()
                    .map(|n| Value::String(show_net(n)))
                    .collect(),
            )
        })
    }
}

fn show_net(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

pub use crate::ops::rate::RateLimiter;

/// The live guard of one endpoint.
pub struct Guard {
    pub options: ProtectionOptions,
    limiter: RateLimiter,
    pub max_body_bytes: usize,
    /// Which endpoint this guards, for the rate-limit log lines ("agent 5").
    label: String,
    /// Set while requests are being answered 429, so the start and the end of a
    /// limited stretch are each logged once, not every refused request.
    limiting: bool,
}

/// What the pre-body checks decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Forbidden,
    RateLimited,
    TooLarge,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Forbidden => "ip_not_allowed",
            Refusal::RateLimited => "rate_limited",
            Refusal::TooLarge => "body_too_large",
        }
    }
}

impl Guard {
    pub fn new(options: ProtectionOptions, settings: &InboundSettings) -> Guard {
        let per_minute = options
            .rate_limit
            .unwrap_or(settings.default_rate_limit_per_minute);
        Guard {
            limiter: RateLimiter::new(per_minute, Instant::now()),
            max_body_bytes: options.max_body_bytes.unwrap_or(settings.max_body_bytes),
            options,
            label: "endpoint".into(),
            limiting: false,
        }
    }

    /// The endpoint's limit in requests per minute (0: none).
    pub fn per_minute(&self) -> u32 {
        self.limiter.per_minute
    }

    /// Names the endpoint in the rate-limit log lines.
    pub fn named(mut self, label: String) -> Guard {
        self.label = label;
        self
    }

    /// IP allowlist, then the rate limit, then a declared Content-Length.
    pub fn admit(
        &mut self,
        ip: Option<IpAddr>,
        content_length: Option<u64>,
    ) -> Result<usize, (Refusal, Rejection)> {
        if !self.options.allowed_ips.is_empty() {
            let allowed = ip.is_some_and(|ip| {
                let ip = canonical(ip);
                self.options.allowed_ips.iter().any(|n| n.contains(&ip))
            });
            if !allowed {
                let who = ip.map_or("unknown".to_string(), |i| i.to_string());
                return Err((
                    Refusal::Forbidden,
                    WebResponse::refuse(
                        OwnRefusal::IpNotAllowed,
                        format!(
                            "requests from {who} are not allowed by this endpoint's allowed_ips"
                        ),
                    ),
                ));
            }
        }
        let taken = self.limiter.take(Instant::now());
        if taken.is_err() != self.limiting {
            self.limiting = taken.is_err();
            rate_limit_signal(&self.label, self.limiting, self.limiter.per_minute);
        }
        if let Err(wait) = taken {
            return Err((
                Refusal::RateLimited,
                WebResponse::refuse(
                    OwnRefusal::RateLimited,
                    format!(
                        "rate limit of {} requests per minute exceeded; retry in {wait}s",
                        self.limiter.per_minute
                    ),
                )
                .with_header("Retry-After", wait.to_string()),
            ));
        }
        if let Some(len) = content_length
            && len > self.max_body_bytes as u64
        {
            return Err((Refusal::TooLarge, too_large(self.max_body_bytes)));
        }
        Ok(self.max_body_bytes)
    }
}

/// The WARN line of a rate-limited stretch starting or ending.
fn rate_limit_signal(endpoint: &str, started: bool, per_minute: u32) {
    if started {
        tracing::warn!(
            signal = "rate_limit_started",
            endpoint,
            per_minute,
            "endpoint started answering 429: requests exceed its rate limit"
        );
    } else {
        tracing::warn!(
            signal = "rate_limit_stopped",
            endpoint,
            per_minute,
            "endpoint stopped answering 429: requests are within its rate limit again"
        );
    }
}

pub fn too_large(limit: usize) -> Rejection {
    WebResponse::refuse(
        OwnRefusal::TooLarge,
        format!("the request body is larger than this endpoint's limit of {limit} bytes"),
    )
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address: the socket peer, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(xff) = forwarded_for else {
        return Some(peer);
    };
    let mut client = peer;
    for hop in xff.rsplit(',').take(32) {
        match hop.trim().parse::<IpAddr>().map(canonical) {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bucket_refills() {
        let t0 = Instant::now();
        let mut b = RateLimiter::new(2, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(30));
        assert!(b.take(t0 + std::time::Duration::from_secs(31)).is_ok());
    }

    #[test]
    fn allowlists_take_v4_v6_and_ranges() {
        let o = ProtectionOptions::from_json(
            &json!({"allowed_ips": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]}),
            None,
        )
        .unwrap();
        let mut g = Guard::new(o, &InboundSettings::default());
        assert!(g.admit(Some("10.1.2.3".parse().unwrap()), None).is_ok());
        assert!(
            g.admit(Some("::ffff:10.1.2.3".parse().unwrap()), None)
                .is_ok()
        );
        assert!(g.admit(Some("2001:db8::1".parse().unwrap()), None).is_ok());
        assert!(g.admit(Some("192.0.2.7".parse().unwrap()), None).is_ok());
        assert_eq!(
            g.admit(Some("192.0.2.8".parse().unwrap()), None)
                .unwrap_err()
                .0,
            Refusal::Forbidden
        );
        assert!(
            ProtectionOptions::from_json(&json!({"allowed_ips": ["10.0.0.300"]}), None).is_err()
        );
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = vec![parse_net("127.0.0.1").unwrap()];
        let xff = Some("203.0.113.9, 127.0.0.1");
        assert_eq!(
            client_ip(Some("127.0.0.1".parse().unwrap()), xff, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some("198.51.100.1".parse().unwrap()), xff, &trusted),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some("127.0.0.1".parse().unwrap()), xff, &[]),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
