//! The detail views of Queues, Events and Endpoints drawn at 80x24 and 120x40 from
//! fixture data (long errors, an unnamed subscription, both kinds of endpoint), and
//! what the operator sees around actions: where they apply, what the dialog names,
//! per-screen filters and sorting, expiring messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use muninn_console::api::{
    Delivery, EndpointDetail, InboundLog, InboundStats, OutgoingLog, QueueDetail, Subscription,
};
use muninn_console::app::{Action, Detail, Key, Screen};
use muninn_console::worker::{Command, Update};
use support::*;

const LONG: &str = "Failed to connect to host: Connection refused (os error 111) while sending delivery 9005 to http://127.0.0.1:9000/hooks/in; the circuit opened after 5 failures in a row";

fn queue_detail() -> QueueDetail {
    QueueDetail {
        sub: Subscription {
            id: 5,
            name: String::new(),
            url: "http://127.0.0.1:9000/hooks/in".into(),
            event_types: vec!["order.created".into(), "order.refunded".into()],
            retry_count: 6,
            retry_delay: 10.0,
            max_retry_delay: 3600.0,
            timeout: 30.0,
            rate_limit: Some(120),
            rate_limit_period: "minute".into(),
            max_in_flight: 8,
            ordered: false,
            is_active: true,
            failure_threshold: 5,
            circuit_cooldown: 300.0,
            circuit_state: "open".into(),
            ..Default::default()
        },
        retrying: vec![
            Delivery {
                id: 9006,
                webhook_id: 5,
                status: "retrying".into(),
                next_attempt_at: Some("2026-11-22T12:04:00.000Z".into()),
                ..Default::default()
            },
            Delivery {
                id: 9007,
                webhook_id: 5,
                status: "retrying".into(),
                next_attempt_at: Some("2026-11-22T12:02:30.000Z".into()),
                ..Default::default()
            },
        ],
        attempts: vec![
            OutgoingLog {
                id: 77,
                delivery_id: 9005,
                response_status: None,
                error_message: Some(LONG.into()),
                retry_count: 4,
                created_at: "2026-11-22T11:58:30.000Z".into(),
                ..Default::default()
            },
            OutgoingLog {
                id: 76,
                delivery_id: 9004,
                response_status: Some(502),
                error_message: Some("target answered 502 Bad Gateway".into()),
                retry_count: 0,
                created_at: "2026-11-22T11:57:00.000Z".into(),
                ..Default::default()
            },
            OutgoingLog {
                id: 75,
                delivery_id: 9003,
                response_status: Some(200),
                created_at: "2026-11-22T11:50:00.000Z".into(),
                ..Default::default()
            },
        ],
    }
}

#[test]
fn queue_detail_of_an_unnamed_subscription_with_an_open_circuit() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Queues));
    app.apply(Action::Down);
    assert_eq!(app.selected(), Some(Key::Sub(5)));
    assert_eq!(app.apply(Action::Open), Some(Command::QueueDetail(5)));
    app.apply_update(Update::QueueDetail(queue_detail()));
    snap("queue_detail", &mut app);
    let t = text(&render(&mut app, 80, 24));
    // Last failure 11:58:30 + 300 s cooldown.
    assert!(t.contains("half-opens ≈ 12:03:30 (in 3m)"), "{t}");
    assert!(t.contains("12:02:30 (in 2m) · 2 retrying"), "{t}");
    assert!(t.contains("127.0.0.1:9000"), "{t}");
    // The whole error is there, wrapped, not cut.
    assert!(
        t.contains("Connection refused (os error 111) while sending"),
        "{t}"
    );
    assert!(t.contains("failures in a row"), "{t}");
    // The open detail is read again every few seconds.
    assert_eq!(app.detail_reload(), Some(Command::QueueDetail(5)));
    // Actions in the detail act on its subscription.
    app.apply(Action::TestDelivery);
    let c = app.confirm.clone().unwrap();
    assert_eq!(c.command, Command::TestDelivery { webhook_id: 5 });
    assert!(
        c.question
            .contains("subscription #5 \"127.0.0.1:9000/hooks/in\""),
        "{}",
        c.question
    );
    snap("confirm_test_delivery", &mut app);
    assert_eq!(
        app.apply(Action::Yes),
        Some(Command::TestDelivery { webhook_id: 5 })
    );
    // `r` retries deliveries, not subscriptions.
    assert_eq!(app.apply(Action::Retry), None);
    assert!(app.confirm.is_none());
    assert!(app.message().unwrap().text.contains("3 Failures"));
}

