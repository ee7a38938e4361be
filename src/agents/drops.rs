//! What Liquid templates in agent options see of agents and events, as Huginn gives it
//! (`app/concerns/liquid_interpolatable.rb`): the event's payload keys at top level,
//! `created_at`, `agent` (the agent that created the event being rendered) and
//! `_agent_` (the agent doing the rendering), and one variable per key_value_store agent
//! that controls the rendering agent (named by its `variable` option, holding its
//! store), as Huginn's `LiquidInterpolatable::Context` puts them in the outer scope:
//! they win over a payload key of the same name. The [`AgentDirectory`] holds each
//! running agent's drop, the stores and the control links, so none of this costs a
//! database read per event.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

use super::{AgentCtx, Kind, key_value_store, kind};
use crate::ids::AgentId;
use crate::store::agents::AgentRow;
use crate::store::events::EventRow;
use crate::template::RenderCtx;

/// An agent as templates see it (Huginn's AgentDrop): `type` is Huginn's class name.
pub fn agent_drop(row: &AgentRow) -> Value {
    let options = row
        .options_json()
        .unwrap_or_else(|_| Value::Object(Default::default()));
    json!({
        "id": row.id,
        "name": row.name,
        "type": kind(&row.agent_type).map_or(row.agent_type.as_str(), |k| k.huginn),
        "options": options,
        "disabled": row.disabled,
        "schedule": row.schedule,
        "keep_events_for": row.keep_events_for,
        "propagate_immediately": row.propagate_immediately,
        "created_at": row.created_at.and_utc().to_rfc3339(),
        "updated_at": row.updated_at.and_utc().to_rfc3339(),
    })
}

/// A key_value_store agent as the agents it controls see it.
#[derive(Debug)]
struct KvStore {
    user_id: i64,
    variable: Option<String>,
    /// The store without its order list ([`key_value_store::visible`]).
    store: Arc<Value>,
}

/// The drops of the running agents, by id, with their owner; the key_value_store
/// agents' stores; who controls whom. The Hub and the stores' actors keep it up to date.
#[derive(Debug, Default)]
pub struct AgentDirectory {
    drops: RwLock<HashMap<AgentId, (i64, Arc<Value>)>>,
    stores: RwLock<HashMap<AgentId, KvStore>>,
    /// Control target -> its controllers, by id ascending (Huginn's `find_each` order:
    /// of two stores with one variable name, the later wins).
    controllers: RwLock<HashMap<AgentId, Vec<AgentId>>>,
}

impl AgentDirectory {
    pub fn set(&self, row: &AgentRow) {
        let drop = Arc::new(agent_drop(row));
        // A panic while holding the lock cannot leave the map half-updated (single insert).
        let mut map = self.drops.write().unwrap_or_else(|e| e.into_inner());
        map.insert(row.id, (row.user_id, drop));
        std::mem::drop(map);
        if kind(&row.agent_type).is_some_and(|k| k.kind == Kind::KeyValueStore) {
            let options = row.options_json().unwrap_or(Value::Null);
            let variable = key_value_store::variable_of(&options).map(str::to_string);
            let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
            // The running actor's memory is newer than a saved row's: keep it.
            let store = match stores.remove(&row.id) {
                Some(s) => s.store,
                None => Arc::new(key_value_store::visible(
                    &row.memory_json().unwrap_or(Value::Null),
                )),
            };
            stores.insert(
                row.id,
                KvStore {
                    user_id: row.user_id,
                    variable,
                    store,
                },
            );
        }
    }

    pub fn remove(&self, id: AgentId) {
        let mut map = self.drops.write().unwrap_or_else(|e| e.into_inner());
        map.remove(&id);
        std::mem::drop(map);
        let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
        stores.remove(&id);
    }

    /// A key_value_store agent's memory changed: what its controlled agents see next.
    pub fn set_store(&self, id: AgentId, memory: &Value) {
        let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stores.get_mut(&id) {
            s.store = Arc::new(key_value_store::visible(memory));
        }
    }

    /// Replaces the control links: `(controller, target)` pairs.
    pub fn set_control_links(&self, pairs: &[(AgentId, AgentId)]) {
        let mut by_target: HashMap<AgentId, Vec<AgentId>> = HashMap::new();
        for &(controller, target) in pairs {
            by_target.entry(target).or_default().push(controller);
        }
        for v in by_target.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        let mut map = self.controllers.write().unwrap_or_else(|e| e.into_inner());
        *map = by_target;
    }

    /// The stores of the key_value_store agents (of `user_id`) that control agent `id`,
    /// as (variable, store), in the order they are set.
    pub fn stores_for(&self, id: AgentId, user_id: i64) -> Vec<(String, Arc<Value>)> {
        let controllers = self.controllers.read().unwrap_or_else(|e| e.into_inner());
        let Some(ids) = controllers.get(&id) else {
            return Vec::new();
        };
        let stores = self.stores.read().unwrap_or_else(|e| e.into_inner());
        ids.iter()
            .filter_map(|c| stores.get(c))
            .filter(|s| s.user_id == user_id)
            .filter_map(|s| Some((s.variable.clone()?, s.store.clone())))
            .collect()
    }

    /// Agent `id`'s drop, only if `user_id` owns it: a template never sees another
    /// user's agent (its options).
    pub fn get(&self, id: AgentId, user_id: i64) -> Option<Arc<Value>> {
        let map = self.drops.read().unwrap_or_else(|e| e.into_inner());
        map.get(&id)
            .filter(|(owner, _)| *owner == user_id)
            .map(|(_, d)| d.clone())
    }
}

