//! Signing outgoing requests. `hex`: hex HMAC-SHA256 of the exact body bytes;
//! `sha256`: the same prefixed `sha256=`; `standard`: Standard Webhooks, `v1,<base64>`
//! over `msg_id.timestamp.body` with the key decoded from a `whsec_` secret, one entry
//! per valid key so receivers can rotate without downtime; `standard-v1a`: the same
//! headers with `v1a,<base64>` ed25519 signatures, made with a `whsk_` private key the
//! hub keeps while receivers verify with its `whpk_` public key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Why a scheme name or a key cannot be used; each message says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    #[error("signature_scheme {0:?} is not one of hex, sha256, standard, standard-v1a")]
    UnknownScheme(String),
    #[error(
        "a whsk_ key is an ed25519 private key: it signs only under signature_scheme standard-v1a, not {0}"
    )]
    PrivateKeyOutsideV1a(&'static str),
    #[error(
        "a whpk_ key is a public key, which cannot sign: give the whsk_ private key, or leave secret out to have a key pair generated"
    )]
    PublicKeyCannotSign,
    #[error(
        "must be an ed25519 private key, whsk_ followed by base64 (leave it out to have a key pair generated)"
    )]
    NotAPrivateKey,
    #[error("whsk_ must be followed by standard base64 (with = padding)")]
    PrivateKeyNotBase64,
    #[error(
        "whsk_ must hold 64 bytes (the 32-byte private key, then its 32-byte public key), not {0}"
    )]
    PrivateKeyLength(usize),
    #[error("the public half of this whsk_ key is not the public key of its private half")]
    MismatchedHalves,
    #[error(
        "must be an ed25519 public key, whpk_ followed by base64 (the key the sender publishes)"
    )]
    NotAPublicKey,
    #[error("whpk_ must be followed by standard base64 (with = padding)")]
    PublicKeyNotBase64,
    #[error("whpk_ must hold 32 bytes, not {0}")]
    PublicKeyLength(usize),
    #[error("whpk_ does not hold a valid ed25519 public key")]
    InvalidPublicKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Hex,
    Sha256,
    Standard,
    /// Standard Webhooks' asymmetric scheme (ed25519, `v1a`).
    StandardV1a,
}

impl Scheme {
    pub fn parse(s: &str) -> Result<Scheme, SignerError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "hex" => Ok(Scheme::Hex),
            "sha256" => Ok(Scheme::Sha256),
            "standard" | "standard-webhooks" => Ok(Scheme::Standard),
            "standard-v1a" | "v1a" | "ed25519" | "standard-ed25519" => Ok(Scheme::StandardV1a),
            other => Err(SignerError::UnknownScheme(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Hex => "hex",
            Scheme::Sha256 => "sha256",
            Scheme::Standard => "standard",
            Scheme::StandardV1a => "standard-v1a",
        }
    }

    /// Whether `secret` is key material this scheme can sign with. A `whsk_` key is an
    /// ed25519 private key and nothing else; any other text is an HMAC secret.
    pub fn check_secret(self, secret: &str) -> Result<(), SignerError> {
        match self {
            Scheme::StandardV1a => signing_key(secret).map(|_| ()),
            _ if secret.trim().starts_with("whsk_") => {
                Err(SignerError::PrivateKeyOutsideV1a(self.name()))
            }
            _ => Ok(()),
        }
    }

    /// A new secret for this scheme: a `whsk_` keypair for `standard-v1a`, else `whsec_`.
    pub fn generate(self) -> String {
        match self {
            Scheme::StandardV1a => generate_keypair(),
            _ => generate_secret(),
        }
    }
}

/// The private key of a `whsk_` secret: base64 of the 32-byte private key followed by
/// its 32-byte public key (svix's layout), or of the 32-byte private key alone.
pub fn signing_key(secret: &str) -> Result<SigningKey, SignerError> {
    let body = secret.trim().strip_prefix("whsk_").ok_or_else(|| {
        if secret.trim().starts_with("whpk_") {
            SignerError::PublicKeyCannotSign
        } else {
            SignerError::NotAPrivateKey
        }
    })?;
    let raw = B64
        .decode(body)
        .map_err(|_| SignerError::PrivateKeyNotBase64)?;
    let seed = <[u8; 32]>::try_from(raw.get(..32).unwrap_or_default())
        .map_err(|_| SignerError::PrivateKeyLength(raw.len()))?;
    let key = SigningKey::from_bytes(&seed);
    match raw.len() {
        32 => Ok(key),
        64 if key.verifying_key().as_bytes()[..] == raw[32..] => Ok(key),
        64 => Err(SignerError::MismatchedHalves),
        n => Err(SignerError::PrivateKeyLength(n)),
    }
}

