//! The writer's tests: batches, retries, ids, counts and panics, on a store in a
//! temporary directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::Connection;

use super::super::{NoHook, Store, users};

fn store() -> (tempfile::TempDir, Store) {
    store_with_sink(Box::new(|_| {}))
}

fn store_with_sink(sink: super::CommitSink) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let store = Store::open(&config.store_options(), Arc::new(NoHook), sink).unwrap();
    (dir, store)
}

/// Occupies the writer with a slow write and returns once it is running, so the
/// writes queued next wait together and form one batch.
fn hold(
    writer: &super::Writer,
) -> impl std::future::Future<Output = Result<(), super::StoreError>> + use<> {
    let (started, running) = std::sync::mpsc::channel();
    let gate = writer.write(move |_, _| {
        let _ = started.send(());
        std::thread::sleep(std::time::Duration::from_millis(200));
        Ok(())
    });
    running.recv().unwrap();
    gate
}

/// Repeatable writes share a batch without savepoints. When one of them fails
/// halfway, the batch is rolled back and run again with a savepoint per write: the
/// failing write leaves nothing, the others commit, and each answer is its own.
#[actix_rt::test]
async fn a_failing_repeatable_write_undoes_only_itself() {
    let (_dir, store) = store();
    let writer = store.writer();
    // Holds the writer while the next three queue up, so they form one batch.
    let gate = hold(writer);
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let a = writer.write_repeatable(move |c, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        users::insert(c, "a", false).map(|u| u.name)
    });
    let b = writer.write_repeatable(|c, _| {
        users::insert(c, "b", false)?;
        users::insert(c, "a", false).map(|u| u.name)
    });
    let c = writer.write_repeatable(|c, _| users::insert(c, "c", false).map(|u| u.name));
    gate.await.unwrap();
    assert_eq!(a.await.unwrap(), "a");
    assert!(b.await.is_err(), "the duplicate name fails its write");
    assert_eq!(c.await.unwrap(), "c");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the write before the failure ran without and then with its savepoint"
    );
    let mut names: Vec<String> = store
        .read(|c| Ok(users::list(c)?.into_iter().map(|u| u.name).collect()))
        .await
        .unwrap();
    names.retain(|n| n.len() == 1);
    names.sort();
    assert_eq!(names, ["a", "c"]);
}

/// The events of a batch that was rolled back and run again reach the Router once,
/// from the run that committed, and only those of the writes that succeeded.
#[actix_rt::test]
async fn a_retried_batch_reports_each_committed_event_once() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    let (_dir, store) = store_with_sink(Box::new(move |batch| {
        let mut seen = sink.lock().unwrap();
        seen.extend(batch.iter().map(|c| c.event.event_type.clone()));
    }));
    let writer = store.writer();
    let user = writer
        .write(|c, _| users::insert(c, "owner", false).map(|u| u.id))
        .await
        .unwrap();
    let event = move |name: &str| crate::store::events::NewEvent {
        user_id: user,
        agent_id: None,
        event_type: name.to_string(),
        payload: "{}".into(),
        keep_for_seconds: 0,
    };
    let gate = hold(writer);
    let (a, b, c) = (event("a"), event("b"), event("c"));
    let first = writer.write_repeatable(move |conn, out| {
        out.insert(conn, std::slice::from_ref(&a), 0).map(|_| ())
    });
    let failing = writer.write_repeatable(move |conn, out| {
        out.insert(conn, std::slice::from_ref(&b), 0)?;
        Err::<(), _>(super::StoreError::NotFound("the thing this write needed"))
    });
    let last = writer.write_repeatable(move |conn, out| {
        out.insert(conn, std::slice::from_ref(&c), 0).map(|_| ())
    });
    gate.await.unwrap();
    first.await.unwrap();
    assert!(failing.await.is_err());
    last.await.unwrap();
    // The sink runs after the waiters are answered, before the next batch.
    writer.write(|_, _| Ok(())).await.unwrap();
    let reported = seen.lock().unwrap().clone();
    assert_eq!(reported, ["a", "c"]);
    let mut stored: Vec<String> = store
        .read(|c| {
            let all = crate::store::events::EventQuery {
                limit: 100,
                ..Default::default()
            };
            Ok(crate::store::events::list(c, &all)?
                .into_iter()
                .map(|e| e.event_type)
                .collect())
        })
        .await
        .unwrap();
    stored.sort();
    assert_eq!(stored, ["a", "c"]);
}

