//! The `control_links` table: a controlling agent (scheduler) -> the agents it controls.

use diesel::prelude::*;

use super::schema::{agents, control_links};
use super::{Conn, StoreError, now};
use crate::ids::AgentId;

/// Makes the targets of `controller_id` exactly `targets`.
pub fn replace_targets(
    conn: &mut Conn,
    controller_id: AgentId,
    targets: &[AgentId],
) -> Result<(), StoreError> {
    diesel::delete(
        control_links::table
            .filter(control_links::controller_id.eq(controller_id))
            .filter(control_links::target_id.ne_all(targets)),
    )
    .execute(conn)?;
    for &t in targets {
        // Upserts are not in the multi-backend's dialect: built once, run on the raw
        // connection of either backend.
        let insert = diesel::insert_into(control_links::table)
            .values((
                control_links::controller_id.eq(controller_id),
                control_links::target_id.eq(t),
                control_links::created_at.eq(now()),
            ))
            .on_conflict((control_links::controller_id, control_links::target_id))
            .do_nothing();
        crate::per_backend!(conn, |c| insert.execute(c))?;
    }
    Ok(())
}

pub fn targets_of(conn: &mut Conn, controller_id: AgentId) -> Result<Vec<AgentId>, StoreError> {
    Ok(control_links::table
        .filter(control_links::controller_id.eq(controller_id))
        .order(control_links::target_id.asc())
        .select(control_links::target_id)
        .load(conn)?)
}

pub fn controllers_of(conn: &mut Conn, target_id: AgentId) -> Result<Vec<AgentId>, StoreError> {
    Ok(control_links::table
        .filter(control_links::target_id.eq(target_id))
        .order(control_links::controller_id.asc())
        .select(control_links::controller_id)
        .load(conn)?)
}

/// (controller, target) pairs whose controller belongs to `user_id`, or all.
pub fn list(conn: &mut Conn, user_id: Option<i64>) -> Result<Vec<(AgentId, AgentId)>, StoreError> {
    let mut q = control_links::table
        .inner_join(agents::table.on(agents::id.eq(control_links::controller_id)))
        .select((control_links::controller_id, control_links::target_id))
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(agents::user_id.eq(uid));
    }
    Ok(q.order(control_links::id.asc()).load(conn)?)
}

pub fn delete_for_agent(conn: &mut Conn, id: AgentId) -> Result<(), StoreError> {
    diesel::delete(
        control_links::table.filter(
            control_links::controller_id
                .eq(id)
                .or(control_links::target_id.eq(id)),
        ),
    )
    .execute(conn)?;
    Ok(())
}