#[test]
fn event_detail_pretty_prints_and_scrolls() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Events));
    app.apply(Action::Top);
    assert_eq!(app.apply(Action::Open), None);
    assert!(matches!(app.detail, Some(Detail::Event(_))));
    snap("event_detail", &mut app);
    let t = text(&render(&mut app, 80, 24));
    assert!(t.contains("payload"), "{t}");
    app.apply(Action::PageDown);
    assert!(app.detail_scroll > 0);
    // A delivery of the tail opens the delivery.
    app.apply(Action::Back);
    let delivery_row = app
        .visible_events()
        .iter()
        .position(|(_, e)| matches!(e, muninn_console::api::StreamItem::Delivery { .. }))
        .unwrap();
    app.apply(Action::Top);
    for _ in 0..delivery_row {
        app.apply(Action::Down);
    }
    assert!(matches!(
        app.apply(Action::Open),
        Some(Command::DeliveryDetail(_))
    ));
}

fn inbound_detail() -> EndpointDetail {
    EndpointDetail {
        logs: vec![
            InboundLog {
                id: 3,
                received_at: "2026-11-22T11:59:50.000Z".into(),
                source_ip: Some("203.0.113.9".into()),
                method: "POST".into(),
                status: 401,
                accepted: false,
                reason: Some("signature".into()),
                detail: Some("the X-Signature header does not match the body signed with the webhook's secret (checked against 2 secrets)".into()),
                processing_ms: 1,
                event_ids: vec![],
            },
            InboundLog {
                id: 2,
                received_at: "2026-11-22T11:59:40.000Z".into(),
                source_ip: Some("203.0.113.9".into()),
                method: "POST".into(),
                status: 422,
                accepted: false,
                reason: Some("transform".into()),
                detail: Some("the template failed: unknown variable `order.total`".into()),
                processing_ms: 2,
                event_ids: vec![],
            },
            InboundLog {
                id: 1,
                received_at: "2026-11-22T11:59:00.000Z".into(),
                source_ip: Some("198.51.100.4".into()),
                method: "POST".into(),
                status: 202,
                accepted: true,
                processing_ms: 3,
                event_ids: vec![18230],
                ..Default::default()
            },
        ],
        stats: Some(InboundStats {
            received: 3,
            accepted: 1,
            duplicates: 0,
            rejected: 2,
            rejected_by_reason: [("signature".to_string(), 1), ("transform".to_string(), 1)]
                .into_iter()
                .collect(),
            average_processing_ms: 2.0,
        }),
        note: None,
    }
}

