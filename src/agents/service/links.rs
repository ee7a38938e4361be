//! Links between agents (source -> receiver): list, make, remove. Both ends belong to
//! the source's owner; another user's agent reads as missing.

use super::validate::check_link_ends;
use super::{AgentServiceError, Deps, Running, Scope, cycle_warnings, find_owned};
use crate::agents::KindInfo;
use crate::ids::AgentId;
use crate::store::links::{self, LinkRow};

/// Every link whose source `scope` may see.
pub async fn list<R>(d: &Deps<'_, R>, scope: Scope) -> Result<Vec<LinkRow>, AgentServiceError> {
    Ok(d.store.read(move |c| links::list(c, scope)).await?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub async fn page<R>(
    d: &Deps<'_, R>,
    scope: Scope,
    after: i64,
    limit: i64,
) -> Result<Vec<LinkRow>, AgentServiceError> {
    Ok(d.store
        .read(move |c| links::page(c, scope, after, limit))
        .await?)
}

/// Links `source_id` to `receiver_id`; the link and the cycles it closes, as warnings
/// (Huginn allows cycles; see agents.max_events_per_root).
pub async fn create<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    source_id: AgentId,
    receiver_id: AgentId,
) -> Result<(LinkRow, Vec<String>), AgentServiceError> {
    if source_id == receiver_id {
        return Err(AgentServiceError::invalid(
            "receiver_id",
            "an agent cannot be linked to itself",
        ));
    }
    let source = find_owned(d.store, scope, source_id).await.map_err(|_| {
        AgentServiceError::invalid(
            "source_id",
            format!("source_id: agent {source_id} does not exist"),
        )
    })?;
    let owner = source.user_id;
    let creates = |k: &KindInfo| k.can_create_events;
    let receives = |k: &KindInfo| k.can_receive_events;
    check_link_ends(
        d,
        owner,
        "source_id",
        &[source_id],
        creates,
        "cannot create events",
    )
    .await?;
    check_link_ends(
        d,
        owner,
        "receiver_id",
        &[receiver_id],
        receives,
        "cannot receive events",
    )
    .await?;
    let row = d
        .store
        .writer()
        .write(move |c, _| links::insert(c, source_id, receiver_id))
        .await?;
    d.running.links_changed().await?;
    let warnings = cycle_warnings(d.store, owner, vec![source_id]).await?;
    Ok((row, warnings))
}

/// Removes the link `id` whose source `scope` may see.
pub async fn delete<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: crate::ids::LinkId,
) -> Result<(), AgentServiceError> {
    d.store
        .read(move |c| links::find_owned(c, scope, id))
        .await?
        .ok_or(AgentServiceError::NotFound {
            what: "link",
            id: id.0,
        })?;
    d.store
        .writer()
        .write(move |c, _| links::delete(c, id))
        .await?;
    d.running.links_changed().await
}
