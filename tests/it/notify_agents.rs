//! The notifier and API agent types against local fakes of their services: what the
//! fake receives (path, form, JSON), and what the agents emit and log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// A form body decoded into a JSON object (every value a string).
fn form(body: &[u8]) -> Value {
    Value::Object(
        url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    )
}

async fn hub() -> TestHub {
    TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await
}

async fn send(hub: &TestHub, hook: i64, payload: Value) {
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &payload,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[actix_rt::test]
async fn slack_posts_each_event_to_the_webhook() {
    let hub = hub().await;
    let slack = Sink::start();
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::SlackAgent", "name": "team chat", "source_ids": [hook],
                   "options": {"webhook_url": slack.url, "channel": "#ops", "icon": ":fire:",
                               "message": "{{ title }} is [down](https://status.example/{{ title }})"}}),
        )
        .await;
    assert_eq!(agent["type"], "slack", "{agent}");
    send(&hub, hook, json!({"title": "db"})).await;
    let got = slack.wait_for(1).await;
    assert_eq!(got[0].path, "/hook");
    assert_eq!(
        got[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let payload: Value =
        serde_json::from_str(form(&got[0].body)["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        payload,
        json!({"username": "Huginn", "channel": "#ops", "icon_emoji": ":fire:",
               "text": "db is <https://status.example/db|down>"})
    );
    // Huginn's validation messages, and the target guard on the webhook URL.
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "slack", "name": "x", "options": {"channel": "#a"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("option \\\"webhook_url\\\" is required"),
        "{}",
        r.text()
    );
}

/// The fake's base URL (the sink answers every path).
fn base(sink: &Sink) -> String {
    sink.url.trim_end_matches("/hook").to_string()
}

async fn logs(hub: &TestHub, id: i64) -> Vec<String> {
    hub.get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_log(hub: &TestHub, id: i64, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = logs(hub, id).await;
        if got.iter().any(|l| l.contains(needle)) {
            return got;
        }
        assert!(Instant::now() < deadline, "no log with {needle:?}: {got:?}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

#[actix_rt::test]
async fn pushover_posts_a_form_to_the_configured_api() {
    let api = Sink::start();
    let api_base = base(&api);
    let hub = TestHub::start_with(move |c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
        c.apis.pushover_url = api_base;
    })
    .await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::PushoverAgent", "name": "phone", "source_ids": [hook],
                   "options": {"token": "app-token", "user": "user-key", "expected_receive_period_in_days": 1,
                               "title": "Alert: {{ title }}", "priority": "{{ priority | default: 0 }}"}}),
        )
        .await;
    let id = agent["id"].as_i64().unwrap();
    send(
        &hub,
        hook,
        json!({"message": "disk full", "title": "db", "url": "https://status.example"}),
    )
    .await;
    let got = api.wait_for(1).await;
    assert_eq!(got[0].path, "/1/messages.json");
    assert_eq!(
        form(&got[0].body),
        json!({"token": "app-token", "user": "user-key", "message": "disk full",
               "title": "Alert: db", "url": "https://status.example", "priority": "0"})
    );
    let log = wait_log(&hub, id, "Sending the following notification").await;
    assert!(!log.iter().any(|l| l.contains("app-token")), "{log:?}");
    // An event without a message sends nothing (as Huginn: the call is omitted).
    send(&hub, hook, json!({"title": "quiet"})).await;
    wait_log(&hub, id, "no notification sent").await;
    assert_eq!(api.received().len(), 1);
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "pushover", "name": "x", "options": {"token": "t", "user": "u"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token, user, and expected_receive_period_in_days are all required."),
        "{}",
        r.text()
    );
}

fn forecast() -> String {
    json!({"latitude": 37.7755, "longitude": -122.41292, "daily": {"data": [
        {"time": 1357959600, "summary": "Rain", "icon": "rain", "temperatureMax": 64.4, "temperatureMin": 52.1,
         "humidity": 0.87, "windSpeed": 7.5, "windBearing": 250, "precipProbability": 1, "precipType": "rain"}
    ]}})
    .to_string()
}

#[actix_rt::test]
async fn weather_reads_the_forecast_from_the_configured_api_through_the_guard() {
    let api = Sink::start();
    api.set_default(common::sink::Reply {
        body: forecast(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        ..common::sink::Reply::status(200)
    });
    let api_base = base(&api);
    let hub = TestHub::start_with(move |c| {
        c.delivery.allow_private_targets = true;
        c.apis.pirate_weather_url = api_base;
    })
    .await;
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::WeatherAgent", "name": "sf",
                   "options": {"location": "37.77550,-122.41292", "api_key": "k3y", "which_day": "1", "language": "en"}}),
        )
        .await;
    assert_eq!(agent["schedule"], "8pm", "Huginn's default schedule");
    let id = agent["id"].as_i64().unwrap();
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    let got = api.wait_for(1).await;
    assert_eq!(got[0].path, "/forecast/k3y/37.7755,-122.41292?lang=en");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = Vec::new();
    while events.is_empty() {
        assert!(Instant::now() < deadline, "no weather event");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
        events = hub.payloads(ADMIN_TOKEN, id).await;
    }
    let e = &events[0];
    assert_eq!(e["location"], "37.77550,-122.41292");
    assert_eq!(e["conditions"], "Rain");
    assert_eq!(e["high"]["fahrenheit"], "64");
    assert_eq!(e["high"]["celsius"], "18");
    assert_eq!(e["low"]["celsius"], "11");
    assert_eq!(
        e["avewind"],
        json!({"mph": "8", "kph": "12", "degrees": "250"})
    );
    assert_eq!(e["date"]["pretty"], " 3:00 AM UTC on January 12, 2013");
    assert_eq!(e["period"], 1);

    // Without allow_private_targets the guard refuses the loopback API: an error log.
    let guarded_base = base(&api);
    let guarded = TestHub::start_with(move |c| c.apis.pirate_weather_url = guarded_base).await;
    let agent = guarded
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "weather", "name": "sf",
                   "options": {"location": "37.77550,-122.41292", "api_key": "k3y"}}),
        )
        .await;
    let id = agent["id"].as_i64().unwrap();
    guarded
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    wait_log(&guarded, id, "Could not fetch the forecast").await;
    assert_eq!(api.received().len(), 1, "the guarded hub sent nothing");
    // Huginn's messages for the services that are gone.
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "weather", "name": "x", "options": {"service": "wunderground", "location": "1.0,2.0", "api_key": "k"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("The Weather Underground API has been disabled since Jan 1st 2018"),
        "{}",
        r.text()
    );
}

