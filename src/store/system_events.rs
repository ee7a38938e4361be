//! System events (no agent) written inside a Writer job: the hub's own news
//! (`agent.created`, `delivery.dead`, ...), named in [`crate::event_types`].

/// Writes a system event (no agent) inside a Writer job, so it commits with the change
/// it reports and reaches the Router like any other event.
pub fn record(
    conn: &mut crate::store::Conn,
    out: &mut crate::store::Emitted<'_>,
    user_id: i64,
    event_type: &str,
    payload: serde_json::Value,
) -> Result<(), crate::store::StoreError> {
    out.insert(
        conn,
        &[crate::store::events::NewEvent {
            user_id,
            agent_id: None,
            event_type: event_type.to_string(),
            payload: crate::store::events::NewEvent::payload_text(&payload),
            keep_for_seconds: 0,
        }],
        0,
    )?;
    Ok(())
}

/// The payload of the `agent.*` events: which agent. The flat fields are the ones the
/// Agent Factory and AGiXT documents print (their receivers read `data.agent_name`);
/// `agent` is muninn's own shape, kept for receivers written against it.
pub fn agent_summary(row: &crate::store::agents::AgentRow) -> serde_json::Value {
    let time = |t: chrono::NaiveDateTime| {
        t.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    serde_json::json!({
        "agent_id": row.id,
        "agent_name": row.name,
        "agent_type": row.agent_type,
        "user_id": row.user_id,
        "created_at": time(row.created_at),
        "updated_at": time(row.updated_at),
        "agent": {"id": row.id, "name": row.name, "type": row.agent_type},
    })
}
