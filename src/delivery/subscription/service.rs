//! The subscription workflows: each checks ownership in its query, validates, writes
//! through the Writer and tells the running hub (`Running`). HTTP handlers and the CLI
//! call these and map the result; nothing here knows about HTTP or the Hub's types.

use actix::Addr;
use chrono::NaiveDateTime;
use serde_json::Value;

use super::actor_ask::ActorAsk;
use super::error::{SubscriptionError, bad};
use super::input::{RotateIn, SubscriptionIn};
use super::validate::{Validated, defaults, validate};
use crate::delivery::ResetCircuit;
use crate::delivery::actor::{SendTest, SubscriptionActor, TestOutcome};
use crate::delivery::signer::Scheme;
use crate::delivery::spec::{SecretEntry, open_secrets, seal_secrets};
use crate::ids::{AgentId, SubscriptionId};
use crate::store::subscriptions::{self, SubscriptionFields, SubscriptionRow};
use crate::store::{Store, agents, now};

/// How the running hub learns of a change. The Hub implements it over its addresses;
/// a test may implement it with nothing running.
#[allow(async_fn_in_trait)]
pub trait Running {
    /// Starts or reconfigures the subscription's actor.
    async fn saved(&self, row: SubscriptionRow) -> Result<(), SubscriptionError>;
    /// Stops the subscription's actor.
    async fn removed(&self, id: SubscriptionId) -> Result<(), SubscriptionError>;
    /// The subscription's running actor, if it runs.
    fn actor(&self, id: SubscriptionId) -> Option<Addr<SubscriptionActor>>;
    /// Has the node that runs subscription `id`'s actor, when that is another node,
    /// carry out `ask`; its answer, or `None` when no other node runs it. A hub that is
    /// the only node has nobody to ask.
    async fn ask_owner<T: serde::de::DeserializeOwned>(
        &self,
        _id: SubscriptionId,
        _ask: ActorAsk,
    ) -> Result<Option<T>, SubscriptionError> {
        Ok(None)
    }
}

/// Who asks: the owner of what is created, and the user filter of every lookup
/// (`None` for an admin, who sees everyone's).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: i64,
    pub scope: Option<i64>,
}

/// The configuration the workflows read.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub allow_private_targets: bool,
    pub rotation_grace_seconds: u64,
}

/// A saved subscription and the secret its owner sees once (create, or an update that
/// set or generated one).
#[derive(Debug)]
pub struct Saved {
    pub row: SubscriptionRow,
    pub shown_secret: Option<String>,
}

/// The outcome of rotate-secret: the new secret (a `whsk_` stays in the hub, its public
/// key is shown) and when the old ones stop signing.
#[derive(Debug)]
pub struct Rotated {
    pub row: SubscriptionRow,
    pub scheme: Scheme,
    pub new_secret: String,
    pub previous_expire_at: NaiveDateTime,
}

/// The longest an old secret keeps signing after a rotation.
const MAX_GRACE_SECONDS: u64 = 30 * 86400;

/// Keeps at most this many old secrets signing at once.
const MAX_OLD_SECRETS: usize = 10;

/// The subscription workflows over one store and one running hub.
pub struct Subscriptions<'a, R: Running> {
    pub store: &'a Store,
    pub running: &'a R,
    pub settings: Settings,
}

