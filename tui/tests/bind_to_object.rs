//! Actions bind to the object, not the row. Thousands of random key sequences run
//! against data that refreshes between keys (re-sorted, rows added and removed,
//! live events arriving). Every command that changes the hub must come from a yes
//! to a confirmation, and act on the object that confirmation named; every
//! confirmation must name the object that was highlighted (or whose detail was
//! open) when its key was pressed, on a screen that shows that kind of object; and
//! a refresh never moves a selection off an object that is still listed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::time::Duration;

use muninn_console::api::{
    Agent, Delivery, Failure, IncomingWebhook, Queue, QueueDetail, StreamItem, Subscription,
    Summary,
};
use muninn_console::app::{App, Key, Screen};
use muninn_console::input::action_for;
use muninn_console::worker::{Command, Connection, Update};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const NAMES: [&str; 4] = ["orders", "billing", "orders", ""];

#[derive(Debug, Clone)]
struct Data {
    subs: Vec<(i64, i64, i64, bool, bool, usize)>,
    failures: Vec<(i64, i64, bool, u32)>,
    agents: Vec<(i64, bool, usize, usize)>,
    incoming: Vec<(i64, usize)>,
}

#[derive(Debug, Clone)]
enum Step {
    Key(KeyCode),
    Refresh(Data),
    Stream(i64, bool),
}

fn keys() -> impl Strategy<Value = KeyCode> {
    let chars = "jkgGrRptexMcynsS/:qab12345677CDEN "
        .chars()
        .chain("jjjkkk\r\r\r".chars())
        .collect::<Vec<_>>();
    prop_oneof![
        8 => proptest::sample::select(chars).prop_map(|c| if c == '\r' {
            KeyCode::Enter
        } else {
            KeyCode::Char(c)
        }),
        1 => proptest::sample::select(vec![
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::PageDown,
            KeyCode::PageUp,
            KeyCode::Backspace,
            KeyCode::Enter,
        ]),
    ]
}

fn data() -> impl Strategy<Value = Data> {
    (
        prop::collection::vec(
            (
                1i64..10,
                0i64..4,
                0i64..4,
                any::<bool>(),
                any::<bool>(),
                0usize..4,
            ),
            0..8,
        ),
        prop::collection::vec((1i64..14, 1i64..10, any::<bool>(), 0u32..600), 0..10),
        prop::collection::vec((1i64..9, any::<bool>(), 0usize..4, 0usize..3), 0..8),
        prop::collection::vec((1i64..5, 0usize..4), 0..4),
    )
        .prop_map(|(subs, failures, agents, incoming)| Data {
            subs,
            failures,
            agents,
            incoming,
        })
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            6 => keys().prop_map(Step::Key),
            2 => data().prop_map(Step::Refresh),
            1 => (1i64..50, any::<bool>()).prop_map(|(id, d)| Step::Stream(id, d)),
        ],
        1..80,
    )
}

fn dedup<T: Clone>(v: &[T], id: impl Fn(&T) -> i64) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    v.iter().filter(|x| seen.insert(id(x))).cloned().collect()
}

fn updates(d: &Data) -> Vec<Update> {
    let subs: Vec<Queue> = dedup(&d.subs, |s| s.0)
        .into_iter()
        .map(|(id, dead, retrying, paused, open, n)| Queue {
            id,
            name: NAMES[n].into(),
            url: format!("http://10.0.0.{id}:8080/hook"),
            is_active: true,
            paused,
            circuit: if open { "open" } else { "closed" }.into(),
            dead,
            retrying,
            ..Default::default()
        })
        .collect();
    let failures = dedup(&d.failures, |f| f.0)
        .into_iter()
        .map(|(id, webhook_id, dead, age)| Failure {
            delivery: Delivery {
                id,
                webhook_id,
                status: if dead { "dead" } else { "retrying" }.into(),
                updated_at: format!("2026-11-22T11:{:02}:{:02}.000Z", age / 60 % 60, age % 60),
                ..Default::default()
            },
            subscription: NAMES[(webhook_id % 4) as usize].into(),
            event_type: "order.created".into(),
        })
        .collect();
    let agents = dedup(&d.agents, |a| a.0)
        .into_iter()
        .map(|(id, disabled, n, kind)| Agent {
            id,
            name: NAMES[n].into(),
            agent_type: ["webhook", "data_output", "event_formatting"][kind].into(),
            disabled,
            ..Default::default()
        })
        .collect();
    let incoming = dedup(&d.incoming, |w| w.0)
        .into_iter()
        .map(|(id, n)| IncomingWebhook {
            id,
            name: NAMES[n].into(),
            is_active: true,
            ..Default::default()
        })
        .collect();
    // Each subscription's settings, as an open detail or edit form reads them.
    let details: Vec<Update> = subs
        .iter()
        .map(|q: &Queue| {
            Update::QueueDetail(QueueDetail {
                sub: Subscription {
                    id: q.id,
                    url: q.url.clone(),
                    is_active: true,
                    event_types: vec!["*".into()],
                    ..Default::default()
                },
                ..Default::default()
            })
        })
        .collect();
    let mut all = vec![
        Update::Summary(Summary {
            subscriptions: subs,
            ..Default::default()
        }),
        Update::Failures(failures),
        Update::Agents(agents),
        Update::Incoming(incoming),
    ];
    all.extend(details);
    all
}

/// The kind of object each screen shows; details show their own object.
fn shown_on(screen: Screen, k: Key) -> bool {
    matches!(
        (screen, k),
        (Screen::Queues, Key::Sub(_))
            | (Screen::Failures, Key::Delivery(_))
            | (Screen::Agents, Key::Agent(_))
            | (Screen::Endpoints, Key::AgentEndpoint(_) | Key::Incoming(_))
            | (Screen::Events, Key::Stream(_))
            | (Screen::Graph, Key::Scenario(_))
    )
}

