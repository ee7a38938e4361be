//! Reading the event log: the events a user may see, one page at a time, and one event
//! by id. Ownership is part of every query: another user's event reads as not found.

use super::{AgentServiceError, Scope};
use crate::ids::EventId;
use crate::store::Store;
use crate::store::events::{self, EventQuery, EventRow};

/// The events `q` selects; `q.user_id` is the caller's scope.
pub async fn list(store: &Store, q: EventQuery) -> Result<Vec<EventRow>, AgentServiceError> {
    Ok(store.read(move |c| events::list(c, &q)).await?)
}

/// The event `id` if `scope` may see it.
pub async fn find_owned(
    store: &Store,
    scope: Scope,
    id: EventId,
) -> Result<EventRow, AgentServiceError> {
    store
        .read(move |c| events::find_owned(c, scope, id))
        .await?
        .ok_or(AgentServiceError::NotFound {
            what: "event",
            id: id.0,
        })
}