impl AgentCtx<'_> {
    /// The drop of agent `id`: from the directory, or this agent's own row.
    fn drop_of(&self, id: AgentId) -> Option<Value> {
        if let Some(d) = self.directory.and_then(|d| d.get(id, self.agent.user_id)) {
            return Some((*d).clone());
        }
        (id == self.agent.id).then(|| agent_drop(self.agent))
    }

    /// `_agent_` alone, with this agent's credentials: what a template rendered without
    /// an event sees (a scheduled run).
    pub fn render_ctx(&self) -> RenderCtx<'static> {
        let mut ctx = RenderCtx::new().with_credentials(self.credentials.clone());
        ctx.set(
            "_agent_",
            self.drop_of(self.agent.id).unwrap_or(Value::Null),
        );
        self.add_stores(&mut ctx);
        ctx
    }

    /// The stores of the key_value_store agents controlling this one, each under its
    /// `variable`.
    fn add_stores(&self, ctx: &mut RenderCtx<'static>) {
        let Some(dir) = self.directory else { return };
        for (variable, store) in dir.stores_for(self.agent.id, self.agent.user_id) {
            ctx.set(variable, (*store).clone());
        }
    }

    /// What a template rendered for `event` sees: its payload's keys (a non-object
    /// payload as `value`), `created_at` unless the payload has one, `agent` (the
    /// creating agent; when it is gone or the event came from outside, the payload's
    /// own `agent` or null) and `_agent_`.
    pub fn event_ctx(&self, event: &EventRow, payload: &Value) -> RenderCtx<'static> {
        let mut ctx = match payload {
            Value::Object(map) => RenderCtx::from_map(map.clone()),
            other => {
                let mut c = RenderCtx::new();
                c.insert("value", other);
                c
            }
        }
        .with_credentials(self.credentials.clone());
        if !ctx.contains_key("created_at") {
            ctx.set(
                "created_at",
                Value::String(event.created_at.and_utc().to_rfc3339()),
            );
        }
        // An event no (visible) agent made keeps a payload's own `agent` key.
        match event.agent_id.and_then(|id| self.drop_of(id)) {
            Some(creator) => ctx.set("agent", creator),
            None if !ctx.contains_key("agent") => ctx.set("agent", Value::Null),
            None => {}
        }
        ctx.set(
            "_agent_",
            self.drop_of(self.agent.id).unwrap_or(Value::Null),
        );
        self.add_stores(&mut ctx);
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::event_formatting::tests_support::row;

    fn agent(id: i64, user_id: i64, name: &str) -> AgentRow {
        let mut r = row();
        r.id = AgentId(id);
        r.user_id = user_id;
        r.name = name.into();
        r.agent_type = "webhook".into();
        r
    }

    #[test]
    fn a_store_is_seen_by_its_own_users_control_targets_under_its_variable() {
        let dir = AgentDirectory::default();
        let mut kvs = agent(9, 1, "Store");
        kvs.agent_type = "key_value_store".into();
        kvs.options = r#"{"key": "k", "value": "v", "variable": "kvs"}"#.into();
        kvs.memory = r#"{"a": 1, "": ["a"]}"#.into();
        dir.set(&kvs);
        dir.set_control_links(&[(AgentId(9), AgentId(5)), (AgentId(9), AgentId(6))]);
        let me = agent(5, 1, "Reader");
        let mut memory = serde_json::json!({});
        let mut ctx = AgentCtx::new(&me, &mut memory);
        ctx.directory = Some(&dir);
        let mut event =
            crate::agents::event_formatting::tests_support::event(&serde_json::json!({}));
        event.agent_id = None;
        let payload = serde_json::json!({"kvs": "the payload's"});
        let vars = ctx.event_ctx(&event, &payload);
        assert_eq!(vars.vars()["kvs"], serde_json::json!({"a": 1}));
        dir.set_store(AgentId(9), &serde_json::json!({"a": 2, "": ["a"]}));
        assert_eq!(ctx.render_ctx().vars()["kvs"], serde_json::json!({"a": 2}));
        // Agent 6 belongs to another user: a link cannot show it this user's store.
        assert!(dir.stores_for(AgentId(6), 2).is_empty());
        dir.remove(AgentId(9));
        assert!(dir.stores_for(AgentId(5), 1).is_empty());
    }

    #[test]
    fn another_users_agent_is_not_visible() {
        let dir = AgentDirectory::default();
        dir.set(&agent(5, 2, "Theirs"));
        assert!(dir.get(AgentId(5), 1).is_none());
        let d = dir.get(AgentId(5), 2).unwrap();
        assert_eq!(d["name"], "Theirs");
        assert_eq!(d["type"], "Agents::WebhookAgent");
    }

    #[test]
    fn an_event_context_has_the_payload_its_creator_and_the_renderer() {
        let dir = AgentDirectory::default();
        dir.set(&agent(5, 1, "Source"));
        dir.set(&agent(6, 2, "Stranger"));
        let me = row();
        let mut memory = serde_json::json!({});
        let mut ctx = AgentCtx::new(&me, &mut memory);
        ctx.directory = Some(&dir);
        let mut event =
            crate::agents::event_formatting::tests_support::event(&serde_json::json!({"x": 1}));
        event.agent_id = Some(AgentId(5));
        let vars = ctx.event_ctx(&event, &serde_json::json!({"x": 1}));
        assert_eq!(vars.vars()["x"], 1);
        assert_eq!(vars.vars()["agent"]["name"], "Source");
        assert_eq!(vars.vars()["_agent_"]["name"], "a");
        assert!(vars.vars()["created_at"].is_string());
        event.agent_id = Some(AgentId(6));
        let vars = ctx.event_ctx(&event, &serde_json::json!({"agent": "payload's"}));
        assert_eq!(
            vars.vars()["agent"],
            "payload's",
            "another user's agent is hidden"
        );
    }
}
