//! The agents service: every workflow on agents and their links, with its input
//! validation, in one place. Create, update, delete, enable/disable (from an API save
//! and from a controlling agent), reemit, dry run, clear memory, run now, links and
//! control links, and saving the agents of a scenario import.
//!
//! Callers (the HTTP handlers, the Hub's control handler, the scenario importer) call
//! these functions and map [`AgentServiceError`] to what they answer. The service
//! never reaches up to the Hub or to HTTP: what the running hub must learn after a
//! write (start, reload or stop an agent's actors, reload the link graph) goes through
//! the small [`Running`] trait the caller hands in. Ownership is part of every query
//! (`find_owned(scope, id)`): a row the caller may not see is never loaded.

pub mod actions;
pub mod control;
pub mod dry_run;
pub mod error;
pub mod events;
pub mod import;
pub mod links;
pub mod page;
pub mod save;
pub mod scenarios;
pub mod validate;

use std::future::Future;

use actix::Addr;

pub use error::AgentServiceError;

use super::actor::AgentActor;
use crate::ids::{AgentId, EventId, SubscriptionId};
use crate::store::agents::{self, AgentRow};
use crate::store::{Conn, Store, StoreError, control_links, links as link_rows};

/// Whose rows a caller may see: the user's id, or `None` for an admin (everyone's).
pub type Scope = Option<i64>;

/// What a workflow tells the running hub after its write committed. The Hub implements
/// it for the HTTP face (waiting for the link graph to reload before the answer) and
/// for its own control handler (without waiting on itself).
pub trait Running {
    /// An agent was created or changed: start or reconfigure its actors.
    fn agent_saved(&self, row: AgentRow) -> impl Future<Output = Result<(), AgentServiceError>>;
    /// An agent was deleted (with the subscription it owned, if any): stop its actors.
    fn agent_removed(
        &self,
        id: AgentId,
        subscription_id: Option<SubscriptionId>,
    ) -> impl Future<Output = Result<(), AgentServiceError>>;
    /// Links changed: reload the graph.
    fn links_changed(&self) -> impl Future<Output = Result<(), AgentServiceError>>;
    /// What the feeds of `user_id` show may have changed.
    fn feeds_changed(&self, user_id: i64);
    /// The running actor of agent `id`, if it is up.
    fn actor(&self, id: AgentId) -> Option<Addr<AgentActor>>;
    /// Has the node that runs agent `id`'s actor, when that is another node, carry
    /// out `ask` (see [`actions::ask_actor`]); `None` when no other node runs it. A
    /// hub that is the only node has nobody to ask.
    fn ask_owner(
        &self,
        _id: AgentId,
        _ask: actions::ActorAsk,
    ) -> impl Future<Output = Result<Option<Vec<EventId>>, AgentServiceError>> {
        std::future::ready(Ok(None))
    }
}

/// What every workflow works with: the store, the one config knob saving needs, and
/// the running hub to tell.
pub struct Deps<'a, R> {
    pub store: &'a Store,
    /// `delivery.allow_private_targets`: whether a target URL may name a private address.
    pub allow_private_targets: bool,
    /// `[files]`: where file agents may read and write.
    pub files: std::sync::Arc<crate::agents::files::FilePolicy>,
    /// `[insecure_agents]`: the limits shell_command runs within; None: it is off, and
    /// saving one is refused.
    pub insecure: Option<crate::agents::insecure::Limits>,
    /// `[sentiment]`: whether a lexicon is configured; without one, saving or enabling
    /// a sentiment agent is refused.
    pub sentiment: bool,
    pub running: &'a R,
}

/// The agents an agent is linked to, both ways, and controls or is controlled by.
#[derive(Debug, Default)]
pub struct AgentLinks {
    pub sources: Vec<AgentId>,
    pub receivers: Vec<AgentId>,
    pub targets: Vec<AgentId>,
    pub controllers: Vec<AgentId>,
}

impl AgentLinks {
    pub fn load(c: &mut Conn, id: AgentId) -> Result<AgentLinks, StoreError> {
        Ok(AgentLinks {
            sources: link_rows::sources_of(c, id)?,
            receivers: link_rows::receivers_of(c, id)?,
            targets: control_links::targets_of(c, id)?,
            controllers: control_links::controllers_of(c, id)?,
        })
    }
}

/// An agent as a workflow hands it back: its row, its links, and what saving found
/// worth knowing but not refusing (unimplemented options, link cycles).
#[derive(Debug)]
pub struct AgentView {
    pub row: AgentRow,
    pub links: AgentLinks,
    pub warnings: Vec<String>,
}

/// The agent `id` if `scope` may see it.
pub async fn find_owned(
    store: &Store,
    scope: Scope,
    id: AgentId,
) -> Result<AgentRow, AgentServiceError> {
    store
        .read(move |c| agents::find_owned(c, scope, id))
        .await?
        .ok_or_else(|| AgentServiceError::agent_not_found(id))
}

/// The agent `id` with its links, if `scope` may see it.
pub async fn view(
    store: &Store,
    scope: Scope,
    id: AgentId,
) -> Result<AgentView, AgentServiceError> {
    let found = store
        .read(move |c| {
            let Some(row) = agents::find_owned(c, scope, id)? else {
                return Ok(None);
            };
            Ok(Some((row, AgentLinks::load(c, id)?)))
        })
        .await?;
    let (row, links) = found.ok_or_else(|| AgentServiceError::agent_not_found(id))?;
    Ok(AgentView {
        row,
        links,
        warnings: Vec::new(),
    })
}

/// Every agent `scope` may see, with its links, read in one snapshot.
pub async fn list(store: &Store, scope: Scope) -> Result<Vec<AgentView>, AgentServiceError> {
    let (rows, all_links, all_controls) = store
        .read(move |c| {
            Ok((
                agents::list(c, scope)?,
                link_rows::list(c, scope)?,
                control_links::list(c, scope)?,
            ))
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            let links = AgentLinks {
                sources: all_links
                    .iter()
                    .filter(|l| l.receiver_id == id)
                    .map(|l| l.source_id)
                    .collect(),
                receivers: all_links
                    .iter()
                    .filter(|l| l.source_id == id)
                    .map(|l| l.receiver_id)
                    .collect(),
                targets: all_controls
                    .iter()
                    .filter(|(c, _)| *c == id)
                    .map(|(_, t)| *t)
                    .collect(),
                controllers: all_controls
                    .iter()
                    .filter(|(_, t)| *t == id)
                    .map(|(c, _)| *c)
                    .collect(),
            };
            AgentView {
                row,
                links,
                warnings: Vec::new(),
            }
        })
        .collect())
}

/// One page of the agents `scope` may see (ids above `after`, at most `limit`), each
/// with its links, read in one snapshot.
pub async fn page(
    store: &Store,
    scope: Scope,
    after: i64,
    limit: i64,
) -> Result<Vec<AgentView>, AgentServiceError> {
    Ok(store
        .read(move |c| {
            agents::page(c, scope, after, limit)?
                .into_iter()
                .map(|row| {
                    let links = AgentLinks::load(c, row.id)?;
                    Ok(AgentView {
                        row,
                        links,
                        warnings: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?)
}

/// Link cycles through `agent_ids`, as warnings for the answer to a save that linked.
pub async fn cycle_warnings(
    store: &Store,
    user_id: i64,
    agent_ids: Vec<AgentId>,
) -> Result<Vec<String>, AgentServiceError> {
    Ok(store
        .read(move |c| link_rows::cycle_warnings(c, user_id, &agent_ids))
        .await?)
}

#[cfg(test)]
mod tests;
