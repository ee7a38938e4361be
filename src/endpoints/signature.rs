//! Signature verification of inbound requests, one scheme per endpoint:
//! `hmac-sha256` (GitHub, AGiXT, Agent Factory), `stripe`, `slack`, `standard`
//! (Standard Webhooks / Svix) and `shopify`. Every check runs over the raw body bytes
//! as received and compares MACs in constant time (`Mac::verify_slice`). The secret
//! is never printed: `Debug` hides it and errors never quote it. Under `standard` a
//! secret of `whpk_` public keys (a trust list, space-separated) verifies the
//! asymmetric `v1a` (ed25519) signatures instead of `v1` HMACs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::delivery::signer;

type HmacSha256 = Hmac<Sha256>;

/// Default accepted clock difference for timestamped schemes (the libraries' ±5 min).
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// Longest signature header value looked at; longer ones are refused unread.
const MAX_HEADER_CHARS: usize = 8 * 1024;

/// Most `whpk_` keys one endpoint trusts at once (a rotation needs two or three); it
/// bounds the ed25519 checks a request can cost.
const MAX_PUBLIC_KEYS: usize = 8;

/// Most signature entries checked against those keys (a sender rotating signs with a
/// few keys; more entries are ignored), so a long header costs bounded work.
const MAX_ENTRIES: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    HmacSha256,
    Stripe,
    Slack,
    Standard,
    Shopify,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::HmacSha256 => "hmac-sha256",
            Scheme::Stripe => "stripe",
            Scheme::Slack => "slack",
            Scheme::Standard => "standard",
            Scheme::Shopify => "shopify",
        }
    }

    fn parse(s: &str) -> Option<Scheme> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "hmac-sha256" | "hmac_sha256" | "github" => Scheme::HmacSha256,
            "stripe" => Scheme::Stripe,
            "slack" => Scheme::Slack,
            "standard" | "standard-webhooks" | "svix" => Scheme::Standard,
            "shopify" => Scheme::Shopify,
            _ => return None,
        })
    }

    fn default_header(self) -> &'static str {
        match self {
            Scheme::HmacSha256 => "x-webhook-signature",
            Scheme::Stripe => "stripe-signature",
            Scheme::Slack => "x-slack-signature",
            Scheme::Standard => "webhook-signature",
            Scheme::Shopify => "x-shopify-hmac-sha256",
        }
    }

    fn has_timestamp(self) -> bool {
        matches!(self, Scheme::Stripe | Scheme::Slack | Scheme::Standard)
    }
}

/// A configured check.
#[derive(Clone)]
pub struct SignatureCheck {
    pub scheme: Scheme,
    key: Vec<u8>,
    /// `standard` with `whpk_` keys: the trusted senders' ed25519 public keys; when
    /// set, only `v1a` entries are checked (there is no HMAC key).
    public_keys: Vec<ed25519_dalek::VerifyingKey>,
    /// The secret as given, kept only so an update without `secret` can keep it.
    secret: String,
    /// Lower-case header name carrying the signature.
    pub header: String,
    pub tolerance_seconds: i64,
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck")
            .field("scheme", &self.scheme.name())
            .field("header", &self.header)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// Why a request's signature was refused: the kind decides the answer (401
/// `invalid_signature` or `stale_timestamp`), the message is what the sender reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Missing, malformed, or not matching the body with the endpoint's secret.
    #[error("{0}")]
    Invalid(String),
    /// The timestamp is outside the tolerance: the signature may be right, but late.
    #[error("{0}")]
    Stale(String),
}

impl SignatureError {
    pub fn is_stale(&self) -> bool {
        matches!(self, SignatureError::Stale(_))
    }
}

fn fail(message: impl Into<String>) -> SignatureError {
    SignatureError::Invalid(message.into())
}

/// What is wrong with a `signature` object: the field, and a message that starts
/// with its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SignatureOptionError {
    /// `signature`, or `signature.scheme`, `.secret`, `.header`, `.tolerance_seconds`.
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> SignatureOptionError {
    SignatureOptionError {
        field,
        message: message.into(),
    }
}

