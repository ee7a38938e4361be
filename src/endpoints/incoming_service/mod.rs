//! Incoming webhooks (`/webhook/{token}`) as callers manage them: create, read, update,
//! delete and rotate the token, with ownership in each query, validation on save
//! (`validate`) and their own error type. HTTP handlers and the CLI call these and map
//! the result; the running hub is told through `IncomingRunning`, so nothing here
//! imports the Hub or the agent types.

pub mod logs;
pub mod validate;

use base64::Engine;
use rand::RngCore;

use crate::ids::IncomingWebhookId;
use crate::secrets::token_digest;
use crate::store::incoming_webhooks::{self, IncomingRow};
use crate::store::{Store, StoreError, agents, inbound_log};
pub use validate::IncomingIn;

#[derive(Debug, thiserror::Error)]
pub enum IncomingError {
    /// The input is wrong; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No such incoming webhook, or one the caller may not see.
    #[error("incoming webhook {0} not found")]
    NotFound(IncomingWebhookId),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hub's actors did not answer: it is restarting or shutting down.
    #[error("the hub is restarting or shutting down; retry shortly")]
    HubUnavailable,
}

impl From<actix::MailboxError> for IncomingError {
    fn from(_: actix::MailboxError) -> IncomingError {
        IncomingError::HubUnavailable
    }
}

/// How the running hub learns of a change, and what it knows that this subsystem does
/// not (which agent types take events).
#[allow(async_fn_in_trait)]
pub trait IncomingRunning {
    /// Starts or reconfigures the endpoint.
    async fn saved(&self, row: IncomingRow) -> Result<(), IncomingError>;
    /// Stops the endpoint.
    async fn removed(&self, id: IncomingWebhookId) -> Result<(), IncomingError>;
    /// Whether agents of `agent_type` take events from others.
    fn receives_events(&self, agent_type: &str) -> bool;
}

/// A new token: 32 bytes from the OS-seeded CSPRNG, URL-safe base64.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A row and the clear token, known only in the answer that issued it.
#[derive(Debug)]
pub struct Issued {
    pub row: IncomingRow,
    pub token: String,
}

/// The incoming-webhook workflows over one store and one running hub. `scope` is the
/// caller's user filter (`None` for an admin); `user_id` owns what it creates.
pub struct IncomingWebhooks<'a, R: IncomingRunning> {
    pub store: &'a Store,
    pub running: &'a R,
    /// How long a rotated-out token keeps working (`[inbound]
    /// token_rotation_grace_seconds`; 0 ends it at once).
    pub rotation_grace_seconds: i64,
}

impl<R: IncomingRunning> IncomingWebhooks<'_, R> {
    pub async fn get(
        &self,
        scope: Option<i64>,
        id: IncomingWebhookId,
    ) -> Result<IncomingRow, IncomingError> {
        self.store
            .read(move |c| incoming_webhooks::find_owned(c, scope, id))
            .await?
            .ok_or(IncomingError::NotFound(id))
    }

    pub async fn list(&self, scope: Option<i64>) -> Result<Vec<IncomingRow>, IncomingError> {
        Ok(self
            .store
            .read(move |c| incoming_webhooks::list(c, scope))
            .await?)
    }

    /// One page of [`Self::list`]: ids above `after`, at most `limit`.
    pub async fn page(
        &self,
        scope: Option<i64>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<IncomingRow>, IncomingError> {
        Ok(self
            .store
            .read(move |c| incoming_webhooks::page(c, scope, after, limit))
            .await?)
    }

    pub async fn create(&self, user_id: i64, input: &IncomingIn) -> Result<Issued, IncomingError> {
        let c = self.changes(user_id, input, None).await?;
        let token = generate_token();
        let digest = token_digest(&token);
        let row = self
            .store
            .writer()
            .write(move |conn, _| incoming_webhooks::insert(conn, user_id, &digest, &c))
            .await?;
        self.running.saved(row.clone()).await?;
        Ok(Issued { row, token })
    }

    pub async fn update(
        &self,
        scope: Option<i64>,
        id: IncomingWebhookId,
        input: &IncomingIn,
    ) -> Result<IncomingRow, IncomingError> {
        let current = self.get(scope, id).await?;
        let c = self.changes(current.user_id, input, Some(&current)).await?;
        let id = current.id;
        let row = self
            .store
            .writer()
            .write(move |conn, _| incoming_webhooks::update(conn, id, &c))
            .await?;
        self.running.saved(row.clone()).await?;
        Ok(row)
    }

    /// Deletes the webhook and its request log.
    pub async fn delete(
        &self,
        scope: Option<i64>,
        id: IncomingWebhookId,
    ) -> Result<(), IncomingError> {
        let id = self.get(scope, id).await?.id;
        self.store
            .writer()
            .write(move |conn, _| {
                inbound_log::delete_endpoint(conn, &crate::endpoints::incoming::endpoint_key(id))?;
                incoming_webhooks::delete(conn, id)
            })
            .await?;
        self.running.removed(id).await
    }

    /// Issues a new token; the old one keeps working for the grace period.
    pub async fn rotate(
        &self,
        scope: Option<i64>,
        id: IncomingWebhookId,
    ) -> Result<Issued, IncomingError> {
        let id = self.get(scope, id).await?.id;
        let grace = self.rotation_grace_seconds;
        let until = (grace > 0).then(|| {
            chrono::TimeDelta::try_seconds(grace)
                .and_then(|d| crate::store::now().checked_add_signed(d))
                .unwrap_or(chrono::NaiveDateTime::MAX)
        });
        let token = generate_token();
        let digest = token_digest(&token);
        let row = self
            .store
            .writer()
            .write(move |conn, _| incoming_webhooks::rotate(conn, id, &digest, until))
            .await?;
        self.running.saved(row.clone()).await?;
        Ok(Issued { row, token })
    }

    /// Checks the input against the current row (for updates) and turns it into changes.
    async fn changes(
        &self,
        owner: i64,
        input: &IncomingIn,
        current: Option<&IncomingRow>,
    ) -> Result<incoming_webhooks::IncomingChanges, IncomingError> {
        let mut c = validate::name_change(input, current)?;
        if let Some(agent_id) = input.agent_id.map(crate::ids::AgentId) {
            self.check_agent(owner, agent_id).await?;
            c.agent_id = Some(agent_id);
        } else if current.is_none() {
            return Err(IncomingError::Invalid(
                "field \"agent_id\" is required: the agent that receives the webhook's events"
                    .into(),
            ));
        }
        validate::option_changes(input, current, self.store.keys(), &mut c)?;
        Ok(c)
    }

    /// The receiving agent must be the owner's and take events.
    async fn check_agent(
        &self,
        owner: i64,
        agent_id: crate::ids::AgentId,
    ) -> Result<(), IncomingError> {
        let row = self
            .store
            .read(move |conn| agents::find_owned(conn, Some(owner), agent_id))
            .await?;
        let Some(row) = row else {
            return Err(IncomingError::Invalid(format!(
                "agent_id: agent {agent_id} does not exist or belongs to another user"
            )));
        };
        if !self.running.receives_events(&row.agent_type) {
            return Err(IncomingError::Invalid(format!(
                "agent_id: agent {agent_id} ({}) cannot receive events; pick an agent that takes events from other agents",
                row.agent_type
            )));
        }
        Ok(())
    }
}
