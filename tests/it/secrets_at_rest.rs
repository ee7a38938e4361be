//! Secrets at rest: what the database file holds after subscriptions and incoming
//! webhooks are made through the API, and after a database written in clear by an
//! earlier version is opened; in both cases deliveries are still signed and the
//! incoming webhook still takes its token and signature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::sink::Sink;
use common::{ADMIN_TOKEN as T, TestHub};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    hex::encode(m.finalize().into_bytes())
}

/// Every byte SQLite keeps for the database: the file, its WAL and shared memory.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("muninn.db") {
            all.extend(std::fs::read(e.path()).unwrap());
        }
    }
    assert!(!all.is_empty(), "no database file in {}", dir.display());
    all
}

fn assert_absent(dir: &Path, secrets: &[&str]) {
    let bytes = database_bytes(dir);
    for s in secrets {
        assert!(
            !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s:?} is stored in clear"
        );
    }
}

async fn hub_in(dir: &Path) -> TestHub {
    let dir = dir.to_path_buf();
    TestHub::start_with(move |c| {
        c.storage.data_dir = dir;
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await
}

async fn post_signed(hub: &TestHub, token: &str, secret: &str, body: &str) -> u16 {
    let sig = format!("sha256={}", hmac_hex(secret.as_bytes(), body.as_bytes()));
    hub.request(
        "POST",
        &format!("/webhook/{token}"),
        None,
        &[
            ("content-type", "application/json"),
            ("x-hub-signature-256", &sig),
        ],
        Some(body.as_bytes().to_vec()),
    )
    .await
    .status
}

/// The one delivery of `body` the sink got, with its signature checked against `secret`.
async fn assert_signed_delivery(sink: &Sink, secret: &str, marker: &str) {
    let got = sink
        .wait_until(marker, |r| {
            r.iter()
                .any(|x| String::from_utf8_lossy(&x.body).contains(marker))
        })
        .await;
    let d = got
        .iter()
        .find(|x| String::from_utf8_lossy(&x.body).contains(marker))
        .unwrap();
    assert_eq!(
        d.header("x-webhook-signature").unwrap(),
        hmac_hex(secret.as_bytes(), &d.body),
        "the delivery is signed with the subscription's secret"
    );
}

#[actix_rt::test]
async fn api_made_secrets_are_not_stored_in_clear_and_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(dir.path()).await;
    let sink = Sink::start();
    let key_mode = std::fs::metadata(dir.path().join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "the key file is private");

    let sub_secret = "sub-secret-5f2a9c";
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            T,
            &json!({"url": sink.url, "event_types": ["webhook.received"], "secret": sub_secret}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["has_secret"], json!(true));

    let agent = hub
        .add_agent(
            T,
            json!({"type": "event_formatting", "name": "Receiver",
                   "options": {"instructions": {"seen": "yes"}, "mode": "merge"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let sig_secret = "inbound-sig-7d1e44";
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            T,
            &json!({"name": "gh", "agent_id": agent,
                    "signature": {"scheme": "hmac-sha256", "secret": sig_secret, "header": "X-Hub-Signature-256"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let w = r.json();
    let token = w["token"].as_str().unwrap().to_string();
    assert!(w["url"].as_str().unwrap().ends_with(&token));
    let id = w["id"].as_i64().unwrap();

    // The token still opens the webhook; an unsigned request is still refused.
    assert_eq!(
        post_signed(&hub, &token, sig_secret, r#"{"m": "api-one"}"#).await,
        200
    );
    let r = hub
        .request(
            "POST",
            &format!("/webhook/{token}"),
            None,
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_signed_delivery(&sink, sub_secret, "api-one").await;

    // Shown once: reads no longer carry the token.
    let shown = hub
        .get(&format!("/api/webhooks/incoming/{id}"), T)
        .await
        .json();
    assert_eq!(shown["token"], Value::Null, "{shown}");
    assert!(!shown.to_string().contains(sig_secret));

    // A rotated token works and is shown once too.
    let r = hub
        .post_json(
            &format!("/api/webhooks/incoming/{id}/rotate"),
            T,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        post_signed(&hub, &rotated, sig_secret, r#"{"m": "api-two"}"#).await,
        200
    );
    assert_signed_delivery(&sink, sub_secret, "api-two").await;

    let secrets = [sub_secret, sig_secret, token.as_str(), rotated.as_str()];
    match &hub.pg {
        // PostgreSQL's files: the tables and the write-ahead log.
        Some(pg) => {
            for s in secrets {
                let held = common::postgres::files_hold(&pg.url("hub"), s);
                assert!(!held, "{s:?} is stored in clear");
            }
        }
        None => assert_absent(dir.path(), &secrets),
    }
}

/// Whether any row of the tables that hold secrets contains `needle` (PostgreSQL).
fn rows_hold(url: &str, needle: &str) -> bool {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct All {
        #[diesel(sql_type = diesel::sql_types::Text)]
        rows: String,
    }
    let mut conn = diesel::PgConnection::establish(url).unwrap();
    let all: All = diesel::sql_query(
        "SELECT concat_ws(' ', (SELECT string_agg(s::text, ' ') FROM subscriptions s), \
         (SELECT string_agg(w::text, ' ') FROM incoming_webhooks w)) AS rows",
    )
    .get_result(&mut conn)
    .unwrap();
    all.rows.contains(needle)
}

/// Writes what an earlier version stored: secrets and tokens in clear.
/// On PostgreSQL when `url` names a database.
fn write_clear_rows(
    dir: &Path,
    url: Option<&str>,
    sink_url: &str,
    token: &str,
    sub_secret: &str,
    sig_secret: &str,
) {
    use muninn::store::{agents, incoming_webhooks, subscriptions, users};
    let mut config = muninn::Config::default();
    config.storage.data_dir = dir.to_path_buf();
    config.storage.database_url = url.unwrap_or_default().to_string();
    let mut conn = muninn::store::establish(&config.store_options()).unwrap();
    muninn::store::migrate(&mut conn).unwrap();
    let admin = users::insert(&mut conn, "admin", true).unwrap();
    let agent = agents::insert(
        &mut conn,
        &agents::NewAgent {
            user_id: admin.id,
            agent_type: "event_formatting".into(),
            name: "Receiver".into(),
            options: r#"{"instructions": {"seen": "yes"}, "mode": "merge"}"#.into(),
            schedule: None,
            disabled: false,
            keep_events_for: 0,
            propagate_immediately: false,
            guid: None,
        },
    )
    .unwrap();
    subscriptions::insert(
        &mut conn,
        admin.id,
        &subscriptions::SubscriptionFields {
            name: "legacy".into(),
            description: None,
            url: sink_url.into(),
            event_types: r#"["webhook.received"]"#.into(),
            agent_id: None,
            filters: None,
            headers: "{}".into(),
            payload_template: None,
            signature_scheme: "hex".into(),
            signature_header: None,
            secrets: format!(r#"[{{"secret":"{sub_secret}","expires_at":null}}]"#),
            retry_count: 3,
            retry_delay_ms: 1000,
            max_retry_delay_ms: 10_000,
            retry_schedule: None,
            timeout_ms: 10_000,
            rate_limit: None,
            rate_limit_period_ms: 1000,
            max_in_flight: 8,
            ordered: false,
            is_active: true,
            failure_threshold: 5,
            circuit_cooldown_ms: 300_000,
        },
    )
    .unwrap();
    incoming_webhooks::insert(
        &mut conn,
        admin.id,
        token,
        &incoming_webhooks::IncomingChanges {
            agent_id: Some(agent.id),
            name: Some("legacy".into()),
            signature: Some(Some(format!(
                r#"{{"scheme":"hmac-sha256","secret":"{sig_secret}","header":"X-Hub-Signature-256"}}"#
            ))),
            ..Default::default()
        },
    )
    .unwrap();
}

#[actix_rt::test]
async fn clear_rows_of_an_earlier_version_are_converted_at_start_and_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let token = "whk_legacyTokenFromBeforeHashing0123456789abcdefg";
    let (sub_secret, sig_secret) = ("legacy-sub-secret-91b3", "legacy-sig-secret-c07d");
    // On PostgreSQL (MUNINN_TEST_BACKEND=postgres), the rows are written to the
    // cluster's database before the hub starts on it.
    let pg = (std::env::var(common::BACKEND_ENV).as_deref() == Ok("postgres"))
        .then(|| common::postgres::PgCluster::start().unwrap());
    let url = pg.as_ref().map(|p| p.create_database("legacy"));
    write_clear_rows(
        dir.path(),
        url.as_deref(),
        &sink.url,
        token,
        sub_secret,
        sig_secret,
    );
    let in_clear = |needle: &str| match &url {
        Some(u) => rows_hold(u, needle),
        None => database_bytes(dir.path())
            .windows(needle.len())
            .any(|w| w == needle.as_bytes()),
    };
    assert!(in_clear(sub_secret), "the setup wrote the secret in clear");

    let data_dir = dir.path().to_path_buf();
    let database_url = url.clone().unwrap_or_default();
    let hub = TestHub::start_on(pg, move |c| {
        c.storage.data_dir = data_dir;
        c.storage.database_url = database_url;
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    // PostgreSQL keeps the replaced row versions in its files until VACUUM reclaims
    // them (see store::sealed::reseal_all); what the rows hold is checked there.
    for s in [sub_secret, sig_secret, token] {
        assert!(!in_clear(s), "{s:?} is stored in clear");
    }
    // The token users already hold keeps working, with its signature check.
    assert_eq!(
        post_signed(&hub, token, sig_secret, r#"{"m": "legacy-one"}"#).await,
        200
    );
    assert_eq!(
        post_signed(&hub, token, "wrong", r#"{"m": "legacy-bad"}"#).await,
        401
    );
    assert_signed_delivery(&sink, sub_secret, "legacy-one").await;
    let shown = hub.get("/api/webhooks/outgoing", T).await.json();
    assert_eq!(shown[0]["has_secret"], json!(true), "{shown}");
    assert!(shown[0].get("signing_error").is_none(), "{shown}");
}
