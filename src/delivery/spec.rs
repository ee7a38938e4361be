//! A subscription as the engine uses it: the stored row, checked and compiled once.

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::filters::{Filters, TypePattern};
use super::policy::{RetryPolicy, Schedule};
use super::signer::Scheme;
pub use super::spec_error::{BodyError, SecretsError, SigningError, SpecError};
use crate::ids::{AgentId, SubscriptionId};
use crate::secrets::{Keyring, purpose};
use crate::store::subscriptions::SubscriptionRow;
use crate::template::object::{ObjectTemplate, stored_object};
use crate::template::{TemplateId, Templates, context_of};

/// A subscription's payload template: text that must render JSON, or an object.
pub enum PayloadTemplate {
    Text(Templates, TemplateId),
    Object(ObjectTemplate),
}

/// One signing secret; an old one keeps signing until it expires (rotation grace).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretEntry {
    pub secret: String,
    pub expires_at: Option<NaiveDateTime>,
}

pub use crate::store::sealed::NO_SECRETS as EMPTY;

/// The signing secrets of a stored `secrets` column (sealed, or clear from before
/// encryption). An error means they cannot be used: the subscription must not send.
pub fn open_secrets(keys: &Keyring, stored: &str) -> Result<Vec<SecretEntry>, SecretsError> {
    let clear = keys
        .open(purpose::SUBSCRIPTION_SECRETS, stored)
        .map_err(|e| SecretsError::Unopened(std::sync::Arc::new(e)))?;
    serde_json::from_str(&clear).map_err(|e| SecretsError::NotAList(e.to_string()))
}

/// The `secrets` column for `entries`, sealed with the current key. An empty list holds
/// no secret and stays `[]`, so subscriptions that never sign (a post agent's) do not
/// depend on the key.
pub fn seal_secrets(keys: &Keyring, entries: &[SecretEntry]) -> String {
    if entries.is_empty() {
        return EMPTY.into();
    }
    let clear = serde_json::to_string(entries).unwrap_or_else(|_| "[]".into());
    keys.seal(purpose::SUBSCRIPTION_SECRETS, &clear)
}

pub struct Spec {
    pub id: SubscriptionId,
    pub user_id: i64,
    pub url: String,
    pub event_types: Vec<TypePattern>,
    pub agent_id: Option<AgentId>,
    pub filters: Filters,
    pub headers: Vec<(String, String)>,
    pub template: Option<PayloadTemplate>,
    pub scheme: Scheme,
    pub signature_header: Option<String>,
    /// Err when the stored secrets do not open (key missing, value altered): the
    /// subscription then holds its deliveries rather than send them unsigned.
    pub secrets: Result<Vec<SecretEntry>, SecretsError>,
    pub policy: RetryPolicy,
    pub timeout: Duration,
    pub rate: Option<(u32, Duration)>,
    pub max_in_flight: usize,
    pub ordered: bool,
    /// Accepts new deliveries (not disabled).
    pub active: bool,
    /// Holds its deliveries without sending them.
    pub paused: bool,
    pub failure_threshold: u32,
    pub cooldown: Duration,
}

