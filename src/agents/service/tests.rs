//! The rules the service owns, proven against a real store and a recording stand-in
//! for the running hub.

use std::cell::RefCell;
use std::future::{Future, ready};

use serde_json::{Value, json};

use super::save::AgentInput;
use super::{AgentServiceError, Deps, Running};
use crate::store::agents::{self, AgentRow, NewAgent};
use crate::store::{Store, agent_logs, control_links, links as link_rows};

/// Records what the workflows told the hub.
#[derive(Default)]
struct Told(RefCell<Vec<String>>);

impl Told {
    fn said(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

impl Running for Told {
    fn agent_saved(&self, row: AgentRow) -> impl Future<Output = Result<(), AgentServiceError>> {
        self.0.borrow_mut().push(format!("saved {}", row.id));
        ready(Ok(()))
    }
    fn agent_removed(
        &self,
        id: crate::ids::AgentId,
        _: Option<crate::ids::SubscriptionId>,
    ) -> impl Future<Output = Result<(), AgentServiceError>> {
        self.0.borrow_mut().push(format!("removed {id}"));
        ready(Ok(()))
    }
    fn links_changed(&self) -> impl Future<Output = Result<(), AgentServiceError>> {
        self.0.borrow_mut().push("links".into());
        ready(Ok(()))
    }
    fn feeds_changed(&self, user_id: i64) {
        self.0.borrow_mut().push(format!("feeds {user_id}"));
    }
    fn actor(
        &self,
        _: crate::ids::AgentId,
    ) -> Option<actix::Addr<crate::agents::actor::AgentActor>> {
        None
    }
}

fn open(dir: &std::path::Path) -> Store {
    let mut config = crate::Config::default();
    config.storage.data_dir = dir.to_path_buf();
    Store::open(
        &config.store_options(),
        std::sync::Arc::new(crate::store::NoHook),
        Box::new(|_| {}),
    )
    .unwrap()
}

/// Users 1 and 2, and one agent per `(owner, type, options, disabled)`.
async fn seed(store: &Store, agents_of: Vec<(i64, &'static str, Value, bool)>) -> Vec<AgentRow> {
    store
        .writer()
        .write(move |c, _| {
            crate::store::users::insert(c, "one", false)?;
            crate::store::users::insert(c, "two", false)?;
            let mut rows = Vec::new();
            for (i, (user_id, t, options, disabled)) in agents_of.into_iter().enumerate() {
                let new = NewAgent {
                    user_id,
                    agent_type: t.into(),
                    name: format!("agent {i}"),
                    options: options.to_string(),
                    schedule: None,
                    disabled,
                    keep_events_for: 0,
                    propagate_immediately: true,
                    guid: None,
                };
                rows.push(agents::insert(c, &new)?);
            }
            Ok(rows)
        })
        .await
        .unwrap()
}

fn deps<'a>(store: &'a Store, told: &'a Told) -> Deps<'a, Told> {
    Deps {
        store,
        allow_private_targets: false,
        files: Default::default(),
        insecure: None,
        sentiment: false,
        running: told,
    }
}

#[actix_rt::test]
async fn a_link_to_another_users_agent_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rows = seed(
        &store,
        vec![
            (1, "manual_event", json!({}), false),
            (2, "manual_event", json!({}), false),
        ],
    )
    .await;
    let (mine, theirs) = (rows[0].id, rows[1].id);
    let told = Told::default();
    let err = super::links::create(&deps(&store, &told), Some(1), mine, theirs)
        .await
        .unwrap_err();
    match err {
        AgentServiceError::Invalid { field, message } => {
            assert_eq!(field, "receiver_id");
            assert_eq!(
                message,
                format!("receiver_id: agent {theirs} does not exist or belongs to another user")
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Nor may a user link from an agent that is not theirs: it reads as missing.
    let err = super::links::create(&deps(&store, &told), Some(2), mine, theirs)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("source_id: agent {mine} does not exist")
    );
    let links = store.read(|c| link_rows::list(c, None)).await.unwrap();
    assert!(links.is_empty(), "no link may be written: {links:?}");
    assert!(
        told.said().is_empty(),
        "the hub heard of nothing: {:?}",
        told.said()
    );
}

#[actix_rt::test]
async fn another_users_agent_is_not_found_for_update_delete_or_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rows = seed(&store, vec![(1, "manual_event", json!({}), false)]).await;
    let id = rows[0].id;
    let told = Told::default();
    let d = deps(&store, &told);
    let input = AgentInput {
        name: Some("taken".into()),
        ..AgentInput::default()
    };
    let not_found = |e: AgentServiceError| {
        assert!(
            matches!(e, AgentServiceError::NotFound { what: "agent", id: i } if i == id.0),
            "{e:?}"
        )
    };
    not_found(
        super::save::update(&d, Some(2), id, input)
            .await
            .unwrap_err(),
    );
    not_found(super::save::delete(&d, Some(2), id).await.unwrap_err());
    not_found(super::view(&store, Some(2), id).await.unwrap_err());
    // The owner and an admin (no scope) see it.
    assert_eq!(super::view(&store, Some(1), id).await.unwrap().row.id, id);
    assert_eq!(super::view(&store, None, id).await.unwrap().row.id, id);
    let row = store
        .read(move |c| agents::find(c, id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.name, "agent 0", "the refused update changed nothing");
}

#[actix_rt::test]
async fn enabling_by_a_save_re_checks_the_stored_options() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // A trigger without rules: what an import keeps, disabled, for the user to fix.
    let rows = seed(&store, vec![(1, "trigger", json!({}), true)]).await;
    let id = rows[0].id;
    let told = Told::default();
    let input = AgentInput {
        disabled: Some(false),
        ..AgentInput::default()
    };
    let err = super::save::update(&deps(&store, &told), Some(1), id, input)
        .await
        .unwrap_err();
    let AgentServiceError::Invalid { field, message } = err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert_eq!(field, "disabled");
    assert!(
        message.starts_with(&format!("agent {id} cannot be enabled: ")),
        "{message}"
    );
    assert!(message.ends_with("fix its options (PUT options) and enable it again"));
    let row = store
        .read(move |c| agents::find(c, id))
        .await
        .unwrap()
        .unwrap();
    assert!(row.disabled, "the agent stays disabled");
    assert!(told.said().is_empty());
}

#[actix_rt::test]
async fn a_controller_enables_only_targets_whose_options_run_and_notes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rows = seed(
        &store,
        vec![
            (
                1,
                "scheduler",
                json!({"action": "enable", "schedule": "0 0 * * *"}),
                false,
            ),
            (1, "trigger", json!({}), true),
            (1, "manual_event", json!({}), true),
        ],
    )
    .await;
    let (ctl, bad, good) = (rows[0].id, rows[1].id, rows[2].id);
    store
        .writer()
        .write(move |c, _| control_links::replace_targets(c, ctl, &[bad, good]))
        .await
        .unwrap();
    let told = Told::default();
    let actions = vec![crate::agents::ControlAction::Enable {
        drop_pending_events: false,
    }];
    super::control::carry_out(&deps(&store, &told), ctl, actions)
        .await
        .unwrap();
    let (bad_row, good_row, log) = store
        .read(move |c| {
            Ok((
                agents::find(c, bad)?,
                agents::find(c, good)?,
                agent_logs::recent(c, ctl, 10)?,
            ))
        })
        .await
        .unwrap();
    assert!(
        bad_row.unwrap().disabled,
        "the trigger without rules stays disabled"
    );
    assert!(
        !good_row.unwrap().disabled,
        "the manual_event agent is enabled"
    );
    assert_eq!(told.said(), vec![format!("saved {good}")]);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0]
            .message
            .starts_with("Agent enable refused for 'agent 1': "),
        "{}",
        log[0].message
    );
}