#[test]
fn endpoint_detail_is_the_request_log_for_both_kinds() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Endpoints));
    let keys = app.keys(Screen::Endpoints);
    let at = keys.iter().position(|k| *k == Key::Incoming(1)).unwrap();
    for _ in 0..at {
        app.apply(Action::Down);
    }
    assert_eq!(
        app.apply(Action::Open),
        Some(Command::EndpointDetail(Key::Incoming(1)))
    );
    app.apply_update(Update::EndpointDetail(Key::Incoming(1), inbound_detail()));
    snap("endpoint_detail_incoming", &mut app);
    let t = text(&render(&mut app, 120, 40));
    assert!(!t.contains("whk_"), "the token never shows: {t}");
    assert!(t.contains("checked against 2 secrets"), "{t}");
    // A data_output agent: its kind and its feed's request log.
    app.apply(Action::Back);
    let at = app
        .keys(Screen::Endpoints)
        .iter()
        .position(|k| *k == Key::AgentEndpoint(5))
        .unwrap();
    app.apply(Action::Top);
    for _ in 0..at {
        app.apply(Action::Down);
    }
    assert_eq!(
        app.apply(Action::Open),
        Some(Command::EndpointDetail(Key::AgentEndpoint(5)))
    );
    let feed_log = |id, status: i32, ms| InboundLog {
        id,
        received_at: format!("2026-11-22T11:5{id}:00.000Z"),
        source_ip: Some("203.0.113.9".into()),
        method: "GET".into(),
        status,
        accepted: status < 400,
        reason: (status == 401).then(|| "not_authorized".into()),
        processing_ms: ms,
        ..Default::default()
    };
    app.apply_update(Update::EndpointDetail(
        Key::AgentEndpoint(5),
        EndpointDetail {
            logs: vec![
                feed_log(3, 401, 0),
                feed_log(2, 304, 0),
                feed_log(1, 200, 4),
            ],
            stats: Some(InboundStats {
                received: 3,
                accepted: 2,
                rejected: 1,
                rejected_by_reason: [("401".to_string(), 1)].into(),
                average_processing_ms: 1.3,
                ..Default::default()
            }),
            note: None,
        },
    ));
    snap("endpoint_detail_data_output", &mut app);
    let t = text(&render(&mut app, 80, 24));
    assert!(t.contains("the last 100 since the hub started"), "{t}");
    assert!(
        t.contains("GET 401 from 203.0.113.9 · 0 ms · not_authorized"),
        "{t}"
    );
    // An older hub without feed logs: the note says so.
    app.apply_update(Update::EndpointDetail(
        Key::AgentEndpoint(5),
        EndpointDetail {
            note: Some("The hub keeps no request log for this endpoint (no such type).".into()),
            ..Default::default()
        },
    ));
    assert!(text(&render(&mut app, 80, 24)).contains("keeps no request log"));
    // Agent actions do not apply to endpoint rows.
    assert_eq!(app.apply(Action::ToggleAgent), None);
    assert!(app.confirm.is_none());
}

#[test]
fn retry_only_where_a_delivery_is_shown_and_the_dialog_names_it() {
    let mut app = full_app();
    // Overview: nothing happens but a hint.
    assert_eq!(app.apply(Action::Retry), None);
    assert!(app.confirm.is_none());
    for s in [
        Screen::Queues,
        Screen::Agents,
        Screen::Endpoints,
        Screen::Events,
    ] {
        app.apply(Action::Goto(s));
        assert_eq!(app.apply(Action::Retry), None);
        assert!(app.confirm.is_none(), "{s:?}");
    }
    app.apply(Action::Goto(Screen::Failures));
    app.apply(Action::Bottom);
    let Some(Key::Delivery(id)) = app.selected() else {
        panic!("a delivery is selected")
    };
    app.apply(Action::Retry);
    snap("confirm_retry", &mut app);
    let question = app.confirm.as_ref().unwrap().question.clone();
    assert!(question.contains(&format!("delivery #{id}")), "{question}");
    // The data re-sorts under the open dialog: the yes still retries that one.
    let mut failures = app.failures.clone();
    failures.reverse();
    app.apply_update(Update::Failures(failures));
    assert_eq!(app.apply(Action::Yes), Some(Command::RetryDelivery(id)));
    // A retrying delivery is the hub's to retry.
    app.apply(Action::Top);
    app.apply(Action::Down);
    app.apply(Action::Retry);
    assert!(app.confirm.is_none());
}

