//! The subscription actions an operator needs at 3 a.m., as the console shows them at
//! 80x24 and 120x40: closing an open circuit (the detail says since when and when it
//! half-opens), deleting a subscription, and editing its url, enabled flag, event
//! types and filters in a form bound to its id. Each asks first, naming the row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use muninn_console::api::{QueueDetail, Subscription, Summary};
use muninn_console::app::{Action, Detail, Key, Screen};
use muninn_console::worker::{Command, Update};
use serde_json::json;
use support::*;

fn sub5() -> Subscription {
    Subscription {
        id: 5,
        name: String::new(),
        url: "http://127.0.0.1:9000/hooks/in".into(),
        event_types: vec!["order.created".into(), "order.refunded".into()],
        retry_count: 6,
        retry_delay: 10.0,
        max_retry_delay: 3600.0,
        timeout: 30.0,
        max_in_flight: 8,
        is_active: true,
        failure_threshold: 5,
        circuit_cooldown: 300.0,
        circuit_state: "open".into(),
        circuit_opened_at: Some("2026-11-22T11:58:00.000Z".into()),
        circuit_half_opens_at: Some("2026-11-22T12:03:00.000Z".into()),
        consecutive_failures: 5,
        filters: Some(json!({"data.region": "eu"})),
        ..Default::default()
    }
}

fn detail5() -> QueueDetail {
    QueueDetail {
        sub: sub5(),
        ..Default::default()
    }
}

/// Queues with the unnamed subscription #5 (open circuit) selected.
fn on_sub5() -> muninn_console::app::App {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Queues));
    app.apply(Action::Down);
    assert_eq!(app.selected(), Some(Key::Sub(5)));
    app
}

#[test]
fn an_open_circuit_says_since_when_and_is_closed_after_a_yes() {
    let mut app = on_sub5();
    app.apply(Action::Open);
    app.apply_update(Update::QueueDetail(detail5()));
    let t = text(&render(&mut app, 80, 24));
    assert!(t.contains("OPEN since 11:58:00 (2m ago)"), "{t}");
    assert!(t.contains("half-opens 12:03:00 (in 3m)"), "{t}");
    snap("queue_detail_circuit_opened_at", &mut app);

    assert_eq!(app.apply(Action::ResetCircuit), None);
    let c = app.confirm.clone().unwrap();
    assert_eq!(c.target, Key::Sub(5));
    assert!(
        c.question
            .contains("Close the circuit of subscription #5 \"127.0.0.1:9000/hooks/in\""),
        "{}",
        c.question
    );
    snap("confirm_reset_circuit", &mut app);
    // The list re-sorts under the dialog: the yes still closes #5's circuit.
    let mut s: Summary = fixture("summary");
    s.subscriptions.reverse();
    s.subscriptions.retain(|q| q.id != 2);
    app.apply_update(Update::Summary(s));
    assert_eq!(
        app.apply(Action::Yes),
        Some(Command::ResetCircuit { webhook_id: 5 })
    );
    assert_eq!(
        Command::ResetCircuit { webhook_id: 5 }.target(),
        Some(Key::Sub(5))
    );
}

#[test]
fn a_closed_circuit_has_nothing_to_reset_and_c_applies_to_subscriptions_only() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Queues));
    // #1 "crm": closed.
    while app.selected() != Some(Key::Sub(1)) {
        app.apply(Action::Down);
    }
    assert_eq!(app.apply(Action::ResetCircuit), None);
    assert!(app.confirm.is_none());
    assert!(
        app.message().unwrap().text.contains("is closed"),
        "{:?}",
        app.message()
    );
    for s in [Screen::Overview, Screen::Failures, Screen::Agents] {
        app.apply(Action::Goto(s));
        for a in [Action::ResetCircuit, Action::DeleteSub, Action::EditSub] {
            assert_eq!(app.apply(a), None);
            assert!(
                app.confirm.is_none() && app.detail.is_none(),
                "{a:?} on {s:?}"
            );
            assert!(app.message().unwrap().text.contains("2 Queues"));
        }
    }
}

#[test]
fn delete_names_the_subscription_and_closes_its_detail() {
    let mut app = on_sub5();
    app.apply(Action::DeleteSub);
    let c = app.confirm.clone().unwrap();
    assert!(
        c.question
            .starts_with("Delete subscription #5 \"127.0.0.1:9000/hooks/in\"?"),
        "{}",
        c.question
    );
    snap("confirm_delete", &mut app);
    // No: nothing is sent.
    assert_eq!(app.apply(Action::No), None);
    app.apply(Action::Open);
    app.apply_update(Update::QueueDetail(detail5()));
    app.apply(Action::DeleteSub);
    assert_eq!(
        app.apply(Action::Yes),
        Some(Command::DeleteSubscription { webhook_id: 5 })
    );
    assert!(
        app.detail.is_none(),
        "the deleted subscription's detail closes"
    );
}

