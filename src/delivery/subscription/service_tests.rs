//! The workflows over a real store and a recording stand-in for the running hub:
//! ownership is part of every lookup, and the hub hears of each change once.

use std::cell::RefCell;
use std::sync::Arc;

use actix::Addr;
use serde_json::json;

use super::attempts::AttemptPage;
use super::error::SubscriptionError;
use super::input::{RotateIn, SubscriptionIn};
use super::service::{Caller, Running, Settings, Subscriptions};
use crate::delivery::SubscriptionActor;
use crate::ids::SubscriptionId;
use crate::store::subscriptions::SubscriptionRow;
use crate::store::{NoHook, Store, users};

#[derive(Default)]
struct Recorded {
    saved: RefCell<Vec<SubscriptionId>>,
    removed: RefCell<Vec<SubscriptionId>>,
}

impl Running for Recorded {
    async fn saved(&self, row: SubscriptionRow) -> Result<(), SubscriptionError> {
        self.saved.borrow_mut().push(row.id);
        Ok(())
    }
    async fn removed(&self, id: SubscriptionId) -> Result<(), SubscriptionError> {
        self.removed.borrow_mut().push(id);
        Ok(())
    }
    fn actor(&self, _: SubscriptionId) -> Option<Addr<SubscriptionActor>> {
        None
    }
}

fn input(v: serde_json::Value) -> SubscriptionIn {
    serde_json::from_value(v).unwrap()
}

#[actix_rt::test]
async fn another_users_subscription_is_not_found_and_the_hub_hears_each_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let store = Store::open(&config.store_options(), Arc::new(NoHook), Box::new(|_| {})).unwrap();
    let (alice, bob) = store
        .writer()
        .write(|c, _| {
            Ok((
                users::insert(c, "alice", false)?.id,
                users::insert(c, "bob", false)?.id,
            ))
        })
        .await
        .unwrap();
    let running = Recorded::default();
    let svc = Subscriptions {
        store: &store,
        running: &running,
        settings: Settings {
            allow_private_targets: true,
            rotation_grace_seconds: 60,
        },
    };
    let as_alice = Caller {
        user_id: alice,
        scope: Some(alice),
    };
    let as_bob = Caller {
        user_id: bob,
        scope: Some(bob),
    };
    let admin = Caller {
        user_id: alice,
        scope: None,
    };

    let saved = svc
        .create(
            as_alice,
            input(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "signature_scheme": "standard"})),
        )
        .await
        .unwrap();
    let id = saved.row.id;
    assert!(saved.shown_secret.unwrap().starts_with("whsec_"));
    assert_eq!(*running.saved.borrow(), [id]);

    assert!(matches!(svc.get(as_bob, id).await, Err(SubscriptionError::NotFound(i)) if i == id));
    assert!(svc.list(as_bob).await.unwrap().is_empty());
    assert_eq!(svc.get(admin, id).await.unwrap().user_id, alice);
    assert!(matches!(
        svc.update(as_bob, id, input(json!({"name": "mine now"})))
            .await,
        Err(SubscriptionError::NotFound(_))
    ));
    assert!(matches!(
        svc.delete(as_bob, id).await,
        Err(SubscriptionError::NotFound(_))
    ));
    assert!(matches!(
        svc.rotate_secret(as_bob, id, RotateIn::default()).await,
        Err(SubscriptionError::NotFound(_))
    ));
    assert_eq!(
        *running.saved.borrow(),
        [id],
        "refused changes tell the hub nothing"
    );

    let refused = svc
        .update(as_alice, id, input(json!({"agent_id": 999_999})))
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), "agent_id: agent 999999 does not exist");

    let too_long = RotateIn {
        grace_period_seconds: Some(u64::MAX),
        ..RotateIn::default()
    };
    let refused = svc.rotate_secret(as_alice, id, too_long).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "grace_period_seconds: at most 2592000 (30 days); the old secret signs until then"
    );
    let rotated = svc
        .rotate_secret(as_alice, id, RotateIn::default())
        .await
        .unwrap();
    assert!(rotated.new_secret.starts_with("whsec_"));
    let paused = svc.set_paused(as_alice, id, true).await.unwrap();
    assert!(paused.paused);
    assert!(matches!(
        svc.send_test(as_alice, id, None).await,
        Err(SubscriptionError::NotRunning(_))
    ));
    let page = AttemptPage {
        before: i64::MAX,
        limit: 10,
        offset: 0,
    };
    assert!(matches!(
        svc.attempt_log(as_bob, id, page).await,
        Err(SubscriptionError::NotFound(_))
    ));
    assert!(matches!(
        svc.attempt_totals(as_bob, id).await,
        Err(SubscriptionError::NotFound(_))
    ));
    assert!(
        svc.attempt_log(as_alice, id, page)
            .await
            .unwrap()
            .is_empty()
    );
    let totals = svc.attempt_totals(admin, id).await.unwrap();
    assert_eq!((totals.subscription.id, totals.attempts), (id, 0));
    svc.delete(as_alice, id).await.unwrap();
    assert_eq!(*running.saved.borrow(), [id, id, id]);
    assert_eq!(*running.removed.borrow(), [id]);
    assert!(matches!(
        svc.get(admin, id).await,
        Err(SubscriptionError::NotFound(_))
    ));
}
