//! Render tests: every screen and overlay drawn from fixture data on ratatui's
//! TestBackend at 80x24 and 120x40, compared with snapshots (insta). Fixtures are in
//! `tests/fixtures/`; they include very long names. Empty states and connection
//! problems are drawn too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use muninn_console::api::{Agent, AgentLog, Delivery, Summary};
use muninn_console::app::{Action, Screen};
use muninn_console::worker::{Command, Connection, Update};
use ratatui::style::Color;
use support::*;

#[test]
fn every_screen_with_data() {
    for s in Screen::ALL {
        let mut app = full_app();
        app.apply(Action::Goto(s));
        app.apply(Action::Down);
        snap(&s.title().to_lowercase(), &mut app);
    }
}

#[test]
fn every_screen_empty() {
    for s in Screen::ALL {
        let mut app = empty_hub_app();
        app.apply(Action::Goto(s));
        snap(&format!("{}_empty", s.title().to_lowercase()), &mut app);
    }
}

#[test]
fn queues_are_sorted_worst_first() {
    let app = full_app();
    let ids: Vec<i64> = app.queues().iter().map(|q| q.id).collect();
    // Open circuits with dead deliveries (most first), then retrying, then the
    // healthy ones.
    assert_eq!(ids, [2, 5, 3, 1, 4]);
}

#[test]
fn delivery_detail_masks_secrets() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Failures));
    let cmd = app.apply(Action::Open);
    assert_eq!(cmd, Some(Command::DeliveryDetail(9001)));
    snap("delivery_loading", &mut app);
    app.apply_update(Update::DeliveryDetail(fixture::<Delivery>("delivery")));
    snap("delivery_detail", &mut app);
    for (w, h) in SIZES {
        let all = (0..20)
            .map(|s| {
                app.detail_scroll = s * 5;
                text(&render(&mut app, w, h))
            })
            .collect::<String>();
        assert!(!all.contains("sk_live_should_never_show"));
        assert!(all.contains("Authorization: [masked]"));
    }
}

#[test]
fn agent_detail_shows_options_memory_and_logs() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Agents));
    app.apply(Action::Down);
    app.apply(Action::Down);
    assert_eq!(app.apply(Action::Open), Some(Command::AgentDetail(3)));
    let agents = fixture::<Vec<Agent>>("agents");
    app.apply_update(Update::AgentDetail {
        agent: agents[2].clone(),
        logs: fixture::<Vec<AgentLog>>("agent_logs"),
    });
    snap("agent_detail", &mut app);
}

#[test]
fn help_and_confirm_overlays() {
    let mut app = full_app();
    app.apply(Action::Help);
    snap("help", &mut app);
    app.apply(Action::Back);
    assert!(!app.help);
    app.apply(Action::Goto(Screen::Queues));
    assert_eq!(app.apply(Action::ReplayDead), None);
    snap("confirm_replay", &mut app);
    assert_eq!(
        app.apply(Action::Yes),
        Some(Command::ReplayDead {
            webhook_id: 2,
            since: None
        })
    );
    // Every action that changes the hub asks first.
    app.apply(Action::Goto(Screen::Agents));
    assert_eq!(app.apply(Action::ClearMemory), None);
    assert!(app.confirm.is_some());
    assert_eq!(app.apply(Action::No), None);
    assert_eq!(app.apply(Action::RunAgent), None);
    assert!(
        app.confirm
            .as_ref()
            .unwrap()
            .question
            .contains("agent #1 \"shop orders in\"")
    );
    assert_eq!(app.apply(Action::Yes), Some(Command::RunAgent(1)));
}

#[test]
fn filter_narrows_the_list() {
    let mut app = full_app();
    app.apply(Action::Goto(Screen::Events));
    app.apply(Action::StartFilter);
    for c in "circuit".chars() {
        app.apply(Action::PromptChar(c));
    }
    snap("events_filtered", &mut app);
    app.apply(Action::PromptDone);
    assert_eq!(app.visible_events().len(), 2); // the event and the lag notice
}