impl<R: Running> Subscriptions<'_, R> {
    /// Subscription `id`, if the caller may see it.
    pub async fn get(
        &self,
        caller: Caller,
        id: SubscriptionId,
    ) -> Result<SubscriptionRow, SubscriptionError> {
        let scope = caller.scope;
        self.store
            .read(move |c| subscriptions::find_owned(c, scope, id))
            .await?
            .ok_or(SubscriptionError::NotFound(id))
    }

    /// The subscriptions the caller made (not those its agents send through).
    pub async fn list(&self, caller: Caller) -> Result<Vec<SubscriptionRow>, SubscriptionError> {
        let scope = caller.scope;
        Ok(self
            .store
            .read(move |c| subscriptions::list(c, scope))
            .await?)
    }

    /// One page of [`Self::list`]: ids above `after`, at most `limit`.
    pub async fn page(
        &self,
        caller: Caller,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SubscriptionRow>, SubscriptionError> {
        let scope = caller.scope;
        Ok(self
            .store
            .read(move |c| subscriptions::page(c, scope, after, limit))
            .await?)
    }

    pub async fn create(
        &self,
        caller: Caller,
        input: SubscriptionIn,
    ) -> Result<Saved, SubscriptionError> {
        if input.url.is_none() {
            return Err(bad("url", "is required (an http or https URL)"));
        }
        // No silent "*": a subscription says what it wants (["*"] is still allowed).
        if input.event_types.is_none() && input.event.is_none() {
            return Err(bad(
                "event_types",
                "is required: the event types to send, e.g. [\"agent.created\"], or [\"*\"] for every event",
            ));
        }
        self.check_agent(caller, &input).await?;
        let Validated {
            fields,
            shown_secret,
        } = validate(&input, create_defaults(&input), self.store.keys())?;
        self.check_target(&fields.url).await?;
        let user_id = caller.user_id;
        let row = self
            .store
            .writer()
            .write(move |c, _| subscriptions::insert(c, user_id, &fields))
            .await?;
        self.running.saved(row.clone()).await?;
        Ok(Saved { row, shown_secret })
    }

    pub async fn update(
        &self,
        caller: Caller,
        id: SubscriptionId,
        input: SubscriptionIn,
    ) -> Result<Saved, SubscriptionError> {
        let current = self.get(caller, id).await?;
        self.check_agent(caller, &input).await?;
        let Validated {
            mut fields,
            shown_secret,
        } = validate(
            &input,
            SubscriptionFields::from(&current),
            self.store.keys(),
        )?;
        if input.url.is_some() {
            self.check_target(&fields.url).await?;
        }
        if input.is_active == Some(true) {
            // Re-activating clears the reason it was turned off.
            fields.is_active = true;
        }
        let reactivate = input.is_active == Some(true) && !current.is_active;
        // Its actor runs on another node (or nowhere): see below.
        let remote = self.running.actor(id).is_none();
        let row = self
            .store
            .writer()
            .write(move |c, _| {
                if reactivate && remote {
                    // Counted: the node that sends it closes its live breaker.
                    subscriptions::reset_circuit(c, id)?;
                }
                let row = subscriptions::update(c, id, &fields)?;
                if reactivate && !remote {
                    subscriptions::save_circuit(
                        c,
                        id,
                        subscriptions::CircuitState::Closed,
                        None,
                        0,
                    )?;
                }
                Ok(row)
            })
            .await?;
        self.running.saved(row.clone()).await?;
        if reactivate && let Some(actor) = self.running.actor(id) {
            // The stored circuit is closed: so must the live one be, or it holds the
            // queue for the rest of its cooldown while the answers say closed.
            actor.send(ResetCircuit).await??;
        }
        Ok(Saved { row, shown_secret })
    }

    pub async fn delete(
        &self,
        caller: Caller,
        id: SubscriptionId,
    ) -> Result<(), SubscriptionError> {
        let id = self.get(caller, id).await?.id;
        self.store
            .writer()
            .write(move |c, _| subscriptions::delete(c, id))
            .await?;
        self.running.removed(id).await
    }

    /// Holds (or lets go) the subscription's deliveries.
    pub async fn set_paused(
        &self,
        caller: Caller,
        id: SubscriptionId,
        paused: bool,
    ) -> Result<SubscriptionRow, SubscriptionError> {
        let id = self.get(caller, id).await?.id;
        let row = self
            .store
            .writer()
            .write(move |c, _| subscriptions::set_paused(c, id, paused))
            .await?;
        self.running.saved(row.clone()).await?;
        Ok(row)
    }

    /// Signs with a new secret from now; the old ones keep signing for the grace period.
    pub async fn rotate_secret(
        &self,
        caller: Caller,
        id: SubscriptionId,
        input: RotateIn,
    ) -> Result<Rotated, SubscriptionError> {
        let current = self.get(caller, id).await?;
        let grace = match input.grace_period_seconds {
            Some(g) if g > MAX_GRACE_SECONDS => {
                return Err(bad(
                    "grace_period_seconds",
                    format!(
                        "at most {MAX_GRACE_SECONDS} (30 days); the old secret signs until then"
                    ),
                ));
            }
            Some(g) => g,
            None => self.settings.rotation_grace_seconds.min(MAX_GRACE_SECONDS),
        };
        let scheme = Scheme::parse(&current.signature_scheme).unwrap_or(Scheme::Hex);
        let new_secret = match input.secret.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                scheme.check_secret(&s).map_err(|e| bad("secret", e))?;
                s
            }
            None => scheme.generate(),
        };
        let at = now();
        let expires = at + chrono::Duration::seconds(grace as i64);
        let secrets = rotated_secrets(self.store, &current, scheme, &new_secret, at, expires);
        let text = seal_secrets(self.store.keys(), &secrets);
        let id = current.id;
        let row = self
            .store
            .writer()
            .write(move |c, _| subscriptions::set_secrets(c, id, &text))
            .await?;
        self.running.saved(row.clone()).await?;
        Ok(Rotated {
            row,
            scheme,
            new_secret,
            previous_expire_at: expires,
        })
    }

    /// Sends a `test.webhook` event now, outside the queue.
    pub async fn send_test(
        &self,
        caller: Caller,
        id: SubscriptionId,
        data: Option<Value>,
    ) -> Result<TestOutcome, SubscriptionError> {
        let id = self.get(caller, id).await?.id;
        if let Some(actor) = self.running.actor(id) {
            return Ok(actor.send(SendTest { data }).await?);
        }
        self.running
            .ask_owner(id, ActorAsk::Test { data })
            .await?
            .ok_or(SubscriptionError::NotRunning(id))
    }

    /// Closes the circuit by hand; says whether it was open, and the row as it is now.
    pub async fn reset_circuit(
        &self,
        caller: Caller,
        id: SubscriptionId,
    ) -> Result<(bool, SubscriptionRow), SubscriptionError> {
        let current = self.get(caller, id).await?;
        let id = current.id;
        let was_open = match self.running.actor(id) {
            Some(actor) => actor.send(ResetCircuit).await??,
            None => match self.running.ask_owner(id, ActorAsk::ResetCircuit).await? {
                // Its actor runs on another node, which closed it there.
                Some(was_open) => was_open,
                // Not running anywhere that answers (its stored settings are invalid,
                // or no node holds it yet): the stored state, which an owner follows
                // at its next heartbeat.
                None => {
                    self.store
                        .writer()
                        .write(move |c, _| subscriptions::reset_circuit(c, id))
                        .await?;
                    current.circuit_state != subscriptions::CircuitState::Closed
                }
            },
        };
        let row = self
            .store
            .read(move |c| subscriptions::find(c, id))
            .await?
            .ok_or(SubscriptionError::NotFound(id))?;
        Ok((was_open, row))
    }

    /// An `agent_id` must name an agent the caller may see.
    async fn check_agent(
        &self,
        caller: Caller,
        input: &SubscriptionIn,
    ) -> Result<(), SubscriptionError> {
        let Some(Some(agent)) = input.agent_id else {
            return Ok(());
        };
        let scope = caller.scope;
        let found = self
            .store
            .read(move |c| agents::find_owned(c, scope, AgentId(agent)))
            .await?
            .is_some();
        if found {
            Ok(())
        } else {
            Err(bad("agent_id", format!("agent {agent} does not exist")))
        }
    }

    /// Refuses at save time a URL the target guard would refuse at every send (the
    /// send still checks: DNS can change).
    async fn check_target(&self, url: &str) -> Result<(), SubscriptionError> {
        crate::delivery::guard::check_target_url(url, self.settings.allow_private_targets)
            .await
            .map_err(|why| bad("url", why.to_string()))
    }
}

