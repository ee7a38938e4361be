//! The node and cluster view, drawn from `/worker_status` answers (fixtures in
//! `tests/fixtures/worker_status_*.json`): one node (a one-box hub, where the console
//! only names its node), several nodes, and a cluster with a late and an expired node.
//! Opened with N over any screen; Esc closes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use muninn_console::api::{NodeStatus, WorkerStatus};
use muninn_console::app::{Action, App, Detail, Screen};
use muninn_console::input::action_for;
use muninn_console::worker::{Command, Update};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use support::*;

fn node(name: &str) -> NodeStatus {
    fixture::<WorkerStatus>(name).node.unwrap()
}

fn app_with(name: &str) -> App {
    let mut app = full_app();
    app.apply_update(Update::Node(node(name)));
    app
}

/// Presses N as the terminal sends it.
fn press_n(app: &mut App) -> Option<Command> {
    let a = action_for(app, KeyEvent::new(KeyCode::Char('N'), KeyModifiers::SHIFT))?;
    assert_eq!(a, Action::Nodes);
    app.apply(a)
}

/// The line of the buffer holding `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

#[test]
fn n_opens_the_nodes_over_any_screen_and_esc_closes_it() {
    for s in [Screen::Overview, Screen::Queues, Screen::Graph] {
        let mut app = app_with("worker_status_one");
        app.apply(Action::Goto(s));
        // Opening it asks for fresh data; what it shows comes with every refresh.
        assert_eq!(press_n(&mut app), Some(Command::Refresh));
        assert_eq!(app.detail, Some(Detail::Nodes));
        assert_eq!(app.detail_reload(), None);
        assert_eq!(app.apply(Action::Refresh), Some(Command::Refresh));
        app.apply(Action::Back);
        assert_eq!((app.detail.clone(), app.screen), (None, s));
    }
}

#[test]
fn one_node_is_named_and_stays_out_of_the_way() {
    let mut app = app_with("worker_status_one");
    assert!(!app.is_cluster());
    for (w, h) in SIZES {
        let shown = text(&render(&mut app, w, h));
        assert!(
            shown.contains("http://127.0.0.1:3000 · node box-1"),
            "{shown}"
        );
        // No cluster line, and the status line does not name the node.
        assert!(!shown.contains("this node:"), "{shown}");
        assert!(
            !line_with(&shown, "● connected").contains("box-1"),
            "{shown}"
        );
    }
    press_n(&mut app);
    snap("nodes_one", &mut app);
    let shown = text(&render(&mut app, 120, 40));
    assert!(
        shown.contains("Node box-1  (the node this console talks to)"),
        "{shown}"
    );
    assert!(
        shown.contains("runs here     4 agents, 2 webhooks, 0 claimed"),
        "{shown}"
    );
    let row = line_with(&shown, "* box-1");
    assert!(row.contains("2s ago") && row.contains("live"), "{row}");
    assert!(
        shown.contains("One node: it runs every agent and webhook."),
        "{shown}"
    );
}

#[test]
fn several_nodes_mark_the_one_the_console_talks_to() {
    let mut app = app_with("worker_status_nodes");
    assert!(app.is_cluster());
    let shown = text(&render(&mut app, 80, 24));
    assert!(
        shown.contains("this node: 5 agents, 3 webhooks, 7 claimed · 3 nodes (N)"),
        "{shown}"
    );
    assert!(
        line_with(&shown, "● connected").contains("· node node-2"),
        "{shown}"
    );
    press_n(&mut app);
    snap("nodes_several", &mut app);
    for (w, h) in SIZES {
        let shown = text(&render(&mut app, w, h));
        let marked: Vec<&str> = shown
            .lines()
            .filter(|l| l.contains("│* ") && l.contains(" ago "))
            .collect();
        assert_eq!(marked.len(), 1, "one node is this one:\n{shown}");
        assert!(
            marked[0].contains("* node-2") && marked[0].contains("1s ago"),
            "{shown}"
        );
        for (id, numbers) in [
            ("  node-1 ", ["6", "2", "4"]),
            ("* node-2 ", ["5", "3", "7"]),
            ("  node-3-with-a-v…", ["5", "2", "0"]),
        ] {
            let row = line_with(&shown, id);
            let cols: Vec<&str> = row.split_whitespace().collect();
            let at = cols.iter().position(|c| *c == "live").unwrap();
            assert_eq!(cols[at + 1..at + 4], numbers, "{row}");
        }
        assert!(
            !shown.contains("ago LATE") && !shown.contains("ago EXPIRED"),
            "{shown}"
        );
    }
}