#[test]
fn connection_problems_are_plain_messages() {
    let mut app = empty_app();
    app.apply_update(Update::Connection(Connection::Disconnected(
        "cannot reach the hub: Failed to connect to host: Connection refused (os error 111)".into(),
    )));
    snap("disconnected", &mut app);
    app.apply_update(Update::Connection(Connection::Unauthorized(
        "the hub refused the API token (401): invalid API token".into(),
    )));
    snap("unauthorized", &mut app);
    // With data already on screen, a dropped connection keeps it and says how old
    // it is.
    let mut app = full_app();
    app.apply_update(Update::Connection(Connection::Disconnected("gone".into())));
    app.now += chrono::Duration::seconds(42);
    let t = text(&render(&mut app, 80, 24));
    assert!(t.contains("STALE: hub not answering, data 42s old"), "{t}");
    assert!(t.contains("Ingest"));
    app.apply(Action::Goto(Screen::Queues));
    snap("queues_stale", &mut app);
    app.apply_update(Update::Connection(Connection::Connected));
    let t = text(&render(&mut app, 80, 24));
    assert!(t.contains("● connected") && !t.contains("STALE"), "{t}");
}

#[test]
fn no_color_draws_without_colours() {
    let mut app = full_app();
    app.color = false;
    for s in Screen::ALL {
        app.apply(Action::Goto(s));
        let buf = render(&mut app, 120, 40);
        for cell in buf.content() {
            assert_eq!(cell.fg, Color::Reset, "{s:?}: {cell:?}");
            assert_eq!(cell.bg, Color::Reset, "{s:?}: {cell:?}");
        }
    }
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut app = full_app();
    for s in Screen::ALL {
        app.apply(Action::Goto(s));
        for (w, h) in [(1, 1), (10, 3), (40, 10), (79, 23)] {
            render(&mut app, w, h);
        }
    }
    app.apply(Action::Help);
    render(&mut app, 20, 5);
}

#[test]
fn the_database_size_is_marked_as_admin_only_when_not_sent() {
    let mut app = empty_app();
    app.apply_update(Update::Summary(Summary {
        version: "0.1.0".into(),
        database_bytes: None,
        ..Default::default()
    }));
    let t = text(&render(&mut app, 120, 40));
    assert!(t.contains("(admins only)"), "{t}");
}

#[test]
fn credentials_show_names_and_modes_never_values() {
    use muninn_console::api::Credential;
    let mut app = full_app();
    let cmd = app.apply(Action::Credentials);
    assert_eq!(cmd, Some(Command::Credentials));
    snap("credentials_loading", &mut app);
    let listed = vec![
        Credential {
            id: 2,
            credential_name: "slack_webhook_url".into(),
            mode: "text".into(),
            updated_at: "2026-11-22T11:58:00.000Z".into(),
        },
        Credential {
            id: 1,
            credential_name: "github_token".into(),
            mode: "text".into(),
            updated_at: "2026-11-20T12:00:00.000Z".into(),
        },
    ];
    app.apply_update(Update::Credentials(listed));
    snap("credentials", &mut app);
    // Names in order; F5 reloads the list; Esc closes it.
    let shown = text(&render(&mut app, 120, 40));
    let (a, b) = (shown.find("github_token"), shown.find("slack_webhook_url"));
    assert!(a.is_some() && b.is_some() && a < b, "{shown}");
    assert_eq!(app.apply(Action::Refresh), Some(Command::Credentials));
    app.apply(Action::Back);
    assert!(app.detail.is_none());
}

#[test]
fn no_credentials_says_how_to_add_one() {
    let mut app = empty_hub_app();
    app.apply(Action::Credentials);
    app.apply_update(Update::Credentials(Vec::new()));
    let shown = text(&render(&mut app, 120, 40));
    assert!(shown.contains("No credentials yet."), "{shown}");
    assert!(shown.contains("POST /api/credentials"), "{shown}");
}