impl SignatureCheck {
    /// Parses `{scheme, secret, header?, tolerance_seconds?}`. `previous` supplies the
    /// secret when the object omits it (an update that keeps the secret).
    // One idea: the fields of one signature object, read and checked in order, each refusal
    // naming its field; the order is the object's.
    pub fn from_json(
        value: &Value,
        previous: Option<&SignatureCheck>,
    ) -> Result<SignatureCheck, SignatureOptionError> {
        let obj = value.as_object().ok_or_else(|| bad(
            "signature",
            "signature must be an object {\"scheme\": ..., \"secret\": ..., \"header\"?: ..., \"tolerance_seconds\"?: ...}",
        ))?;
        for k in obj.keys() {
            if !["scheme", "secret", "header", "tolerance_seconds"].contains(&k.as_str()) {
                return Err(bad(
                    "signature",
                    format!(
                        "signature has an unknown key {k:?}: use scheme, secret, header, tolerance_seconds"
                    ),
                ));
            }
        }
        let scheme_text = obj.get("scheme").and_then(Value::as_str).ok_or_else(|| {
            bad(
                "signature.scheme",
                "signature.scheme is required: one of hmac-sha256, stripe, slack, standard, shopify",
            )
        })?;
        let scheme = Scheme::parse(scheme_text).ok_or_else(|| {
            bad(
                "signature.scheme",
                format!(
                    "signature.scheme {scheme_text:?} is not known: use hmac-sha256, stripe, slack, standard or shopify"
                ),
            )
        })?;
        let secret = match obj.get("secret") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) => match previous {
                Some(p) => p.secret.clone(),
                None => return Err(bad("signature.secret", "signature.secret is required")),
            },
            _ => {
                return Err(bad(
                    "signature.secret",
                    "signature.secret must be a non-empty string",
                ));
            }
        };
        let mut public_keys = Vec::new();
        let key = match scheme {
            Scheme::Standard if secret.trim().starts_with("whpk_") => {
                for k in secret.split(|c: char| c.is_whitespace() || c == ',') {
                    if !k.is_empty() {
                        public_keys.push(signer::public_key(k).map_err(|e| {
                            bad(
                                "signature.secret",
                                format!("signature.secret for standard v1a verification: {e}"),
                            )
                        })?);
                    }
                }
                if public_keys.len() > MAX_PUBLIC_KEYS {
                    return Err(bad(
                        "signature.secret",
                        format!(
                            "signature.secret lists {} public keys; at most {MAX_PUBLIC_KEYS} are trusted at once",
                            public_keys.len()
                        ),
                    ));
                }
                Vec::new()
            }
            Scheme::Standard => {
                let b = secret.strip_prefix("whsec_").unwrap_or(&secret);
                let decoded = B64.decode(b.trim()).map_err(|_| {
                    bad(
                        "signature.secret",
                        "signature.secret for the standard scheme must be whsec_ followed by base64 (v1), or whpk_ public keys (v1a)",
                    )
                })?;
                if decoded.is_empty() {
                    return Err(bad(
                        "signature.secret",
                        "signature.secret decodes to nothing",
                    ));
                }
                decoded
            }
            _ => secret.as_bytes().to_vec(),
        };
        let header = match obj.get("header") {
            None | Some(Value::Null) => scheme.default_header().to_string(),
            Some(Value::String(h)) if !h.trim().is_empty() => {
                let h = h.trim().to_ascii_lowercase();
                if actix_web::http::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(bad(
                        "signature.header",
                        format!("signature.header {h:?} is not a valid header name"),
                    ));
                }
                h
            }
            _ => {
                return Err(bad(
                    "signature.header",
                    "signature.header must be a header name",
                ));
            }
        };
        let tolerance_seconds = match obj.get("tolerance_seconds") {
            None | Some(Value::Null) => DEFAULT_TOLERANCE_SECONDS,
            Some(v) => match v.as_i64() {
                Some(n) if n > 0 => n,
                _ => {
                    return Err(bad(
                        "signature.tolerance_seconds",
                        "signature.tolerance_seconds must be a positive number of seconds",
                    ));
                }
            },
        };
        Ok(SignatureCheck {
            scheme,
            key,
            public_keys,
            secret,
            header,
            tolerance_seconds,
        })
    }

    /// The check as it may be shown: everything but the secret.
    pub fn public_json(&self) -> Value {
        let mut v =
            json!({"scheme": self.scheme.name(), "header": self.header, "secret_set": true});
        if self.scheme.has_timestamp() {
            v["tolerance_seconds"] = json!(self.tolerance_seconds);
        }
        v
    }

    /// The check as stored (with the secret).
    pub fn stored_json(&self) -> Value {
        json!({
            "scheme": self.scheme.name(),
            "secret": self.secret,
            "header": self.header,
            "tolerance_seconds": self.tolerance_seconds,
        })
    }

    fn matches(&self, parts: &[&[u8]], candidate: &[u8]) -> bool {
        // HMAC takes keys of any length, so `new_from_slice` does not fail; if it did,
        // nothing matches.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            return false;
        };
        for p in parts {
            mac.update(p);
        }
        mac.verify_slice(candidate).is_ok()
    }

    fn check_time(&self, ts: &str, now: i64) -> Result<(), SignatureError> {
        let t: i64 = ts.trim().parse().map_err(|_| {
            fail(format!(
                "the signature timestamp {:?} is not a Unix time in seconds",
                short(ts)
            ))
        })?;
        // The sender chooses `t`: any i64, so the distance is taken without overflow.
        let away = now.abs_diff(t);
        if away > self.tolerance_seconds.unsigned_abs() {
            return Err(SignatureError::Stale(format!(
                "the signature timestamp is stale: {t} is {away}s away from the server's time, more than the tolerance of {}s; check the sender's clock or send a fresh request",
                self.tolerance_seconds
            )));
        }
        Ok(())
    }

    /// Verifies a request at time `now` (Unix seconds). `header` looks up a request
    /// header case-insensitively.
    // One idea: one match arm per signature scheme, each the scheme's whole rule, kept side by
    // side so the schemes can be compared.
    pub fn verify<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let sig_name = match self.scheme {
            Scheme::Standard => "webhook-signature",
            _ => self.header.as_str(),
        };
        let value = match self.scheme {
            Scheme::Standard => header(sig_name).or_else(|| header("svix-signature")),
            _ => header(sig_name),
        }
        .ok_or_else(|| fail(format!("missing signature: send the {sig_name} header")))?;
        if value.len() > MAX_HEADER_CHARS {
            return Err(fail(format!("the {sig_name} header is too long")));
        }
        let bad = || {
            fail(format!(
                "invalid signature in {sig_name}: it does not match the body with this endpoint's secret"
            ))
        };
        match self.scheme {
            Scheme::HmacSha256 => {
                let hexsig = value.trim();
                let hexsig = hexsig.strip_prefix("sha256=").unwrap_or(hexsig);
                let raw = hex::decode(hexsig).map_err(|_| {
                    fail(format!(
                        "{sig_name} must be hex (optionally prefixed sha256=)"
                    ))
                })?;
                if self.matches(&[body], &raw) {
                    Ok(())
                } else {
                    Err(bad())
                }
            }
            Scheme::Shopify => {
                let raw = B64
                    .decode(value.trim())
                    .map_err(|_| fail(format!("{sig_name} must be base64")))?;
                if self.matches(&[body], &raw) {
                    Ok(())
                } else {
                    Err(bad())
                }
            }
            Scheme::Stripe => {
                let mut ts = None;
                let mut sigs = Vec::new();
                for item in value.split(',') {
                    match item.trim().split_once('=') {
                        Some(("t", t)) => ts = Some(t),
                        Some(("v1", s)) => sigs.push(s),
                        _ => {}
                    }
                }
                let ts = ts.ok_or_else(|| fail(format!("{sig_name} has no t= timestamp")))?;
                if sigs.is_empty() {
                    return Err(fail(format!("{sig_name} has no v1= signature")));
                }
                self.check_time(ts, now)?;
                let ok = sigs
                    .iter()
                    .filter_map(|s| hex::decode(s).ok())
                    .fold(false, |acc, raw| {
                        self.matches(&[ts.as_bytes(), b".", body], &raw) | acc
                    });
                if ok { Ok(()) } else { Err(bad()) }
            }
            Scheme::Slack => {
                let ts = header("x-slack-request-timestamp").ok_or_else(|| {
                    fail("missing signature timestamp: send the X-Slack-Request-Timestamp header")
                })?;
                self.check_time(ts, now)?;
                let hexsig = value
                    .trim()
                    .strip_prefix("v0=")
                    .ok_or_else(|| fail(format!("{sig_name} must start with v0=")))?;
                let raw = hex::decode(hexsig)
                    .map_err(|_| fail(format!("{sig_name} must be v0= followed by hex")))?;
                if self.matches(&[b"v0:", ts.trim().as_bytes(), b":", body], &raw) {
                    Ok(())
                } else {
                    Err(bad())
                }
            }
            Scheme::Standard => {
                let id = header("webhook-id")
                    .or_else(|| header("svix-id"))
                    .ok_or_else(|| fail("missing webhook-id header"))?;
                let ts = header("webhook-timestamp")
                    .or_else(|| header("svix-timestamp"))
                    .ok_or_else(|| fail("missing webhook-timestamp header"))?;
                self.check_time(ts, now)?;
                if !self.public_keys.is_empty() {
                    let signed = signer::signed_content(id, ts, body);
                    // Entries are bounded by the header length; every key is tried
                    // against every v1a entry, as a receiver mid-rotation must.
                    let ok = value.split_whitespace().take(MAX_ENTRIES).any(|entry| {
                        self.public_keys
                            .iter()
                            .any(|k| signer::verify_v1a(k, entry, &signed))
                    });
                    return if ok {
                        Ok(())
                    } else {
                        Err(fail(format!(
                            "invalid signature in {sig_name}: no v1a signature verifies with this endpoint's public keys"
                        )))
                    };
                }
                let mut ok = false;
                for entry in value.split_whitespace() {
                    if let Some(("v1", sig)) = entry.split_once(',')
                        && let Ok(raw) = B64.decode(sig)
                    {
                        ok |= self.matches(&[id.as_bytes(), b".", ts.as_bytes(), b".", body], &raw);
                    }
                }
                if ok { Ok(()) } else { Err(bad()) }
            }
        }
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: Value) -> SignatureCheck {
        SignatureCheck::from_json(&v, None).unwrap()
    }

    fn headers<'a>(h: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |n| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| *v)
        }
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let c = check(
            json!({"scheme": "standard", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}),
        );
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let h = [
            ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
            ("webhook-timestamp", "1649367553"),
            (
                "webhook-signature",
                "v1,bm9ub25zZW5zZQ== v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw= v1a,xyz",
            ),
        ];
        assert_eq!(c.verify(headers(&h), body, 1649367553 + 10), Ok(()));
        // Stale at the real clock.
        let err = c.verify(headers(&h), body, 1649367553 + 301).unwrap_err();
        assert!(err.is_stale(), "{err}");
        assert!(err.to_string().contains("stale"));
        // Tampered body.
        let err = c.verify(headers(&h), b"{}", 1649367553).unwrap_err();
        assert!(!err.is_stale());
    }

    #[test]
    fn github_published_vector() {
        let c = check(
            json!({"scheme": "hmac-sha256", "secret": "It's a Secret to Everybody", "header": "X-Hub-Signature-256"}),
        );
        let h = [(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )];
        assert_eq!(c.verify(headers(&h), b"Hello, World!", 0), Ok(()));
        let bare = [(
            "X-Hub-Signature-256",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )];
        assert_eq!(c.verify(headers(&bare), b"Hello, World!", 0), Ok(()));
        assert!(c.verify(headers(&bare), b"Hello, World?", 0).is_err());
        assert!(
            c.verify(headers(&[]), b"Hello, World!", 0)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }

    #[test]
    fn timestamps_are_bounded_both_ways_with_the_configured_tolerance() {
        let c = check(json!({"scheme": "slack", "secret": "k", "tolerance_seconds": 10}));
        let sign = |ts: i64| {
            let mut m = HmacSha256::new_from_slice(b"k").unwrap();
            m.update(format!("v0:{ts}:body").as_bytes());
            format!("v0={}", hex::encode(m.finalize().into_bytes()))
        };
        let now = 1_700_000_000;
        for (ts, ok) in [
            (now, true),
            (now - 10, true),
            (now - 11, false),
            (now + 11, false),
        ] {
            let sig = sign(ts);
            let t = ts.to_string();
            let h = [
                ("x-slack-signature", sig.as_str()),
                ("x-slack-request-timestamp", t.as_str()),
            ];
            let res = c.verify(headers(&h), b"body", now);
            assert_eq!(res.is_ok(), ok, "{ts}: {res:?}");
            if !ok {
                assert!(res.unwrap_err().is_stale());
            }
        }
    }

    #[test]
    fn stripe_accepts_any_v1_and_ignores_v0() {
        let c = check(json!({"scheme": "stripe", "secret": "whsec_abc"}));
        let mut m = HmacSha256::new_from_slice(b"whsec_abc").unwrap();
        m.update(b"100.{}");
        let good = hex::encode(m.finalize().into_bytes());
        let v = format!("t=100,v1={},v1={good},v0={good}", "00".repeat(32));
        assert_eq!(
            c.verify(headers(&[("Stripe-Signature", v.as_str())]), b"{}", 100),
            Ok(())
        );
        let only_v0 = format!("t=100,v0={good}");
        assert!(
            c.verify(
                headers(&[("Stripe-Signature", only_v0.as_str())]),
                b"{}",
                100
            )
            .is_err()
        );
    }

    #[test]
    fn secrets_are_hidden() {
        let c = check(json!({"scheme": "slack", "secret": "topsecret"}));
        assert!(!format!("{c:?}").contains("topsecret"));
        assert!(!c.public_json().to_string().contains("topsecret"));
    }

    #[test]
    fn bad_configs_say_why() {
        for (v, want) in [
            (json!({"scheme": "nope", "secret": "x"}), "not known"),
            (json!({"scheme": "slack"}), "secret is required"),
            (
                json!({"scheme": "standard", "secret": "whsec_!!"}),
                "base64",
            ),
            (
                json!({"scheme": "slack", "secret": "x", "tolerance_seconds": -1}),
                "positive",
            ),
        ] {
            let e = SignatureCheck::from_json(&v, None).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    /// svix's v1a vector (fixtures/vectors/standard_webhooks_v1a.json cites it).
    const SVIX_PK: &str = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=";
    const SVIX_SIG: &str = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==";

    #[test]
    fn standard_v1a_with_a_trusted_public_key() {
        let other = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
        let c = check(json!({"scheme": "standard", "secret": format!("{other} {SVIX_PK}")}));
        let sig = format!("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= {SVIX_SIG}");
        let h = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", sig.as_str()),
        ];
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(c.verify(headers(&h), body, 1614265330), Ok(()));
        let err = c
            .verify(headers(&h), br#"{"test": 2432232315}"#, 1614265330)
            .unwrap_err();
        assert!(
            err.to_string().contains("no v1a signature verifies"),
            "{err}"
        );
        // Only the listed keys are trusted.
        let c = check(json!({"scheme": "standard", "secret": other}));
        assert!(c.verify(headers(&h), body, 1614265330).is_err());
        // A v1 HMAC entry is not accepted by a public-key endpoint.
        let h1 = [
            h[0],
            h[1],
            (
                "webhook-signature",
                "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
            ),
        ];
        assert!(c.verify(headers(&h1), body, 1614265330).is_err());
    }

    #[test]
    fn standard_v1a_refuses_bad_public_keys() {
        for bad in [
            "whpk_AAAA",
            "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4",
            "whpk_ whsk_x",
        ] {
            let e = SignatureCheck::from_json(&json!({"scheme": "standard", "secret": bad}), None)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("signature.secret"), "{e}");
        }
        let nine = [SVIX_PK; MAX_PUBLIC_KEYS + 1].join(" ");
        let e = SignatureCheck::from_json(&json!({"scheme": "standard", "secret": nine}), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 8"), "{e}");
    }
}