#[test]
fn a_late_and_an_expired_node_are_said_in_words_and_colour() {
    let mut app = app_with("worker_status_late");
    let shown = text(&render(&mut app, 80, 24));
    assert!(
        shown.contains("this node: 9 agents, 4 webhooks, 2 claimed · 3 nodes, 1 late, 1 expired"),
        "{shown}"
    );
    press_n(&mut app);
    snap("nodes_late", &mut app);
    let buf = render(&mut app, 120, 40);
    let shown = text(&buf);
    assert!(
        line_with(&shown, "  node-2 ").contains("12s ago LATE"),
        "{shown}"
    );
    assert!(
        line_with(&shown, "  node-3 ").contains("3m ago EXPIRED"),
        "{shown}"
    );
    assert!(
        shown.contains("cluster       3 nodes, 1 late, 1 expired · heartbeat 5s, lease 15s"),
        "{shown}"
    );
    assert!(
        shown.contains("LATE: no heartbeat for over 10s (two heartbeats)"),
        "{shown}"
    );
    // The states in colour too: late yellow, expired red, live green.
    let colour_of = |word: &str| {
        let needle = format!(" {word} ");
        let y = shown.lines().position(|l| l.contains(&needle)).unwrap();
        let line = shown.lines().nth(y).unwrap();
        // One cell per character (the border's too), not per byte.
        let x = line[..line.find(&needle).unwrap() + 1].chars().count();
        buf[(x as u16, y as u16)].fg
    };
    assert_eq!(colour_of("LATE"), Color::Yellow);
    assert_eq!(colour_of("EXPIRED"), Color::Red);
    assert_eq!(colour_of("live"), Color::Green);
}

#[test]
fn anyone_but_an_admin_sees_only_this_node() {
    let mut n = node("worker_status_late");
    n.nodes.clear();
    let mut app = full_app();
    app.apply_update(Update::Node(n));
    assert!(app.is_cluster(), "two live nodes");
    press_n(&mut app);
    let shown = text(&render(&mut app, 80, 24));
    assert!(shown.contains("Node node-1"), "{shown}");
    assert!(shown.contains("2 live nodes"), "{shown}");
    assert!(
        shown.contains("Only admins see the other nodes sharing the database."),
        "{shown}"
    );
}

#[test]
fn before_the_hub_answers_the_view_says_it_is_loading() {
    let mut app = full_app();
    press_n(&mut app);
    let shown = text(&render(&mut app, 80, 24));
    assert!(shown.contains("loading …"), "{shown}");
    // A hub from before several nodes sends no `node`: it decodes, with nothing to show.
    let old: WorkerStatus = serde_json::from_str(
        r#"{"pending":0,"awaiting_retry":0,"recent_failures":0,"event_count":0,"max_id":0,"events_url":null,"compute_time":0.1}"#,
    )
    .unwrap();
    assert_eq!(old.node, None);
}

#[test]
fn tiny_terminals_do_not_panic_in_the_nodes_view() {
    for name in ["worker_status_one", "worker_status_late"] {
        let mut app = app_with(name);
        for (w, h) in [(1, 1), (10, 3), (40, 10), (79, 23)] {
            render(&mut app, w, h);
        }
        press_n(&mut app);
        for (w, h) in [(1, 1), (10, 3), (40, 10), (79, 23)] {
            render(&mut app, w, h);
        }
    }
}
