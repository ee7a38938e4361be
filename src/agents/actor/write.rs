//! Committing what a handling produced: emitted events, the handled-up-to mark, logs,
//! memory, queued mails and a post agent's prepared requests, in one write.

use actix::prelude::*;
use serde_json::Value;

use super::AgentActor;
use super::messages::SubscriptionTouched;
use crate::agents::emitted_event_type;
use crate::agents::post::PreparedRequest;
use crate::ids::{AgentId, EventId};
use crate::store::agent_logs::{self, NewLog};
use crate::store::agents as agents_table;
use crate::store::events::{Lineage, NewEvent};
use crate::store::subscriptions;
use crate::store::{deliveries, mail_outbox};

impl AgentActor {
    pub(super) fn persist(&mut self, mut outcome: Outcome, ctx: &mut Context<Self>) {
        // A log line may quote a rendered option (a URL, a header): the owner's
        // credential values never reach the agent log in clear.
        if !outcome.logs.is_empty() {
            let creds =
                crate::store::credential_cache::UserCredentials::of(&self.store, self.row.user_id);
            for l in &mut outcome.logs {
                l.message = creds.redact_all(&l.message);
            }
        }
        let wake = !outcome.mails.is_empty();
        let write = self.write_outcome(outcome);
        ctx.spawn(write.into_actor(self).map(move |res, act, ctx| match res {
            Ok((_, touched)) => {
                act.succeeded();
                act.wake_mailer(wake);
                if let (Some(hub), Some(touched)) = (&act.deliveries, touched) {
                    hub.do_send(touched);
                }
            }
            // The state in the database is the truth: restart from it.
            Err(e) => act.restart_after("write", &e, ctx),
        }));
    }

    /// Tells the outbox that mails were queued.
    pub(super) fn wake_mailer(&self, queued: bool) {
        if let (true, Some(m)) = (queued, &self.settings.mailer) {
            m.do_send(crate::mail::WakeOutbox);
        }
    }

    /// How a post agent's own subscription retries (from its options).
    pub(super) fn owned_policy(&self) -> subscriptions::OwnedPolicy {
        self.row
            .options_json()
            .ok()
            .and_then(|o| crate::agents::post::Post::new(&o).ok())
            .map_or(
                subscriptions::OwnedPolicy {
                    retry_count: 4,
                    retry_delay_ms: 30_000,
                    timeout_ms: 30_000,
                },
                |p| p.policy,
            )
    }

    /// Queues the write of what the behaviour produced, in one transaction: emitted
    /// events, the handled-up-to mark, logs, memory, and prepared requests (so a request
    /// is never lost between the event being marked handled and its delivery existing).
    /// Resolves to the new event ids and, when requests were queued, their subscription.
    pub(super) fn write_outcome(
        &mut self,
        mut o: Outcome,
    ) -> impl std::future::Future<
        Output = Result<(Vec<EventId>, Option<SubscriptionTouched>), crate::store::StoreError>,
    > + use<> {
        o.emitted = self.emission.admit(
            &self.settings.fanout,
            self.row.user_id,
            std::mem::take(&mut o.emitted),
            &mut o.logs,
        );
        let Outcome {
            emitted,
            logs,
            memory_changed,
            handled_up_to,
            checked,
            requests,
            mails,
        } = o;
        let (id, user_id) = (self.row.id, self.row.user_id);
        let name = self.row.name.clone();
        let policy = (!requests.is_empty()).then(|| self.owned_policy());
        let (new, lineages) = self.new_events(emitted);
        let memory = memory_changed.then(|| self.memory.to_string());
        if memory_changed {
            // A key_value_store's controlled agents read the new store from now on.
            self.settings.directory.set_store(id, &self.memory);
        }
        let log_length = self.settings.log_length;
        let keys = self.store.keys().clone();
        let mails = sealed_mails(&keys, &mails);
        self.store.writer().write_repeatable(move |conn, out| {
            let mut ids = Vec::with_capacity(new.len());
            for (event, &lineage) in new.iter().zip(&lineages) {
                ids.extend(
                    out.insert_derived(conn, std::slice::from_ref(event), lineage)?
                        .iter()
                        .map(|e| e.id),
                );
            }
            if let Some(up_to) = handled_up_to {
                agents_table::note_received(conn, id, up_to)?;
            }
            if checked {
                agents_table::note_checked(conn, id)?;
            }
            agent_logs::append(conn, id, &logs, log_length)?;
            if let Some(m) = &memory {
                agents_table::set_memory(conn, id, m)?;
            }
            for (event_id, sealed) in &mails {
                mail_outbox::insert(conn, id, user_id, *event_id, sealed)?;
            }
            let touched = match policy {
                Some(policy) => Some(queue_requests(
                    conn, &keys, id, user_id, &name, policy, &requests,
                )?),
                None => None,
            };
            Ok((ids, touched))
        })
    }