fn type_text(app: &mut muninn_console::app::App, s: &str) {
    for c in s.chars() {
        app.apply(Action::PromptChar(c));
    }
}

#[test]
fn the_edit_form_is_bound_to_its_subscription_and_sends_only_changes() {
    let mut app = on_sub5();
    // From the list the form loads the settings first.
    assert_eq!(app.apply(Action::EditSub), Some(Command::QueueDetail(5)));
    assert_eq!(app.focus(), Some(Key::Sub(5)));
    assert_eq!(app.detail_reload(), Some(Command::QueueDetail(5)));
    snap("edit_loading", &mut app);
    // A refresh that re-sorts and moves the list's selection does not move the form.
    let mut s: Summary = fixture("summary");
    s.subscriptions.retain(|q| q.id != 2);
    app.apply_update(Update::Summary(s));
    app.apply_update(Update::QueueDetail(detail5()));
    assert_eq!(app.focus(), Some(Key::Sub(5)));
    assert_eq!(app.detail_reload(), None, "a loaded form is not reloaded");
    // Nothing changed yet.
    app.apply(Action::PromptDone);
    assert!(app.confirm.is_none());
    assert_eq!(app.message().unwrap().text, "nothing changed");

    // url: replace the path.
    for _ in 0.."hooks/in".len() {
        app.apply(Action::PromptBackspace);
    }
    type_text(&mut app, "v2/orders");
    app.apply(Action::Down);
    // enabled: letters do nothing, Space toggles.
    type_text(&mut app, "x ");
    app.apply(Action::Down);
    app.apply(Action::Down);
    // filters: broken JSON is refused in the form.
    type_text(&mut app, "}");
    snap("edit_form", &mut app);
    app.apply(Action::PromptDone);
    assert!(app.confirm.is_none());
    let Some(Detail::Edit(form)) = &app.detail else {
        panic!("the form stays open")
    };
    assert!(
        form.error
            .as_deref()
            .unwrap()
            .contains("filters is not valid JSON")
    );
    snap("edit_form_error", &mut app);
    app.apply(Action::PromptBackspace);
    // A later answer for #5 does not overwrite what was typed.
    app.apply_update(Update::QueueDetail(detail5()));
    app.apply(Action::PromptDone);
    let c = app.confirm.clone().unwrap();
    assert_eq!(c.target, Key::Sub(5));
    assert_eq!(
        c.question,
        "Save subscription #5 \"127.0.0.1:9000/hooks/in\": url → http://127.0.0.1:9000/v2/orders, enabled → no?"
    );
    snap("confirm_edit", &mut app);
    // No keeps the form; yes sends the changes and shows the detail read back.
    app.apply(Action::No);
    assert!(matches!(app.detail, Some(Detail::Edit(_))));
    app.apply(Action::PromptDone);
    let expected = Command::UpdateSubscription {
        webhook_id: 5,
        body: json!({"url": "http://127.0.0.1:9000/v2/orders", "is_active": false}),
    };
    assert_eq!(app.apply(Action::Yes), Some(expected));
    assert!(matches!(app.detail, Some(Detail::Queue(5, None))));
}

#[test]
fn filters_and_event_types_are_edited_as_text_and_esc_changes_nothing() {
    let mut app = on_sub5();
    app.apply(Action::Open);
    app.apply_update(Update::QueueDetail(detail5()));
    // From the loaded detail the form opens filled, with nothing to fetch.
    assert_eq!(app.apply(Action::EditSub), None);
    app.apply(Action::Up);
    // filters (the last field): cleared.
    for _ in 0..40 {
        app.apply(Action::PromptBackspace);
    }
    app.apply(Action::Up);
    type_text(&mut app, ", invoice.*");
    app.apply(Action::PromptDone);
    let c = app.confirm.clone().unwrap();
    assert_eq!(
        c.command,
        Command::UpdateSubscription {
            webhook_id: 5,
            body: json!({"event_types": ["order.created", "order.refunded", "invoice.*"],
                         "filters": null}),
        }
    );
    assert!(c.question.contains("filters → none"), "{}", c.question);
    app.apply(Action::No);
    assert_eq!(app.apply(Action::Back), Some(Command::QueueDetail(5)));
    assert!(matches!(app.detail, Some(Detail::Queue(5, None))));
    assert!(app.message().unwrap().text.contains("nothing was changed"));
}
