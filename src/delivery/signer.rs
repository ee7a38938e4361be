//! Signing outgoing requests. `hex`: hex HMAC-SHA256 of the exact body bytes;
//! `sha256`: the same prefixed `sha256=`; `standard`: Standard Webhooks, `v1,<base64>`
//! over `msg_id.timestamp.body` with the key decoded from a `whsec_` secret, one entry
//! per valid key so receivers can rotate without downtime.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Hex,
    Sha256,
    Standard,
}

impl Scheme {
    pub fn parse(s: &str) -> Result<Scheme, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "hex" => Ok(Scheme::Hex),
            "sha256" => Ok(Scheme::Sha256),
            "standard" | "standard-webhooks" => Ok(Scheme::Standard),
            other => Err(format!(
                "signature_scheme {other:?} is not one of hex, sha256, standard"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Hex => "hex",
            Scheme::Sha256 => "sha256",
            Scheme::Standard => "standard",
        }
    }
}

pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Webhook-Signature";

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The HMAC key of a Standard Webhooks secret: the base64 after `whsec_`. A secret
/// that is not base64 is used as raw bytes, so a user-chosen secret still works.
pub fn standard_key(secret: &str) -> Vec<u8> {
    let body = secret.strip_prefix("whsec_").unwrap_or(secret);
    B64.decode(body)
        .unwrap_or_else(|_| body.as_bytes().to_vec())
}

/// A new `whsec_` secret: 24 random bytes.
pub fn generate_secret() -> String {
    let mut key = [0u8; 24];
    rand::rng().fill_bytes(&mut key);
    format!("whsec_{}", B64.encode(key))
}

/// The signature headers for one attempt. `secrets` are the valid ones, newest first.
pub fn headers(
    scheme: Scheme,
    header: Option<&str>,
    secrets: &[String],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let Some(newest) = secrets.first() else {
        return Vec::new();
    };
    let header = header.unwrap_or(DEFAULT_SIGNATURE_HEADER).to_string();
    match scheme {
        Scheme::Hex => vec![(header, hex::encode(hmac(newest.as_bytes(), &[body])))],
        Scheme::Sha256 => vec![(
            header,
            format!("sha256={}", hex::encode(hmac(newest.as_bytes(), &[body]))),
        )],
        Scheme::Standard => {
            let ts = timestamp.to_string();
            let sigs: Vec<String> = secrets
                .iter()
                .map(|s| {
                    let mac = hmac(
                        &standard_key(s),
                        &[message_id.as_bytes(), b".", ts.as_bytes(), b".", body],
                    );
                    format!("v1,{}", B64.encode(mac))
                })
                .collect();
            vec![
                ("webhook-id".into(), message_id.to_string()),
                ("webhook-timestamp".into(), ts),
                ("webhook-signature".into(), sigs.join(" ")),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_known_answer() {
        let h = headers(
            Scheme::Standard,
            None,
            &["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_string()],
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(h[2].1, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn github_style_known_answer() {
        let h = headers(
            Scheme::Sha256,
            Some("X-Hub-Signature-256"),
            &["It's a Secret to Everybody".into()],
            "m",
            0,
            b"Hello, World!",
        );
        assert_eq!(
            h[0],
            (
                "X-Hub-Signature-256".to_string(),
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                    .to_string()
            )
        );
    }

    #[test]
    fn every_valid_key_signs_under_standard() {
        let h = headers(
            Scheme::Standard,
            None,
            &[generate_secret(), generate_secret()],
            "msg_1",
            1,
            b"{}",
        );
        assert_eq!(h[2].1.split(' ').count(), 2);
        assert!(generate_secret().starts_with("whsec_"));
    }
}