impl Spec {
    /// Compiles a stored row. Rows are validated when saved, so an error here means the
    /// row was changed behind the API's back; it is reported and the subscription idles.
    // One idea: compiling a stored row is one field after another, each a few lines; split by
    // field it would scatter one schema that is read top to bottom.
    pub fn from_row(row: &SubscriptionRow, keys: &Keyring) -> Result<Spec, SpecError> {
        let types: Vec<String> = serde_json::from_str(&row.event_types)
            .map_err(|e| SpecError::column("event_types", e))?;
        let event_types = types
            .iter()
            .map(|t| TypePattern::parse(t))
            .collect::<Result<_, _>>()?;
        let filters = match &row.filters {
            Some(f) => Filters::parse(
                &serde_json::from_str(f).map_err(|e| SpecError::column("filters", e))?,
            )?,
            None => Filters::default(),
        };
        let headers: serde_json::Map<String, Value> =
            serde_json::from_str(&row.headers).map_err(|e| SpecError::column("headers", e))?;
        let headers = headers
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        let template = match &row.payload_template {
            Some(t) => Some(match stored_object(t) {
                Some(object) => {
                    PayloadTemplate::Object(ObjectTemplate::new("payload_template", &object)?)
                }
                None => {
                    let mut ts = Templates::new();
                    let id = ts.add("payload_template", t)?;
                    PayloadTemplate::Text(ts, id)
                }
            }),
            None => None,
        };
        let schedule = match &row.retry_schedule {
            Some(s) => Schedule::Fixed(
                serde_json::from_str(s).map_err(|e| SpecError::column("retry_schedule", e))?,
            ),
            None => Schedule::Exponential {
                base_ms: row.retry_delay_ms.max(0) as u64,
                max_ms: row.max_retry_delay_ms.max(0) as u64,
                retries: row.retry_count.max(0) as u32,
            },
        };
        let scheme = Scheme::parse(&row.signature_scheme)?;
        let secrets = open_secrets(keys, &row.secrets);
        if let Ok(list) = &secrets {
            check_secrets(scheme, list)?;
        }
        Ok(Spec {
            id: row.id,
            user_id: row.user_id,
            url: row.url.clone(),
            event_types,
            agent_id: row.agent_id,
            filters,
            headers,
            template,
            scheme,
            signature_header: row.signature_header.clone(),
            secrets,
            policy: RetryPolicy { schedule },
            timeout: Duration::from_millis(row.timeout_ms.max(1) as u64),
            rate: row.rate_limit.filter(|r| *r > 0).map(|r| {
                (
                    r as u32,
                    Duration::from_millis(row.rate_limit_period_ms.max(1) as u64),
                )
            }),
            max_in_flight: row.max_in_flight.max(1) as usize,
            ordered: row.ordered,
            active: row.is_active,
            paused: row.paused,
            failure_threshold: row.failure_threshold.max(1) as u32,
            cooldown: Duration::from_millis(row.circuit_cooldown_ms.max(0) as u64),
        })
    }

    pub fn wants_type(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|p| p.matches(event_type))
    }

    /// The secrets that sign now, newest first; Err (with the reason) when they cannot
    /// be read, so no caller can fall back to sending unsigned.
    pub fn valid_secrets(&self, now: NaiveDateTime) -> Result<Vec<String>, SigningError> {
        let secrets = self
            .secrets
            .as_ref()
            .map_err(|e| SigningError::Secrets(e.clone()))?;
        let valid: Vec<String> = secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .map(|s| s.secret.clone())
            .collect();
        // A webhook that had secrets signs with one or sends nothing: the newest never
        // expires (rotation keeps it open-ended), so a list of expired ones was altered.
        if valid.is_empty() && !secrets.is_empty() {
            return Err(SigningError::AllExpired);
        }
        Ok(valid)
    }

    /// Why this subscription cannot sign, if it cannot.
    pub fn signing_error(&self) -> Option<&SecretsError> {
        self.secrets.as_ref().err()
    }

    /// The body sent: the envelope as JSON, or the payload template's JSON output.
    pub fn body(&self, envelope: &Value) -> Result<Vec<u8>, BodyError> {
        match &self.template {
            None => Ok(envelope.to_string().into_bytes()),
            Some(PayloadTemplate::Object(t)) => {
                Ok(t.render(&template_vars(envelope))?.to_string().into_bytes())
            }
            Some(PayloadTemplate::Text(ts, id)) => {
                let text = ts.render(id, &context_of(&template_vars(envelope)))?;
                let v: Value = serde_json::from_str(&text).map_err(|e| BodyError::NotJson {
                    reason: e.to_string(),
                    start: text.chars().take(200).collect::<String>(),
                })?;
                Ok(v.to_string().into_bytes())
            }
        }
    }
}

/// Refuses opened secrets the API would never have stored, which would otherwise send
/// unsigned or with a signature no one can verify: none under a scheme that always has
/// one (`standard`, `standard-v1a`), or one that does not fit the scheme. The error
/// stops the webhook as any other corrupt column does.
fn check_secrets(scheme: Scheme, list: &[SecretEntry]) -> Result<(), SecretsError> {
    if list.is_empty() && matches!(scheme, Scheme::Standard | Scheme::StandardV1a) {
        return Err(SecretsError::NoneForScheme {
            scheme: scheme.name(),
        });
    }
    for (index, s) in list.iter().enumerate() {
        scheme
            .check_secret(&s.secret)
            .map_err(|reason| SecretsError::Unfit {
                index,
                scheme: scheme.name(),
                reason,
            })?;
    }
    Ok(())
}