fn open_in(dir: &std::path::Path) -> Store {
    let mut config = crate::Config::default();
    config.storage.data_dir = dir.to_path_buf();
    Store::open(&config.store_options(), Arc::new(NoHook), Box::new(|_| {})).unwrap()
}

/// A store in a temporary directory (reopened with [`open_in`]) with one agent.
async fn store_with_agent() -> (tempfile::TempDir, Store, crate::store::agents::AgentRow) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path());
    let agent = store
        .writer()
        .write(|c, _| crate::store::test_webhook_agent(c))
        .await
        .unwrap();
    (dir, store, agent)
}

/// Inserts `n` events emitted by `agent` and returns their ids.
async fn emit(
    store: &Store,
    agent: &crate::store::agents::AgentRow,
    n: usize,
) -> Vec<crate::ids::EventId> {
    let event = crate::store::events::NewEvent {
        user_id: agent.user_id,
        agent_id: Some(agent.id),
        event_type: "test".into(),
        payload: "{}".into(),
        keep_for_seconds: 0,
    };
    let events = vec![event; n];
    store
        .writer()
        .write(move |c, out| Ok(out.insert(c, &events, 0)?.iter().map(|e| e.id).collect()))
        .await
        .unwrap()
}

/// Ids come from the Writer, not from AUTOINCREMENT, and must still never be
/// reused: pollers remember the last id they saw, so an id given twice would hide
/// the second event from them. Deleting the newest events and reopening the
/// database are the two ways an id could come back.
#[actix_rt::test]
async fn event_ids_are_never_reused() {
    let (dir, store, agent) = store_with_agent().await;
    let first = emit(&store, &agent, 3).await;
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    let newest = first[2];
    let gone = first[1..].to_vec();
    store
        .writer()
        .write(move |c, _| {
            gone.iter()
                .try_for_each(|id| crate::store::events::delete(c, *id))
        })
        .await
        .unwrap();
    let after_delete = emit(&store, &agent, 1).await[0];
    assert!(
        after_delete > newest,
        "{after_delete} reuses an id up to {newest}"
    );
    store
        .writer()
        .write(move |c, _| crate::store::events::delete(c, after_delete))
        .await
        .unwrap();
    store.writer().close().await;
    drop(store);

    let reopened = open_in(dir.path());
    let after_restart = emit(&reopened, &agent, 1).await[0];
    assert!(
        after_restart > after_delete,
        "{after_restart} reuses an id up to {after_delete}"
    );
    reopened.writer().close().await;
}

/// The Writer counts events into their agents' rows about once a second; every
/// read of an agent still shows the exact count and the newest event's time, at
/// once, after events are deleted, and after a restart.
#[actix_rt::test]
async fn agents_show_exact_event_counts_before_and_after_they_are_counted() {
    use crate::store::{agents, writer_marks};
    let (dir, store, agent) = store_with_agent().await;
    let id = agent.id;
    let read = |store: &Store| {
        store.read(move |c| {
            let one = agents::find(c, id)?.unwrap();
            let all = agents::list(c, None)?;
            let listed = all.into_iter().find(|a| a.id == id).unwrap();
            Ok((one.events_count, listed.events_count, one.last_event_at))
        })
    };
    let ids = emit(&store, &agent, 3).await;
    let (found, listed, last) = read(&store).await.unwrap();
    assert_eq!((found, listed), (3, 3));
    assert!(last.is_some());

    // Counted into the row by a batch a second later: the figures stay the same.
    std::thread::sleep(super::ledger::COUNT_EVERY);
    store.writer().write(|_, _| Ok(())).await.unwrap();
    let marks = store.read(writer_marks::load).await.unwrap();
    assert_eq!(marks.events_counted_upto, ids[2].0);
    let (found, listed, _) = read(&store).await.unwrap();
    assert_eq!((found, listed), (3, 3));

    // Two more, one uncounted and one counted deleted, then recounted.
    let more = emit(&store, &agent, 2).await;
    let (deleted, kept) = (ids[0], more[0]);
    store
        .writer()
        .write(move |c, _| {
            crate::store::events::delete(c, deleted)?;
            crate::store::events::delete(c, kept)?;
            agents::recount_events(c, id)
        })
        .await
        .unwrap();
    let (found, listed, _) = read(&store).await.unwrap();
    assert_eq!((found, listed), (3, 3));

    // A clean close leaves the counts complete in the row itself.
    store.writer().close().await;
    drop(store);
    let reopened = open_in(dir.path());
    let (column, marks) = reopened
        .read(move |c| {
            use crate::store::schema::agents::dsl;
            use diesel::prelude::*;
            let column: i64 = dsl::agents.find(id).select(dsl::events_count).first(c)?;
            Ok((column, writer_marks::load(c)?))
        })
        .await
        .unwrap();
    assert_eq!(column, 3);
    assert_eq!(marks.events_counted_upto, more[1].0);
    let (found, listed, _) = read(&reopened).await.unwrap();
    assert_eq!((found, listed), (3, 3));
    reopened.writer().close().await;
}

