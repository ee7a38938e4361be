//! The sentiment agent type end to end, with the made-up lexicon
//! fixtures/sentiment/lexicon.csv (muninn ships none: Huginn's ANEW is licensed for
//! academic research only): scores of received events, the refusals while no lexicon
//! is configured (save, enable, import), a dry run, and a malformed lexicon stopping
//! `serve` with the line it could not read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn lexicon_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sentiment/lexicon.csv")
}

async fn with_lexicon() -> TestHub {
    TestHub::start_with(|c| {
        c.sentiment.lexicon_path = lexicon_path().display().to_string();
    })
    .await
}

const INSUFFICIENT: &str = "Insufficient data for meaningful answer";

#[actix_rt::test]
async fn received_events_are_scored_with_the_configured_lexicon() {
    let hub = with_lexicon().await;
    let m = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "manual_event", "name": "in"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let s = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::SentimentAgent", "name": "mood", "source_ids": [m],
                   "options": {"content": "$.message", "expected_receive_period_in_days": 1}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for message in ["value1", "The quick brown fox jumps over the lazy dog"] {
        let r = hub
            .post_json(
                &format!("/api/agents/{m}/events"),
                ADMIN_TOKEN,
                &json!({"message": message}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let want = vec![
        json!({"content": "value1", "valence": INSUFFICIENT, "arousal": INSUFFICIENT,
               "dominance": INSUFFICIENT, "original_event": {"message": "value1"}}),
        json!({"content": "The quick brown fox jumps over the lazy dog",
               "valence": 6.0, "arousal": 4.833333333333333, "dominance": 5.416666666666667,
               "original_event": {"message": "The quick brown fox jumps over the lazy dog"}}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, s, &want).await, want);
    let agent = hub
        .get(&format!("/api/agents/{s}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(agent["working"], true, "{agent}");

    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "sentiment",
                    "options": {"content": "$.m", "expected_receive_period_in_days": 1},
                    "event": {"m": "HAPPY!!! dog."}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["events"],
        json!([{"content": "HAPPY!!! dog.", "valence": 7.875, "arousal": 5.75,
                "dominance": 6.75, "original_event": {"m": "HAPPY!!! dog."}}])
    );
}

fn refusal_says_how(r: &common::Resp) {
    assert_eq!(r.status, 422, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("[sentiment] lexicon_path (env MUNINN_SENTIMENT_LEXICON_PATH)"),
        "{message}"
    );
    assert!(message.contains("academic research only"), "{message}");
}

#[actix_rt::test]
async fn without_a_lexicon_saving_enabling_and_dry_runs_are_refused_and_imports_kept_disabled() {
    let hub = TestHub::start().await;
    let options = json!({"content": "$.message", "expected_receive_period_in_days": 1});
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "sentiment", "name": "mood", "options": options}),
        )
        .await;
    refusal_says_how(&r);
    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "sentiment", "options": options, "event": {"message": "x"}}),
        )
        .await;
    refusal_says_how(&r);

    let scenario = json!({
        "schema_version": 1, "name": "moods", "guid": "moods-1",
        "agents": [{"type": "Agents::SentimentAgent", "name": "mood", "guid": "a1",
                    "options": options, "disabled": false}],
        "links": [], "control_links": []
    });
    let r = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &scenario)
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    assert!(
        r.text().contains("[sentiment] lexicon_path"),
        "the import names the setting: {}",
        r.text()
    );
    let agents = hub.get("/api/agents", ADMIN_TOKEN).await.json();
    let list = agents.as_array().or(agents["agents"].as_array()).unwrap();
    let mood = list.iter().find(|a| a["name"] == "mood").unwrap();
    assert_eq!(mood["disabled"], true, "{mood}");
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{}", mood["id"]),
            ADMIN_TOKEN,
            &json!({"disabled": false}),
        )
        .await;
    refusal_says_how(&r);
}

/// `muninn serve` with a lexicon whose third line is broken exits, naming the file and
/// the line.
#[test]
fn a_malformed_lexicon_stops_serve_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("lexicon.csv");
    std::fs::write(
        &bad,
        "happy,1,8.0,1,6.0,1,7.0,1,10\nsad,2,2.0,1,3.0,1,3.5,1,10\ndull,3,4.0,1,two,1,4.0,1,10\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut cmd = common::process::serve_command(&data, &[], None);
    cmd.env_remove("RUST_LOG")
        .env("MUNINN_SENTIMENT_LEXICON_PATH", &bad)
        .env("MUNINN_ADMIN_TOKEN", "t")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("muninn serve started with a malformed lexicon");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(
        err.contains("line 3: column 5 (\"two\") is not a number"),
        "{err}"
    );
}

#[test]
fn the_fixture_lexicon_reads_as_anew_does() {
    let l = muninn::agents::sentiment::lexicon::Lexicon::load(&lexicon_path()).unwrap();
    assert_eq!(l.len(), 8);
    let scores = muninn::agents::sentiment::scores(&l, "gloom");
    assert_eq!(Value::Array(scores.to_vec()), json!([1.75, 3.25, 2.5]));
}