/// What a payload template can name: the envelope's fields (`event_type`, `data`,
/// ...); the payload's own top-level keys where the envelope has no such field
/// (TagoRUN's `{{user.email}}`, `{{device.name}}`); and `event` as TagoRUN prints it,
/// `{id, type, timestamp, data}`.
pub fn template_vars(envelope: &Value) -> Value {
    let mut vars = match envelope.get("data") {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    if let Value::Object(env) = envelope {
        for (k, v) in env {
            vars.insert(k.clone(), v.clone());
        }
    }
    vars.insert(
        "event".into(),
        serde_json::json!({
            "id": envelope.get("id"),
            "type": envelope.get("event_type"),
            "timestamp": envelope.get("timestamp"),
            "data": envelope.get("data"),
        }),
    );
    Value::Object(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scheme: &str, secrets: &str) -> SubscriptionRow {
        let at = chrono::NaiveDateTime::default();
        SubscriptionRow {
            id: SubscriptionId(1),
            user_id: 1,
            name: "n".into(),
            description: None,
            url: "https://example.com/hook".into(),
            event_types: r#"["*"]"#.into(),
            agent_id: None,
            filters: None,
            headers: "{}".into(),
            payload_template: None,
            signature_scheme: scheme.into(),
            signature_header: None,
            secrets: secrets.into(),
            retry_count: 3,
            retry_delay_ms: 1000,
            max_retry_delay_ms: 10_000,
            retry_schedule: None,
            timeout_ms: 1000,
            rate_limit: None,
            rate_limit_period_ms: 1000,
            max_in_flight: 1,
            ordered: false,
            is_active: true,
            paused: false,
            disabled_reason: None,
            failure_threshold: 5,
            circuit_cooldown_ms: 1000,
            circuit_state: crate::store::subscriptions::CircuitState::Closed,
            circuit_opened_at: None,
            consecutive_failures: 0,
            created_at: at,
            updated_at: at,
        }
    }

    /// (scheme, stored secrets, compiles or the error, signs with how many now or the error)
    type Case = (
        &'static str,
        &'static str,
        Result<(), &'static str>,
        Result<usize, &'static str>,
    );

    fn now() -> NaiveDateTime {
        chrono::Utc::now().naive_utc()
    }

    #[test]
    fn a_secret_column_that_cannot_sign_stops_the_webhook_instead_of_sending_unsigned() {
        let keys = Keyring::ephemeral();
        let whsec = r#"[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expires_at":null}]"#;
        let expired = r#"[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expires_at":"2001-01-01T00:00:00"}]"#;
        let whsk_under_hex = r#"[{"secret":"whsk_AAAA","expires_at":null}]"#;
        let cases: &[Case] = &[
            ("hex", "[]", Ok(()), Ok(0)),
            ("hex", whsec, Ok(()), Ok(1)),
            ("standard", whsec, Ok(()), Ok(1)),
            ("standard", "[]", Err("always signs"), Ok(0)),
            ("standard-v1a", "[]", Err("always signs"), Ok(0)),
            (
                "standard-v1a",
                whsec,
                Err("cannot sign under standard-v1a"),
                Ok(0),
            ),
            ("hex", whsk_under_hex, Err("cannot sign under hex"), Ok(0)),
            (
                "standard",
                expired,
                Ok(()),
                Err("every stored signing secret has expired"),
            ),
            (
                "hex",
                expired,
                Ok(()),
                Err("every stored signing secret has expired"),
            ),
            (
                "hex",
                "not json",
                Ok(()),
                Err("cannot sign: the stored signing secrets are not a list"),
            ),
        ];
        for (scheme, secrets, compiles, signs) in cases {
            let spec = Spec::from_row(&row(scheme, secrets), &keys);
            match (compiles, &spec) {
                (Ok(()), Ok(_)) => {}
                (Err(want), Err(got)) => {
                    assert!(got.to_string().contains(want), "{scheme} {secrets}: {got}")
                }
                (want, got) => panic!(
                    "{scheme} {secrets}: want {want:?}, got {:?}",
                    got.as_ref().err()
                ),
            }
            let Ok(spec) = spec else { continue };
            match (signs, spec.valid_secrets(now())) {
                (Ok(n), Ok(got)) => assert_eq!(got.len(), *n, "{scheme} {secrets}"),
                (Err(want), Err(got)) => {
                    assert!(got.to_string().contains(want), "{scheme} {secrets}: {got}")
                }
                (want, got) => panic!("{scheme} {secrets}: want {want:?}, got {got:?}"),
            }
        }
    }
}
