//! One-time upgrades of stored data that need Rust, run at start before agents are
//! built; each records itself in `data_upgrades` in the same write, so it runs once.
//!
//! `agent_options_liquid`: agents render Liquid now; earlier versions stored tera in
//! agent options (typed into the API, or converted from Huginn's Liquid by the old
//! importer). Every option string is restored to Liquid where that is exact (see
//! `template::upgrade`); options that are Liquid already are left alone. An agent with
//! an option that cannot be restored gets one WARN line naming it and the option, is
//! disabled, and says why in its log and in an `agent.disabled` system event.

use diesel::RunQueryDsl;
use serde_json::json;

use crate::event_types::AGENT_DISABLED;
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents::{self, AgentChanges, AgentRow};
use crate::store::system_events;
use crate::store::{Conn, Store, StoreError};
use crate::template::upgrade::upgrade_tree;

/// The name this upgrade records itself under.
pub const LIQUID_OPTIONS: &str = "agent_options_liquid";

/// Log lines kept for an agent when the upgrade writes to its log.
const LOG_LENGTH: i64 = 200;

/// Marks `name` done; false when it already was (so the upgrade is skipped).
fn claim(c: &mut Conn, name: &str) -> Result<bool, StoreError> {
    // Raw SQL takes each backend's own placeholder.
    let sql = if c.is_pg() {
        "INSERT INTO data_upgrades (name, done_at) VALUES ($1, CURRENT_TIMESTAMP) \
         ON CONFLICT DO NOTHING"
    } else {
        "INSERT INTO data_upgrades (name, done_at) VALUES (?, CURRENT_TIMESTAMP) \
         ON CONFLICT DO NOTHING"
    };
    let n = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(name)
        .execute(c)?;
    Ok(n == 1)
}

/// Restores Liquid in the options of `rows` (all stored agents), once; returns the rows
/// as they are now.
pub async fn agent_options(
    store: &Store,
    rows: Vec<AgentRow>,
) -> Result<Vec<AgentRow>, StoreError> {
    store
        .writer()
        .write(move |c, out| {
            if !claim(c, LIQUID_OPTIONS)? {
                return Ok(rows);
            }
            let mut now = Vec::with_capacity(rows.len());
            for row in rows {
                now.push(upgrade_one(c, out, row)?);
            }
            Ok(now)
        })
        .await
}

fn upgrade_one(
    c: &mut Conn,
    out: &mut crate::store::Emitted<'_>,
    row: AgentRow,
) -> Result<AgentRow, StoreError> {
    let Ok(options) = row.options_json() else {
        return Ok(row);
    };
    let mut problems = Vec::new();
    let restored = upgrade_tree(&options, "options", &mut problems);
    let mut row = if restored != options {
        let changes = AgentChanges {
            options: Some(restored.to_string()),
            ..AgentChanges::default()
        };
        agents::update(c, row.id, &changes)?
    } else {
        row
    };
    if problems.is_empty() {
        return Ok(row);
    }
    let mut reasons = Vec::with_capacity(problems.len());
    for (option, why) in &problems {
        tracing::warn!(agent_id = row.id.0, agent = %row.name, option = %option, "agent option is a tera template with no exact Liquid form; the agent is disabled until the option is rewritten in Liquid: {why}");
        reasons.push(format!("{option}: {why}"));
    }
    let message = format!(
        "Disabled by the upgrade to Liquid templates: {}. Rewrite the option in Liquid (PUT /api/agents/{}) and enable the agent again.",
        reasons.join("; "),
        row.id
    );
    if !row.disabled {
        row = agents::set_disabled(c, row.id, true, false)?;
        let mut payload = system_events::agent_summary(&row);
        payload["reason"] = json!(message);
        system_events::record(c, out, row.user_id, AGENT_DISABLED, payload)?;
    }
    let line = NewLog {
        level: LEVEL_ERROR,
        message,
        inbound_event_id: None,
    };
    agent_logs::append(c, row.id, &[line], LOG_LENGTH)?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::agents::NewAgent;
    use serde_json::{Value, json};

    async fn seeded(dir: &std::path::Path, options: Vec<Value>) -> (Store, Vec<AgentRow>) {
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.to_path_buf();
        let store = Store::open(
            &config.store_options(),
            std::sync::Arc::new(crate::store::NoHook),
            Box::new(|_| {}),
        )
        .unwrap();
        let rows = store
            .writer()
            .write(move |c, _| {
                crate::store::users::insert(c, "old", false)?;
                let mut rows = Vec::new();
                for (i, o) in options.into_iter().enumerate() {
                    rows.push(agents::insert(
                        c,
                        &NewAgent {
                            user_id: 1,
                            agent_type: "event_formatting".into(),
                            name: format!("old {i}"),
                            options: o.to_string(),
                            schedule: None,
                            disabled: false,
                            keep_events_for: 0,
                            propagate_immediately: true,
                            guid: None,
                        },
                    )?);
                }
                Ok(rows)
            })
            .await
            .unwrap();
        (store, rows)
    }

    #[actix_rt::test]
    async fn old_tera_options_become_liquid_once_and_the_rest_is_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let (store, rows) = seeded(
            dir.path(),
            vec![
                // What the old importer made of Huginn's Liquid.
                json!({"instructions": {
                    "m": "{{ title | default(value=\"\") | upper }} by {{ who | default(value='anon') }}",
                    "d": "{{ now() | date(format=\"%Y\") }}",
                    "c": "{% if a %}x{% elif b %}y{% endif %}"
                }}),
                // Liquid already: left alone.
                json!({"instructions": {"m": "{{ title | upcase }}"}}),
                // tera with no Liquid form.
                json!({"instructions": {"m": "{{ items | wordcount }}"}}),
            ],
        )
        .await;
        let now = agent_options(&store, rows).await.unwrap();
        let opts = |r: &AgentRow| r.options_json().unwrap()["instructions"].clone();
        assert_eq!(
            opts(&now[0]),
            json!({
                "m": "{{ title | upcase }} by {{ who | default: 'anon' }}",
                "d": "{{ 'now' | date: \"%Y\" }}",
                "c": "{% if a %}x{% elsif b %}y{% endif %}"
            })
        );
        assert!(!now[0].disabled);
        assert_eq!(opts(&now[1]), json!({"m": "{{ title | upcase }}"}));
        assert!(!now[1].disabled);
        assert!(now[2].disabled, "an unrestorable agent is disabled");
        let id = now[2].id;
        let logs = store
            .read(move |c| agent_logs::recent(c, id, 10))
            .await
            .unwrap();
        let line = &logs[0].message;
        assert!(
            line.contains("options.instructions.m") && line.contains("wordcount"),
            "{line}"
        );
        // Recorded: a second start changes nothing, even for an option written since.
        let id0 = now[0].id;
        let again = store
            .writer()
            .write(move |c, _| {
                let changes = AgentChanges {
                    options: Some(json!({"instructions": {"m": "{{ x | upper }}"}}).to_string()),
                    ..AgentChanges::default()
                };
                agents::update(c, id0, &changes)
            })
            .await
            .unwrap();
        let after = agent_options(&store, vec![again]).await.unwrap();
        assert_eq!(opts(&after[0]), json!({"m": "{{ x | upper }}"}));
    }
}
