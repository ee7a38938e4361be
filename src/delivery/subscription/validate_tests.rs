//! The validation rules as data: `fixtures/vectors/subscription_validation.json`.

use serde_json::{Value, json};

use super::input::SubscriptionIn;
use super::validate::{defaults, validate};
use crate::secrets::Keyring;
use crate::store::subscriptions::SubscriptionFields;

const CASES: &str = include_str!("../../../fixtures/vectors/subscription_validation.json");

fn as_json(f: &SubscriptionFields) -> Value {
    json!({
        "name": f.name, "url": f.url, "event_types": f.event_types, "headers": f.headers,
        "payload_template": f.payload_template, "signature_scheme": f.signature_scheme,
        "signature_header": f.signature_header, "retry_count": f.retry_count,
        "retry_delay_ms": f.retry_delay_ms, "max_retry_delay_ms": f.max_retry_delay_ms,
        "retry_schedule": f.retry_schedule, "timeout_ms": f.timeout_ms,
        "rate_limit": f.rate_limit, "rate_limit_period_ms": f.rate_limit_period_ms,
        "max_in_flight": f.max_in_flight, "failure_threshold": f.failure_threshold,
        "circuit_cooldown_ms": f.circuit_cooldown_ms, "is_active": f.is_active,
    })
}

#[test]
fn every_validation_case_is_accepted_or_refused_as_the_fixture_says() {
    let keys = Keyring::ephemeral();
    let file: Value = serde_json::from_str(CASES).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() > 30);
    for case in cases {
        let input: SubscriptionIn =
            serde_json::from_value(case["input"].clone()).unwrap_or_else(|e| panic!("{case}: {e}"));
        let got = validate(&input, defaults(), &keys);
        match (&case["error"], got) {
            (Value::String(want), Err(e)) => {
                assert!(e.to_string().contains(want.as_str()), "{case}: {e}")
            }
            (Value::Null, Ok(v)) => {
                let stored = as_json(&v.fields);
                for (k, want) in case["fields"].as_object().unwrap() {
                    assert_eq!(&stored[k], want, "{case}: field {k}");
                }
            }
            (_, got) => panic!("{case}: got {got:?}"),
        }
    }
}

#[test]
fn a_standard_webhook_gets_a_secret_shown_once_and_a_hex_one_none() {
    let keys = Keyring::ephemeral();
    let standard: SubscriptionIn =
        serde_json::from_value(json!({"url": "https://e.com", "signature_scheme": "standard"}))
            .unwrap();
    let v = validate(&standard, defaults(), &keys).unwrap();
    assert!(v.shown_secret.unwrap().starts_with("whsec_"));
    assert!(keys.is_current(&v.fields.secrets), "stored sealed");
    let v1a: SubscriptionIn =
        serde_json::from_value(json!({"url": "https://e.com", "signature_scheme": "standard-v1a"}))
            .unwrap();
    let v = validate(&v1a, defaults(), &keys).unwrap();
    assert_eq!(v.shown_secret, None, "a private key is never shown");
    let hex: SubscriptionIn = serde_json::from_value(json!({"url": "https://e.com"})).unwrap();
    let v = validate(&hex, defaults(), &keys).unwrap();
    assert_eq!((v.shown_secret, v.fields.secrets.as_str()), (None, "[]"));
}

#[test]
fn an_update_keeps_what_it_does_not_name() {
    let keys = Keyring::ephemeral();
    let create: SubscriptionIn = serde_json::from_value(
        json!({"url": "https://e.com/a", "name": "mine", "retry_count": 7, "rate_limit": 3}),
    )
    .unwrap();
    let base = validate(&create, defaults(), &keys).unwrap().fields;
    let update: SubscriptionIn =
        serde_json::from_value(json!({"timeout": 5, "rate_limit": null})).unwrap();
    let f = validate(&update, base, &keys).unwrap().fields;
    assert_eq!(
        (
            f.name.as_str(),
            f.url.as_str(),
            f.retry_count,
            f.timeout_ms,
            f.rate_limit
        ),
        ("mine", "https://e.com/a", 7, 5000, None)
    );
}