/// A `whpk_` public key: base64 of 32 bytes that are a point on the curve.
pub fn public_key(text: &str) -> Result<VerifyingKey, SignerError> {
    let body = text
        .trim()
        .strip_prefix("whpk_")
        .ok_or(SignerError::NotAPublicKey)?;
    let raw = B64
        .decode(body)
        .map_err(|_| SignerError::PublicKeyNotBase64)?;
    let bytes = <[u8; 32]>::try_from(raw.as_slice())
        .map_err(|_| SignerError::PublicKeyLength(raw.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SignerError::InvalidPublicKey)
}

/// `whpk_` + base64 of the public key that verifies `key`'s signatures.
pub fn public_key_text(key: &SigningKey) -> String {
    format!("whpk_{}", B64.encode(key.verifying_key().as_bytes()))
}

/// The `whpk_` public key of a `whsk_` secret, if it is one.
pub fn public_key_of(secret: &str) -> Option<String> {
    signing_key(secret).ok().map(|k| public_key_text(&k))
}

/// A new `whsk_` key pair (private then public, as svix stores it).
pub fn generate_keypair() -> String {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let mut both = seed.to_vec();
    both.extend_from_slice(key.verifying_key().as_bytes());
    format!("whsk_{}", B64.encode(both))
}

/// Whether one `v1a,<base64>` entry of a signature header is `key`'s signature of
/// `signed` (strict verification: no malleable or small-order forms).
pub fn verify_v1a(key: &VerifyingKey, entry: &str, signed: &[u8]) -> bool {
    let Some(("v1a", sig)) = entry.split_once(',') else {
        return false;
    };
    let Ok(raw) = B64.decode(sig) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(&raw) else {
        return false;
    };
    key.verify_strict(signed, &sig).is_ok()
}

/// The bytes Standard Webhooks signs: `{msg_id}.{timestamp}.{body}`.
pub fn signed_content(message_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(message_id.len() + timestamp.len() + body.len() + 2);
    v.extend_from_slice(message_id.as_bytes());
    v.push(b'.');
    v.extend_from_slice(timestamp.as_bytes());
    v.push(b'.');
    v.extend_from_slice(body);
    v
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
        Scheme::Standard | Scheme::StandardV1a => {
            let ts = timestamp.to_string();
            let signed = signed_content(message_id, &ts, body);
            let sigs: Vec<String> = if scheme == Scheme::Standard {
                secrets
                    .iter()
                    .map(|s| format!("v1,{}", B64.encode(hmac(&standard_key(s), &[&signed]))))
                    .collect()
            } else {
                // Keys are checked when saved; one that does not parse cannot sign and
                // is left out rather than sent as a signature no one can verify.
                secrets
                    .iter()
                    .filter_map(|s| signing_key(s).ok())
                    .map(|k| format!("v1a,{}", B64.encode(k.sign(&signed).to_bytes())))
                    .collect()
            };
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

    /// The v1a known answers in fixtures/vectors (svix's, and one made with Python's
    /// `cryptography`); their sources are cited in the file.
    fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!(
            "../../fixtures/vectors/standard_webhooks_v1a.json"
        ))
        .unwrap()
    }

    #[test]
    fn v1a_signs_the_published_vectors() {
        let v = vectors();
        for case in v["sign"].as_array().unwrap() {
            let secret = case["secret"].as_str().unwrap().to_string();
            let h = headers(
                Scheme::StandardV1a,
                None,
                std::slice::from_ref(&secret),
                case["msg_id"].as_str().unwrap(),
                case["timestamp"].as_i64().unwrap(),
                case["body"].as_str().unwrap().as_bytes(),
            );
            assert_eq!(
                h[2].1,
                case["signature"].as_str().unwrap(),
                "{}",
                case["name"]
            );
            assert_eq!(
                public_key_of(&secret).as_deref(),
                case["public_key"].as_str(),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn v1a_verifies_the_published_vectors() {
        let v = vectors();
        for case in v["verify"].as_array().unwrap() {
            let key = public_key(case["public_key"].as_str().unwrap()).unwrap();
            let signed = signed_content(
                case["msg_id"].as_str().unwrap(),
                &case["timestamp"].as_i64().unwrap().to_string(),
                case["body"].as_str().unwrap().as_bytes(),
            );
            let ok = case["signature"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .any(|e| verify_v1a(&key, e, &signed));
            assert_eq!(ok, case["valid"].as_bool().unwrap(), "{}", case["name"]);
        }
    }

    #[test]
    fn v1a_refuses_bad_key_material() {
        let v = vectors();
        for k in v["bad_secret_keys"].as_array().unwrap() {
            let k = k.as_str().unwrap();
            assert!(Scheme::StandardV1a.check_secret(k).is_err(), "{k}");
        }
        for k in v["bad_public_keys"].as_array().unwrap() {
            let k = k.as_str().unwrap();
            assert!(public_key(k).is_err(), "{k}");
        }
        let sk = v["sign"][0]["secret"].as_str().unwrap();
        assert!(Scheme::Standard.check_secret(sk).is_err());
        assert!(Scheme::StandardV1a.check_secret(sk).is_ok());
    }

    #[test]
    fn v1a_rotation_signs_with_every_valid_key() {
        let (new, old) = (generate_keypair(), generate_keypair());
        let h = headers(
            Scheme::StandardV1a,
            None,
            &[new.clone(), old.clone()],
            "msg_1",
            7,
            b"{}",
        );
        let entries: Vec<&str> = h[2].1.split(' ').collect();
        assert_eq!(entries.len(), 2);
        let signed = signed_content("msg_1", "7", b"{}");
        for (secret, entry) in [(&new, entries[0]), (&old, entries[1])] {
            let key = public_key(&public_key_of(secret).unwrap()).unwrap();
            assert!(verify_v1a(&key, entry, &signed));
            assert!(!verify_v1a(
                &key,
                entry,
                &signed_content("msg_1", "8", b"{}")
            ));
        }
    }
}