#[test]
fn filters_and_sorting_are_per_screen() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Events));
    app.apply(Action::StartFilter);
    for c in "zzz".chars() {
        app.apply(Action::PromptChar(c));
    }
    app.apply(Action::PromptDone);
    // Only the notice of skipped items, which every filter keeps, is left.
    assert!(
        app.visible_events()
            .iter()
            .all(|(_, e)| matches!(e, muninn_console::api::StreamItem::Lagged { .. }))
    );
    app.apply(Action::Goto(Screen::Agents));
    assert_eq!(
        app.visible_agents().len(),
        5,
        "the Events filter does not hide agents"
    );
    // Sort Queues by name; the selection stays on its subscription.
    app.apply(Action::Goto(Screen::Queues));
    let before = app.selected();
    app.apply(Action::SortNext);
    assert_eq!(app.selected(), before);
    let names: Vec<String> = app.queues().iter().map(|q| q.label()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    snap("queues_sorted_by_name", &mut app);
    app.apply(Action::SortReverse);
    let reversed: Vec<String> = app.queues().iter().map(|q| q.label()).collect();
    sorted.reverse();
    assert_eq!(reversed, sorted);
    // Failures keep their own order.
    app.apply(Action::Goto(Screen::Failures));
    assert_eq!(app.view().sort, 0);
}

#[test]
fn status_messages_expire() {
    let mut app = full_app();
    app.apply_update(Update::Done("delivery 9001 queued for retry".into(), true));
    assert!(text(&render(&mut app, 80, 24)).contains("queued for retry"));
    app.now += chrono::Duration::seconds(30);
    assert!(!text(&render(&mut app, 80, 24)).contains("queued for retry"));
}

#[test]
fn a_replay_can_be_limited_to_a_time_range() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Queues));
    app.apply(Action::ReplayDead);
    assert!(
        app.confirm
            .as_ref()
            .unwrap()
            .question
            .contains("the 12 dead deliveries")
    );
    app.apply(Action::NextScreen);
    let c = app.confirm.clone().unwrap();
    assert!(
        c.question.contains("created in the last 1h") && c.question.contains("[1h]"),
        "{}",
        c.question
    );
    snap("confirm_replay_last_hour", &mut app);
    // ← twice: back past "all" to the widest window.
    app.apply(Action::PrevScreen);
    app.apply(Action::PrevScreen);
    assert!(app.confirm.as_ref().unwrap().question.contains("[24h]"));
    assert_eq!(
        app.screen,
        Screen::Queues,
        "the arrows do not switch screens under a dialog"
    );
    assert_eq!(
        app.apply(Action::Yes),
        Some(Command::ReplayDead {
            webhook_id: 2,
            since: Some("2026-11-21T12:00:00Z".into())
        })
    );
}

#[test]
fn the_graph_of_a_scenario_with_rates_and_error_states() {
    let mut app = full_app();
    // Two agent refreshes a minute apart give each agent its events per minute.
    let mut agents = app.agents.clone();
    app.now += chrono::Duration::seconds(60);
    for a in &mut agents {
        a.events_count += a.id * 6;
    }
    app.apply_update(Update::Agents(agents));
    app.apply(Action::Goto(Screen::Graph));
    assert_eq!(app.selected(), Some(Key::Scenario(2)), "sorted by name");
    app.apply(Action::Down);
    assert_eq!(app.selected(), Some(Key::Scenario(1)));
    snap("graph", &mut app);
    let t = text(&render(&mut app, 120, 40));
    assert!(t.contains("shop orders in (webhook) 6.0/min"), "{t}");
    assert!(
        t.contains("└→ format for slack, an event formatting agent"),
        "{t}"
    );
    assert!(t.contains("18.0/min · NOT working"), "{t}");
    assert_eq!(app.apply(Action::Open), None);
    assert_eq!(app.detail, Some(Detail::Graph(1)));
    snap("graph_detail", &mut app);
    // Nothing on this screen changes the hub.
    for a in [
        Action::Retry,
        Action::ReplayDead,
        Action::ToggleAgent,
        Action::RunAgent,
    ] {
        app.apply(a);
        assert!(app.confirm.is_none());
    }
}