    /// The rows of the events the agent emits, with each one's lineage.
    fn new_events(&self, emitted: Vec<(Value, Lineage)>) -> (Vec<NewEvent>, Vec<Lineage>) {
        let options = self.row.options_json().unwrap_or(Value::Null);
        let event_type = emitted_event_type(&options);
        let (id, user_id, keep) = (self.row.id, self.row.user_id, self.row.keep_events_for);
        emitted
            .into_iter()
            .map(|(payload, lineage)| {
                (
                    NewEvent {
                        user_id,
                        agent_id: Some(id),
                        event_type: event_type.clone(),
                        payload: NewEvent::payload_text(&payload),
                        keep_for_seconds: keep,
                    },
                    lineage,
                )
            })
            .unzip()
    }
}

/// What one handling of events (or one check) produced, to be committed together.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) emitted: Vec<(Value, Lineage)>,
    pub(super) logs: Vec<NewLog>,
    pub(super) memory_changed: bool,
    pub(super) handled_up_to: Option<i64>,
    pub(super) checked: bool,
    pub(super) requests: Vec<(EventId, PreparedRequest)>,
    /// Mails for the outbox, with the event that caused each.
    pub(super) mails: Vec<(Option<EventId>, crate::mail::Mail)>,
}

/// Mails for the outbox, sealed: a mail holds rendered options, so perhaps the
/// owner's credentials.
fn sealed_mails(
    keys: &crate::secrets::Keyring,
    mails: &[(Option<EventId>, crate::mail::Mail)],
) -> Vec<(Option<EventId>, String)> {
    mails
        .iter()
        .map(|(event_id, m)| {
            let text = serde_json::to_string(m).unwrap_or_default();
            (*event_id, keys.seal(crate::mail::OUTBOX_PURPOSE, &text))
        })
        .collect()
}

/// Writes prepared requests as deliveries on the agent's own subscription, which is
/// created the first time (inside the caller's transaction).
fn queue_requests(
    c: &mut crate::store::Conn,
    keys: &crate::secrets::Keyring,
    agent_id: AgentId,
    user_id: i64,
    name: &str,
    policy: subscriptions::OwnedPolicy,
    requests: &[(EventId, PreparedRequest)],
) -> Result<SubscriptionTouched, crate::store::StoreError> {
    let first_url = requests
        .first()
        .map(|(_, r)| r.url.clone())
        .unwrap_or_default();
    let (sub, created) = match subscriptions::owned_by(c, agent_id)? {
        Some(s) => (s, false),
        None => (
            subscriptions::create_owned(
                c,
                user_id,
                agent_id,
                &format!("post agent: {name}"),
                &first_url,
                policy,
            )?,
            true,
        ),
    };
    for (event_id, req) in requests {
        let text =
            serde_json::to_string(req).map_err(|e| crate::store::StoreError::CorruptJson {
                what: "deliveries.request",
                reason: e.to_string(),
            })?;
        // Sealed: the request holds rendered options, so the owner's credentials.
        let sealed = keys.seal(crate::secrets::purpose::DELIVERY_REQUESTS, &text);
        deliveries::insert_request(c, sub.id, *event_id, &sealed)?;
    }
    Ok(SubscriptionTouched { row: sub, created })
}