#[actix_rt::test]
async fn create_writes_the_agent_its_links_and_tells_the_hub_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rows = seed(&store, vec![(1, "manual_event", json!({}), false)]).await;
    let source = rows[0].id;
    let told = Told::default();
    let input: AgentInput = serde_json::from_value(json!({
        "type": "event_formatting",
        "name": "  shaped  ",
        "options": {"instructions": {"m": "{{ title }}"}},
        "source_ids": [source],
    }))
    .unwrap();
    let v = super::save::create(&deps(&store, &told), 1, Some(1), input)
        .await
        .unwrap();
    assert_eq!(v.row.name, "shaped");
    assert_eq!(v.links.sources, vec![source]);
    assert_eq!(told.said(), vec![format!("saved {}", v.row.id)]);
    let events = store
        .read(|c| {
            crate::store::events::list(
                c,
                &crate::store::events::EventQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["agent.created"]);
}

#[actix_rt::test]
async fn a_scenario_takes_only_agents_its_creator_may_see_and_hides_from_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rows = seed(
        &store,
        vec![
            (1, "manual_event", json!({}), false),
            (2, "manual_event", json!({}), false),
        ],
    )
    .await;
    let (mine, theirs) = (rows[0].id, rows[1].id);
    let told = Told::default();
    let d = deps(&store, &told);
    let err = super::scenarios::create(&d, 1, Some(1), "s", None, vec![mine, theirs])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("agent_ids: agent {theirs} does not exist")
    );
    assert!(super::scenarios::list(&d, None).await.unwrap().is_empty());
    let (s, ids) = super::scenarios::create(&d, 1, Some(1), " s ", None, vec![mine])
        .await
        .unwrap();
    assert_eq!((s.name.as_str(), ids), ("s", vec![mine]));
    let hidden = super::scenarios::get(&d, Some(2), s.id).await.unwrap_err();
    assert_eq!(hidden.to_string(), format!("scenario {} not found", s.id));
    assert!(super::scenarios::delete(&d, Some(2), s.id).await.is_err());
    assert_eq!(super::scenarios::list(&d, Some(1)).await.unwrap().len(), 1);
}
