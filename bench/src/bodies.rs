//! The webhook bodies the ingest runs send: what real senders post, not a toy. A
//! sensor reading (~200 bytes), a Stripe-like event (~2 KB) and a GitHub-like push
//! (~8 KB), each filled up to exactly the size asked for, so a per-byte cost shows.

use serde_json::{Value, json};

/// One body, by its size and what it stands for.
pub struct Body {
    pub label: String,
    pub bytes: Vec<u8>,
}

/// A realistic body of exactly `size` bytes (at least the size of its skeleton).
pub fn body(size: usize) -> Body {
    let (kind, skeleton) = if size < 1024 {
        ("sensor reading", sensor())
    } else if size < 4096 {
        ("Stripe-like event", stripe())
    } else {
        ("GitHub-like push", github_push(size))
    };
    let bytes = fill(skeleton, size);
    Body {
        label: format!("{} B {kind}", bytes.len()),
        bytes,
    }
}

/// The sensor reading of `size` bytes (under 1 KiB) carrying `"e2e": n`, the number the
/// sink notes each delivery's arrival by: the end-to-end rows send the ingest rows' body
/// with a number in it. Exactly `size` bytes while `n` has at most 6 digits.
pub fn numbered(size: usize, n: u64) -> Vec<u8> {
    let mut v = sensor();
    if let Some(m) = v.as_object_mut() {
        m.insert("e2e".into(), Value::from(n));
    }
    fill(v, size)
}

/// Adds a `"note"` string that brings the serialized object to `size` bytes.
fn fill(mut v: Value, size: usize) -> Vec<u8> {
    let bare = v.to_string().len();
    // `,"note":""` is 10 bytes.
    let pad = size.saturating_sub(bare + 10);
    if let Some(m) = v.as_object_mut()
        && size > bare + 10
    {
        let text: String = "lorem ipsum dolor sit amet "
            .chars()
            .cycle()
            .take(pad)
            .collect();
        m.insert("note".into(), Value::String(text));
    }
    v.to_string().into_bytes()
}

fn sensor() -> Value {
    json!({"device_id": "sensor-0042", "type": "environment",
           "timestamp": "2026-12-07T10:15:30.123Z",
           "readings": {"temperature_c": 21.47, "humidity_pct": 48.2, "pressure_hpa": 1013.25,
                        "co2_ppm": 612}})
}

fn stripe() -> Value {
    json!({
      "id": "evt_3QxYzA2eZvKYlo2C1x8b9kLm", "object": "event", "api_version": "2024-06-20",
      "created": 1765102530, "livemode": false, "pending_webhooks": 2,
      "request": {"id": "req_8JkLmNoPqRsTuV", "idempotency_key": "0f3c2a9e-6b1d-4e7f-9a2b-5c8d7e6f1a3b"},
      "type": "payment_intent.succeeded",
      "data": {"object": {
        "id": "pi_3QxYzA2eZvKYlo2C1Fq7Wn0P", "object": "payment_intent", "amount": 2000,
        "amount_capturable": 0, "amount_received": 2000, "capture_method": "automatic",
        "client_secret": "pi_3QxYzA2eZvKYlo2C1Fq7Wn0P_secret_Xy7Zk3Lm9Np1Qr5St",
        "confirmation_method": "automatic", "created": 1765102529, "currency": "usd",
        "customer": "cus_RqT5uVwXyZ1a2B", "description": "Subscription update",
        "latest_charge": "ch_3QxYzA2eZvKYlo2C1Gh8Jk2L",
        "metadata": {"order_id": "6735", "plan": "pro-monthly"},
        "payment_method": "pm_1QxYzA2eZvKYlo2CkLmNoPqR",
        "payment_method_options": {"card": {"installments": null, "mandate_options": null,
          "network": null, "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "receipt_email": "jenny.rosen@example.com",
        "shipping": {"address": {"city": "San Francisco", "country": "US",
          "line1": "510 Townsend St", "line2": null, "postal_code": "94103", "state": "CA"},
          "carrier": null, "name": "Jenny Rosen", "phone": null, "tracking_number": null},
        "status": "succeeded"}}
    })
}

/// A push with as many commits as fit in `size`.
fn github_push(size: usize) -> Value {
    let user = json!({"name": "Octo Cat", "email": "octocat@github.com", "username": "octocat"});
    let commit = |i: usize| {
        json!({"id": format!("{:040x}", 0x5e1ec7u64 + i as u64), "tree_id": format!("{:040x}", 0x7ee0u64 + i as u64),
               "distinct": true, "message": format!("Fix the flaky retry test ({i})\n\nThe sink answered before the log was flushed."),
               "timestamp": "2026-12-07T10:15:30Z",
               "url": format!("https://github.com/octo-org/hello-world/commit/{:040x}", 0x5e1ec7u64 + i as u64),
               "author": user, "committer": user,
               "added": ["src/retry.rs"], "removed": [], "modified": ["tests/retry.rs", "README.md"]})
    };
    let mut push = json!({
      "ref": "refs/heads/main", "before": format!("{:040x}", 1), "after": format!("{:040x}", 2),
      "repository": {"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "hello-world",
        "full_name": "octo-org/hello-world", "private": false,
        "owner": {"name": "octo-org", "email": null, "login": "octo-org", "id": 6811672,
                  "type": "Organization", "site_admin": false},
        "html_url": "https://github.com/octo-org/hello-world", "description": "My first repository",
        "fork": false, "url": "https://github.com/octo-org/hello-world",
        "created_at": 1296068472, "updated_at": "2026-12-01T12:00:00Z", "pushed_at": 1765102530,
        "default_branch": "main", "stargazers_count": 80, "watchers_count": 80, "language": "Rust",
        "forks_count": 9, "open_issues_count": 0, "topics": ["webhooks", "automation"]},
      "pusher": {"name": "octocat", "email": "octocat@github.com"},
      "sender": {"login": "octocat", "id": 583231, "type": "User", "site_admin": false},
      "created": false, "deleted": false, "forced": false,
      "compare": "https://github.com/octo-org/hello-world/compare/000001...000002",
      "commits": [], "head_commit": commit(0)
    });
    for i in 0..64 {
        let mut next = push.clone();
        if let Some(list) = next["commits"].as_array_mut() {
            list.push(commit(i));
        }
        if next.to_string().len() + 10 > size {
            break;
        }
        push = next;
    }
    push
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_of_exactly_the_size_asked_for() {
        for size in [203, 2048, 8192] {
            let b = body(size);
            assert_eq!(b.bytes.len(), size, "{}", b.label);
            let v: Value = serde_json::from_slice(&b.bytes).unwrap();
            assert!(v.is_object());
        }
        assert!(body(8192).label.contains("GitHub"));
    }

    #[test]
    fn a_numbered_body_is_the_sensor_reading_with_its_number_and_size() {
        for n in [0, 7, 99_999, 999_999] {
            let b = numbered(203, n);
            assert_eq!(b.len(), 203, "n = {n}");
            let v: Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(v["e2e"], n);
            assert_eq!(v["device_id"], "sensor-0042");
        }
    }
}
