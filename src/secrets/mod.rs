//! Secrets at rest: the keyring that seals values the hub must later present in clear
//! (subscription signing secrets, inbound signature secrets, users' credentials) and
//! the one-way digest of values it only compares (incoming-webhook tokens).
//!
//! A leaf: it knows nothing of tables, actors or HTTP. Callers name a *purpose* (the
//! column a value lives in) when they seal and open; it is the AEAD's associated data,
//! so a sealed value copied into another column does not open there.
//!
//! Stored form: `enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`, XChaCha20-Poly1305
//! with a random 192-bit nonce per value (random nonces that long never collide in
//! practice, so no counter has to survive restarts). The key id is derived from the key
//! itself, so the keyring can say which key a value needs without storing any list.
//! A value without the `enc:` prefix is a clear value from before encryption: it still
//! opens (so nothing breaks before the start-time conversion rewrites it) and
//! `is_current` says it needs sealing.

mod compare;
mod keyfile;

pub use compare::constant_time_eq;

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use keyfile::{KEY_ENV, KEY_FILE, KeySource, LOCK_FILE, RotationLock};

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// The prefix of a token digest, so a digest is never mistaken for a token.
const DIGEST_PREFIX: &str = "sha256:";

/// Column names used as purposes, in one place so the store and the rotation agree.
/// A new sealed column adds its purpose here and its table to
/// `store::sealed::reseal_all`, so the start-time conversion and `rotate-key` cover it.
pub mod purpose {
    pub const SUBSCRIPTION_SECRETS: &str = "subscriptions.secrets";
    pub const INCOMING_SIGNATURE: &str = "incoming_webhooks.signature";
    pub const USER_CREDENTIALS: &str = "user_credentials.sealed_value";
    /// A post agent's prepared request (URL, headers, body) waiting in the delivery
    /// queue: rendered options, so it may hold the owner's credential values.
    pub const DELIVERY_REQUESTS: &str = "deliveries.request";
    /// An email agent's rendered mail waiting in the outbox (rendered options too).
    pub const MAIL_OUTBOX: &str = "mail_outbox.message";
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "a stored secret was sealed with key {id}, which this hub does not have ({source_desc}); restore the key file from your backup or set {KEY_ENV} to the key that sealed it"
    )]
    UnknownKey { id: String, source_desc: String },
    #[error(
        "a stored secret does not open with key {id}: it was altered, or moved from another column; set it again through the API"
    )]
    Tampered { id: String },
    #[error("a stored secret is not in the form enc:v1:<key id>:<base64>: {0}")]
    Malformed(String),
    #[error("the secret key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("{KEY_ENV}: {0}")]
    EnvKey(String),
    #[error(
        "the hub is running on this data directory (it holds {path}); stop it before rotating the key"
    )]
    HubRunning { path: String },
}

/// One key and its id.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
    bytes: [u8; KEY_LEN],
}

impl Key {
    fn new(bytes: [u8; KEY_LEN]) -> Key {
        let mut h = Sha256::new();
        h.update(b"muninn secret key id\0");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..4]);
        Key {
            id,
            cipher: XChaCha20Poly1305::new(&bytes.into()),
            bytes,
        }
    }

    fn random() -> Key {
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Key::new(bytes)
    }
}

/// The keys the hub seals with (the first, "current") and opens with (all of them).
/// Older keys are kept only while a rotation re-seals what they sealed.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Key>,
    source: KeySource,
}

// Keys never reach a log line, even through `{:?}` of a struct that holds the keyring.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .field("source", &self.source)
            .finish()
    }
}

impl Keyring {
    /// A keyring with one random key that lives only as long as the process: for tests
    /// and tools that never reopen what they sealed.
    pub fn ephemeral() -> Keyring {
        Keyring {
            keys: vec![Key::random()],
            source: KeySource::Memory,
        }
    }

    fn from_keys(keys: Vec<[u8; KEY_LEN]>, source: KeySource) -> Keyring {
        Keyring {
            keys: keys.into_iter().map(Key::new).collect(),
            source,
        }
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Seals `clear` for the column `purpose` with the current key.
    pub fn seal(&self, purpose: &str, clear: &str) -> String {
        let Some(key) = self.keys.first() else {
            // A keyring is never built empty (every constructor adds a key); refusing to
            // produce output would push a panic or an error type into every caller.
            return String::new();
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: clear.as_bytes(),
            aad: purpose.as_bytes(),
        };
        // Encryption fails only for messages longer than ChaCha20's 256 GiB stream.
        let sealed = key
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", key.id, B64.encode(raw))
    }

    /// Opens a stored value of column `purpose`. A clear value (stored before
    /// encryption) is returned as it is; a sealed one that does not open is an error,
    /// never a guess.
    pub fn open(&self, purpose: &str, stored: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix("enc:") else {
            return Ok(stored.to_string());
        };
        let rest = rest
            .strip_prefix("v1:")
            .ok_or_else(|| SecretError::Malformed("unknown version (this hub reads v1)".into()))?;
        let (id, body) = rest
            .split_once(':')
            .ok_or_else(|| SecretError::Malformed("no key id".into()))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey {
                id: id.to_string(),
                source_desc: self.source.to_string(),
            })?;
        let raw = B64
            .decode(body)
            .map_err(|e| SecretError::Malformed(format!("base64: {e}")))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed("too short".into()));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce)
            .map_err(|_| SecretError::Malformed("bad nonce length".into()))?;
        let clear = key
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Tampered { id: id.to_string() })?;
        String::from_utf8(clear).map_err(|_| SecretError::Tampered { id: id.to_string() })
    }

    /// Whether `stored` is sealed with the current key (else it needs (re)sealing: it is
    /// clear, or sealed with a key being rotated out).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(id, _)| id == self.current_id())
    }
}