async fn wait_events(hub: &TestHub, id: i64, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = hub.payloads(ADMIN_TOKEN, id).await;
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} events: {got:?}",
            got.len()
        );
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

#[actix_rt::test]
async fn github_notifications_reads_the_configured_api_and_sends_if_modified_since() {
    let api = Sink::start();
    let notifications = json!([
        {"id": "1", "url": "https://api.github.com/notifications/threads/1",
         "repository": {"full_name": "octocat/Hello-World"},
         "subject": {"title": "Greetings", "url": "https://api.github.com/repos/octocat/Hello-World/pulls/10", "type": "PullRequest"}},
        {"id": "2", "url": "https://api.github.com/notifications/threads/2",
         "repository": {"full_name": "octocat/Hello-World"},
         "subject": {"title": "Bug", "url": "https://api.github.com/repos/octocat/Hello-World/issues/123", "type": "Issue"}}
    ]);
    api.script([
        common::sink::Reply {
            body: notifications.to_string(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                (
                    "Last-Modified".into(),
                    "Thu, 25 Oct 2012 15:16:27 GMT".into(),
                ),
            ],
            ..common::sink::Reply::status(200)
        },
        common::sink::Reply::status(304),
    ]);
    let api_base = base(&api);
    let hub = TestHub::start_with(move |c| {
        c.delivery.allow_private_targets = true;
        c.apis.github_url = api_base;
    })
    .await;
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::GithubNotificationsAgent", "name": "gh",
                   "options": {"access_token": "gh-token", "events": "multiple", "last_modified": true}}),
        )
        .await;
    assert_eq!(agent["schedule"], "every_10m");
    let id = agent["id"].as_i64().unwrap();
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    let events = wait_events(&hub, id, 2).await;
    let first = events.iter().find(|e| e["id"] == "1").unwrap();
    assert_eq!(
        first["subject"]["url_web"],
        "https://github.com/octocat/Hello-World/pull/10"
    );
    assert_eq!(first["subject"]["repo_name"], "octocat/Hello-World");
    let got = api.received();
    assert_eq!(got[0].path, "/notifications");
    assert_eq!(got[0].header("authorization"), Some("token gh-token"));
    assert_eq!(got[0].header("if-modified-since"), None);
    // The second run asks only for what changed since, and a 304 emits nothing.
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    let got = api.wait_for(2).await;
    assert_eq!(
        got[1].header("if-modified-since"),
        Some("Thu, 25 Oct 2012 15:16:27 GMT")
    );
    assert_eq!(got[1].answered, 304);
}

#[actix_rt::test]
async fn phantom_js_cloud_emits_the_render_url_per_event() {
    let hub = hub().await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::PhantomJsCloudAgent", "name": "render", "source_ids": [hook],
                   "options": {"api_key": "ak", "url": "http://flats.example/{{ page }}", "mode": "merge"}}),
        )
        .await;
    assert_eq!(agent["schedule"], "every_12h");
    let id = agent["id"].as_i64().unwrap();
    send(&hub, hook, json!({"page": "2"})).await;
    let events = wait_events(&hub, id, 1).await;
    assert_eq!(events[0]["page"], "2");
    assert_eq!(
        events[0]["url"],
        "https://phantomjscloud.com/api/browser/v2/ak/?request=%7B%22url%22%3A%22http%3A%2F%2Fflats.example%2F2%22%2C%22renderType%22%3A%22html%22%2C%22requestSettings%22%3A%7B%22userAgent%22%3A%22Huginn%20-%20https%3A%2F%2Fgithub.com%2Fhuginn%2Fhuginn%22%7D%7D"
    );
}