/// The secrets after a rotation: the new one, then the old ones that still sign (each
/// until `expires` at the latest), at most `MAX_OLD_SECRETS` of them.
fn rotated_secrets(
    store: &Store,
    current: &SubscriptionRow,
    scheme: Scheme,
    new_secret: &str,
    at: NaiveDateTime,
    expires: NaiveDateTime,
) -> Vec<SecretEntry> {
    let mut secrets = vec![SecretEntry {
        secret: new_secret.to_string(),
        expires_at: None,
    }];
    // Old secrets that no longer open (the key that sealed them is gone) cannot sign
    // anyway: the rotation replaces them, which is how a user recovers such a webhook.
    let old_secrets = open_secrets(store.keys(), &current.secrets)
        .inspect_err(|e| tracing::warn!(subscription_id = current.id.0, error = %e, "rotating the secret of a webhook whose old secrets do not open; they are dropped"))
        .unwrap_or_default();
    // An old secret of another scheme (kept from before a scheme change) cannot sign.
    for old in old_secrets
        .into_iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > at))
        .filter(|s| scheme.check_secret(&s.secret).is_ok())
    {
        let until = old.expires_at.map_or(expires, |e| e.min(expires));
        secrets.push(SecretEntry {
            secret: old.secret,
            expires_at: Some(until),
        });
    }
    secrets.truncate(MAX_OLD_SECRETS + 1);
    secrets
}

/// What a new subscription starts from. With no signing chosen (neither a scheme nor a
/// secret) it signs with Standard Webhooks and a generated secret, shown once in the
/// answer, as Svix always signs. A secret without a scheme keeps the `hex` scheme the
/// AGiXT document's `"secret"` means; `"signature_scheme": "hex"` without a secret
/// still sends unsigned, for a receiver that cannot verify.
fn create_defaults(input: &SubscriptionIn) -> SubscriptionFields {
    let mut base = defaults();
    if input.signature_scheme.is_none() && input.secret.is_none() {
        base.signature_scheme = Scheme::Standard.name().to_string();
    }
    base
}