/// Whether `stored` is a sealed value (of any key).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with("enc:")
}

/// The stored form of a token the hub only compares: `sha256:<hex>`. Looking a token up
/// by its digest means neither the stored row nor the lookup's timing tells anything
/// about the token.
pub fn token_digest(token: &str) -> String {
    format!(
        "{DIGEST_PREFIX}{}",
        hex::encode(Sha256::digest(token.as_bytes()))
    )
}

/// The digest of a stored token column: the column itself when it already holds a
/// digest, else (a clear token from before hashing) its digest.
pub fn stored_token_digest(stored: &str) -> String {
    if is_token_digest(stored) {
        stored.to_string()
    } else {
        token_digest(stored)
    }
}

pub fn is_token_digest(stored: &str) -> bool {
    stored.starts_with(DIGEST_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "subscriptions.secrets";

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let k = Keyring::ephemeral();
        let a = k.seal(P, "whsec_abc");
        let b = k.seal(P, "whsec_abc");
        assert_ne!(a, b, "same clear text must not seal to the same bytes");
        assert!(a.starts_with(&format!("enc:v1:{}:", k.current_id())));
        assert!(!a.contains("whsec_abc"));
        assert_eq!(k.open(P, &a).unwrap(), "whsec_abc");
        assert_eq!(k.open(P, &b).unwrap(), "whsec_abc");
        assert!(k.is_current(&a));
    }

    #[test]
    fn a_wrong_key_fails_closed_and_names_the_key() {
        let sealed = Keyring::ephemeral().seal(P, "s");
        let other = Keyring::ephemeral();
        let err = other.open(P, &sealed).unwrap_err();
        assert!(matches!(err, SecretError::UnknownKey { .. }), "{err}");
        assert!(err.to_string().contains(KEY_ENV), "{err}");
        assert!(!other.is_current(&sealed));
        // A value relabelled with another key's id: the tag does not verify.
        let k = Keyring::ephemeral();
        let relabelled = format!(
            "enc:v1:{}:{}",
            k.current_id(),
            sealed.rsplit(':').next().unwrap()
        );
        assert!(matches!(
            k.open(P, &relabelled),
            Err(SecretError::Tampered { .. })
        ));
    }

    #[test]
    fn tampering_is_detected() {
        let k = Keyring::ephemeral();
        let sealed = k.seal(P, "whsec_abc");
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut raw = B64.decode(body).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let bad = format!("{head}:{}", B64.encode(&raw));
            assert!(
                matches!(k.open(P, &bad), Err(SecretError::Tampered { .. })),
                "byte {i}"
            );
            raw[i] ^= 1;
        }
        // Moved to another column: the purpose is authenticated too.
        assert!(matches!(
            k.open("incoming_webhooks.signature", &sealed),
            Err(SecretError::Tampered { .. })
        ));
        for bad in [
            "enc:v2:x:y",
            "enc:v1:nokey",
            &format!("enc:v1:{}:!!", k.current_id()),
            &format!("enc:v1:{}:AAAA", k.current_id()),
        ] {
            assert!(k.open(P, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clear_values_still_open_and_need_sealing() {
        let k = Keyring::ephemeral();
        assert_eq!(
            k.open(P, r#"[{"secret":"x"}]"#).unwrap(),
            r#"[{"secret":"x"}]"#
        );
        assert!(!k.is_current(r#"[{"secret":"x"}]"#));
        assert!(!is_sealed("[]"));
    }

    #[test]
    fn an_old_key_opens_until_rotated_out() {
        let old = Key::random();
        let new = Key::random();
        let before = Keyring::from_keys(vec![old.bytes], KeySource::Memory);
        let sealed = before.seal(P, "v");
        let during = Keyring::from_keys(vec![new.bytes, old.bytes], KeySource::Memory);
        assert_eq!(during.open(P, &sealed).unwrap(), "v");
        assert!(!during.is_current(&sealed));
        let resealed = during.seal(P, &during.open(P, &sealed).unwrap());
        assert!(during.is_current(&resealed));
        let after = Keyring::from_keys(vec![new.bytes], KeySource::Memory);
        assert_eq!(after.open(P, &resealed).unwrap(), "v");
        assert!(after.open(P, &sealed).is_err());
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let k = Keyring::ephemeral();
        let shown = format!("{k:?}");
        assert!(shown.contains(k.current_id()));
        assert!(!shown.contains(&B64.encode(k.keys[0].bytes)));
    }

    #[test]
    fn token_digests() {
        assert_eq!(
            token_digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(stored_token_digest("abc"), token_digest("abc"));
        assert_eq!(
            stored_token_digest(&token_digest("abc")),
            token_digest("abc")
        );
    }
}