/// The count a second later reads, for each agent that got events, its events on the
/// index: the row gets exactly the events still there and the newest one's time; an
/// agent whose only new event was deleted before the count keeps its row as it was.
#[actix_rt::test]
async fn the_count_adds_each_agents_remaining_events_and_their_newest_time() {
    use crate::store::schema::{agents::dsl, events};
    use diesel::prelude::*;
    let (_dir, store, kept) = store_with_agent().await;
    let gone = store
        .writer()
        .write(|c, _| crate::store::test_webhook_agent(c))
        .await
        .unwrap();
    let ids = emit(&store, &kept, 3).await;
    let lost = emit(&store, &gone, 1).await[0];
    let deleted = ids[2];
    store
        .writer()
        .write(move |c, _| {
            crate::store::events::delete(c, deleted)?;
            crate::store::events::delete(c, lost)
        })
        .await
        .unwrap();
    std::thread::sleep(super::ledger::COUNT_EVERY);
    store.writer().write(|_, _| Ok(())).await.unwrap();
    let (kept_id, gone_id, newest) = (kept.id, gone.id, ids[1]);
    let (kept_row, gone_row, newest_at) = store
        .read(move |c| {
            let row = |c: &mut crate::store::Conn, id| {
                dsl::agents
                    .find(id)
                    .select((dsl::events_count, dsl::last_event_at))
                    .first::<(i64, Option<chrono::NaiveDateTime>)>(c)
            };
            let newest_at: chrono::NaiveDateTime = events::table
                .find(i64::from(newest))
                .select(events::created_at)
                .first(c)?;
            Ok((row(c, kept_id)?, row(c, gone_id)?, newest_at))
        })
        .await
        .unwrap();
    assert_eq!(kept_row, (2, Some(newest_at)));
    assert_eq!(gone_row, (0, None));
    store.writer().close().await;
}

#[actix_rt::test]
async fn a_panicking_write_is_rolled_back_and_the_writer_carries_on() {
    let (_dir, store) = store();
    let failed = store
        .writer()
        .write(|c, _| {
            users::insert(c, "ghost", false)?;
            panic!("bug in a write");
            #[allow(unreachable_code)]
            Ok(())
        })
        .await;
    assert!(
        matches!(&failed, Err(super::StoreError::Panicked(m)) if m == "bug in a write"),
        "{failed:?}"
    );
    let later = store.writer().write(|_, _| Ok(7)).await;
    assert_eq!(later.unwrap(), 7);
    // A panic inside a diesel transaction opened by the write: that transaction
    // is rolled back with the write, and later batches still commit.
    let failed = store
        .writer()
        .write(|c, _| {
            c.transaction::<(), super::StoreError, _>(|c| {
                users::insert(c, "phantom", false)?;
                panic!("bug inside a nested transaction");
            })?;
            Ok(())
        })
        .await;
    assert!(
        matches!(failed, Err(super::StoreError::Panicked(_))),
        "{failed:?}"
    );
    store
        .writer()
        .write(|c, _| users::insert(c, "real", false).map(|_| ()))
        .await
        .unwrap();
    let names: Vec<String> = store
        .read(|c| Ok(users::list(c)?.into_iter().map(|u| u.name).collect()))
        .await
        .unwrap();
    assert!(
        !names.contains(&"ghost".to_string()) && !names.contains(&"phantom".to_string()),
        "rolled back: {names:?}"
    );
    assert!(names.contains(&"real".to_string()), "committed: {names:?}");
}
