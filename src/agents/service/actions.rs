//! What a user asks of an existing agent besides saving it: run it now, clear its
//! memory, post events to a manual_event agent, delete or re-emit its events, read its
//! log.

use serde_json::Value;

use super::{AgentServiceError, Deps, Running, Scope, find_owned};
use crate::agents::actor::{AgentActor, ClearMemory, EmitPayloads, RunCheck};
use crate::agents::manual_event;
use crate::ids::{AgentId, EventId};
use crate::store::agent_logs::{self, AgentLogRow};
use crate::store::agents::{self, AgentRow};
use crate::store::events;

/// Events copied per transaction when re-emitting.
const REEMIT_BATCH: i64 = 500;

/// What a user asks of an agent's running actor. When the actor runs on another node
/// (several nodes on PostgreSQL), the ask is carried there and [`on_actor`] runs it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ActorAsk {
    Run,
    ClearMemory,
    Emit(Vec<Value>),
}

/// Carries out `ask` on the agent's actor, here or on the node that runs it; the ids
/// of the events it emitted (none but for `Emit`).
pub async fn ask_actor<R: Running>(
    d: &Deps<'_, R>,
    id: AgentId,
    ask: ActorAsk,
) -> Result<Vec<EventId>, AgentServiceError> {
    if let Some(addr) = d.running.actor(id) {
        return on_actor(&addr, ask).await;
    }
    d.running
        .ask_owner(id, ask)
        .await?
        .ok_or_else(|| AgentServiceError::Busy(format!("agent {id} is restarting; retry shortly")))
}

/// Carries out `ask` on this node's actor of the agent.
pub async fn on_actor(
    addr: &actix::Addr<AgentActor>,
    ask: ActorAsk,
) -> Result<Vec<EventId>, AgentServiceError> {
    match ask {
        ActorAsk::Run => addr.send(RunCheck).await?,
        ActorAsk::ClearMemory => addr.send(ClearMemory).await??,
        ActorAsk::Emit(payloads) => return Ok(addr.send(EmitPayloads(payloads)).await??),
    }
    Ok(Vec::new())
}

/// Queues a run of the agent's check; a disabled agent is not run.
pub async fn run_now<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
) -> Result<AgentRow, AgentServiceError> {
    let row = find_owned(d.store, scope, id).await?;
    if row.disabled {
        return Err(AgentServiceError::Conflict(format!(
            "agent {} is disabled; enable it to run it",
            row.id
        )));
    }
    ask_actor(d, row.id, ActorAsk::Run).await?;
    Ok(row)
}

/// Empties the agent's memory (through its actor, which holds it).
pub async fn clear_memory<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
) -> Result<AgentId, AgentServiceError> {
    let row = find_owned(d.store, scope, id).await?;
    ask_actor(d, row.id, ActorAsk::ClearMemory).await?;
    Ok(row.id)
}

/// A manual_event agent emits the posted payload (one event, or one per element of a
/// list); the ids of the new events.
pub async fn post_events<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
    body: Value,
) -> Result<Vec<EventId>, AgentServiceError> {
    let row = find_owned(d.store, scope, id).await?;
    if !crate::agents::kind(&row.agent_type).is_some_and(|k| k.takes_posted_events()) {
        return Err(AgentServiceError::invalid(
            "type",
            format!(
                "agent {} is a {} agent; only manual_event agents take posted events",
                row.id, row.agent_type
            ),
        ));
    }
    let payloads = manual_event::payloads(body)
        .map_err(|e| AgentServiceError::invalid("events", e.to_string()))?;
    ask_actor(d, row.id, ActorAsk::Emit(payloads)).await
}

/// Deletes every event of the agent; how many.
pub async fn delete_events<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
) -> Result<usize, AgentServiceError> {
    let row = find_owned(d.store, scope, id).await?;
    let deleted = d
        .store
        .writer()
        .write(move |c, _| {
            let n = events::delete_for_agent(c, id)?;
            agents::recount_events(c, id)?;
            Ok(n)
        })
        .await?;
    // Feeds reading this agent's events show them no more.
    d.running.feeds_changed(row.user_id);
    Ok(deleted)
}

/// A page of the agent's log, newest first: ids below `before`, at most `limit`.
pub async fn logs<R>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
    before: i64,
    limit: i64,
) -> Result<Vec<AgentLogRow>, AgentServiceError> {
    let id = find_owned(d.store, scope, id).await?.id;
    Ok(d.store
        .read(move |c| agent_logs::page(c, id, before, limit))
        .await?)
}

/// Re-creates every event the agent has now as a new event (new ids, passed on
/// again), in batches, optionally deleting the originals; how many were re-emitted.
pub async fn reemit<R>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
    delete_old: bool,
) -> Result<usize, AgentServiceError> {
    let id = find_owned(d.store, scope, id).await?.id;
    let up_to = d.store.read(events::max_id).await?;
    let mut after = 0;
    let mut count = 0usize;
    // Bounded: each batch moves `after` past the events it copied, and only events up
    // to `up_to` (those there when it began) are read.
    loop {
        let (last, n) = d
            .store
            .writer()
            .write(move |c, out| reemit_batch(c, out, id, after, up_to, delete_old))
            .await?;
        count += n;
        match last {
            Some(last) => after = last,
            None => break,
        }
    }
    if delete_old {
        d.store
            .writer()
            .write(move |c, _| agents::recount_events(c, id))
            .await?;
    }
    Ok(count)
}

fn reemit_batch(
    c: &mut crate::store::Conn,
    out: &mut crate::store::Emitted<'_>,
    id: AgentId,
    after: i64,
    up_to: i64,
    delete_old: bool,
) -> Result<(Option<i64>, usize), crate::store::StoreError> {
    let old = events::list(
        c,
        &events::EventQuery {
            agent_id: Some(id),
            after: Some(after),
            before: Some(up_to + 1),
            limit: REEMIT_BATCH,
            ..Default::default()
        },
    )?;
    let last = old.last().map(|e| e.id.0);
    let new: Vec<events::NewEvent> = old
        .iter()
        .map(|e| events::NewEvent {
            user_id: e.user_id,
            agent_id: e.agent_id,
            event_type: e.event_type.clone(),
            // Stored payloads are the JSON text the event was made with.
            payload: e.payload.clone(),
            keep_for_seconds: e
                .expires_at
                .map_or(0, |x| (x - e.created_at).num_seconds().max(1)),
        })
        .collect();
    out.insert(c, &new, 0)?;
    if delete_old {
        for e in &old {
            events::delete(c, e.id)?;
        }
    }
    Ok((last, new.len()))
}