fn id_of(k: Key) -> String {
    match k {
        Key::Sub(i)
        | Key::Delivery(i)
        | Key::Agent(i)
        | Key::AgentEndpoint(i)
        | Key::Incoming(i) => format!("#{i}"),
        Key::Stream(s) => format!("{s}"),
        Key::Scenario(i) => format!("#{i}"),
        Key::Credentials => "credentials".into(),
        Key::Nodes => "nodes".into(),
    }
}

#[derive(Default)]
struct Counts {
    asked: Cell<usize>,
    executed: Cell<usize>,
    kept: Cell<usize>,
    /// The kinds of command executed (the variant's name).
    kinds: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

fn run(steps: &[Step], counts: &Counts) -> Result<(), TestCaseError> {
    let mut app = App::new("http://127.0.0.1:3000", false, Duration::from_secs(1));
    app.apply_update(Update::Connection(Connection::Connected));
    for step in steps {
        match step {
            Step::Key(code) => {
                let before_confirm = app.confirm.clone();
                let screen = app.screen;
                let detail = app.detail.as_ref().map(|d| d.key());
                let focus = app.focus();
                let highlighted = app.selection().map(|i| app.keys(app.screen)[i]);
                if detail.is_none() {
                    prop_assert_eq!(focus, highlighted, "the selection is the highlighted row");
                }
                let Some(a) = action_for(&app, KeyEvent::new(*code, KeyModifiers::NONE)) else {
                    continue;
                };
                let cmd = app.apply(a);
                app.quit = false;
                if before_confirm.is_none()
                    && let Some(c) = &app.confirm
                {
                    counts.asked.set(counts.asked.get() + 1);
                    prop_assert_eq!(Some(c.target), focus, "asks about the object in focus");
                    prop_assert!(
                        c.question.contains(&id_of(c.target)),
                        "the question names the object: {}",
                        c.question
                    );
                    prop_assert!(
                        detail == Some(c.target)
                            || (detail.is_none() && shown_on(screen, c.target)),
                        "{:?} asked on {:?} (detail {:?})",
                        c.target,
                        screen,
                        detail
                    );
                    prop_assert_eq!(c.command.target(), Some(c.target));
                }
                if let Some(cmd) = cmd
                    && let Some(target) = cmd.target()
                {
                    counts.executed.set(counts.executed.get() + 1);
                    let kind = format!("{cmd:?}");
                    let kind = kind.split([' ', '(', '{']).next().unwrap_or("").to_string();
                    counts.kinds.borrow_mut().insert(kind);
                    let Some(c) = before_confirm else {
                        return Err(TestCaseError::fail(format!(
                            "{cmd:?} sent without a confirmation"
                        )));
                    };
                    prop_assert_eq!(target, c.target, "acts on the object the dialog named");
                    prop_assert_eq!(&cmd, &c.command);
                }
                if let Some(Command::DeliveryDetail(id)) = app.confirm.as_ref().map(|c| &c.command)
                {
                    prop_assert!(*id > 0);
                }
            }
            Step::Refresh(d) => {
                let before: Vec<Option<Key>> = app.views.iter().map(|v| v.selected).collect();
                for u in updates(d) {
                    app.apply_update(u);
                }
                for s in Screen::ALL {
                    let Some(k) = before[s.index()] else { continue };
                    if app.keys(s).contains(&k) {
                        counts.kept.set(counts.kept.get() + 1);
                        prop_assert_eq!(app.views[s.index()].selected, Some(k), "{:?}", s);
                    }
                }
            }
            Step::Stream(id, delivery) => {
                app.apply_update(Update::Stream(if *delivery {
                    StreamItem::Delivery {
                        delivery_id: *id,
                        webhook_id: 1,
                        user_id: 1,
                        event_id: *id,
                        event_type: "t".into(),
                        status: "dead".into(),
                        attempts: 1,
                        response_status: None,
                        error: None,
                        at: "2026-11-22T11:00:00Z".into(),
                    }
                } else {
                    StreamItem::Event {
                        id: *id,
                        user_id: 1,
                        agent_id: None,
                        event_type: "t".into(),
                        created_at: "2026-11-22T11:00:00Z".into(),
                        payload: serde_json::json!({"n": id}),
                    }
                }));
            }
        }
    }
    Ok(())
}

#[test]
fn every_action_acts_on_the_object_its_confirmation_named() {
    let counts = Counts::default();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&steps(), |s| run(&s, &counts))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "asked {}, executed {}, kept {}, kinds {:?}",
        counts.asked.get(),
        counts.executed.get(),
        counts.kept.get(),
        counts.kinds.borrow()
    );
    // The sequences reach what they test: questions, yeses, and kept selections.
    assert!(counts.asked.get() > 400, "asked {}", counts.asked.get());
    assert!(
        counts.executed.get() > 100,
        "executed {}",
        counts.executed.get()
    );
    assert!(counts.kept.get() > 1000, "kept {}", counts.kept.get());
    // Every action that changes the hub was reached, the edit form's save included.
    let kinds = counts.kinds.borrow();
    for k in [
        "RetryDelivery",
        "ReplayDead",
        "SetPaused",
        "TestDelivery",
        "ResetCircuit",
        "UpdateSubscription",
        "DeleteSubscription",
        "SetAgentDisabled",
        "RunAgent",
        "ClearAgentMemory",
    ] {
        assert!(kinds.contains(k), "{k} never executed: {kinds:?}");
    }
}
