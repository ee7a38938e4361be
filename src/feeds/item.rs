//! Feed items: an item template rendered against one event, in the template's key
//! order, with Huginn's `guid` (`{_attributes: {isPermaLink: "false"}, _contents: id}`)
//! and `pubDate` (RFC 2822; the event's time unless the template gives a date).

use crate::template::RenderCtx as Context;
use chrono::{DateTime, FixedOffset};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::time;
use crate::store::events::EventRow;
use crate::template::{TemplateError, TemplateTree, Templates};

/// A JSON-like value whose objects keep their key order (serde_json's `Map` sorts keys
/// in this build), so `guid` and `pubDate` keep Huginn's positions (in place when the
/// template has them, else last). The template's own fields come in the order of the
/// parsed options, which is key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Scalar(Value),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Node {
    pub fn from_value(v: &Value) -> Node {
        match v {
            Value::Object(map) => Node::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_value(v)))
                    .collect(),
            ),
            Value::Array(items) => Node::Array(items.iter().map(Node::from_value).collect()),
            other => Node::Scalar(other.clone()),
        }
    }

    pub fn text(s: impl Into<String>) -> Node {
        Node::Scalar(Value::String(s.into()))
    }

    pub fn get<'a>(fields: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, keeping its position when present (as a Ruby hash does), else appending.
    pub fn set(fields: &mut Vec<(String, Node)>, key: &str, value: Node) {
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => fields.push((key.to_string(), value)),
        }
    }

    /// The text of a scalar (numbers and booleans as written, null as "").
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Scalar(Value::String(s)) => Some(s.clone()),
            Node::Scalar(Value::Null) => Some(String::new()),
            Node::Scalar(other) => Some(other.to_string()),
            _ => None,
        }
    }

    /// Ruby's `present?` for what a template can produce.
    fn is_present(&self) -> bool {
        match self {
            Node::Scalar(Value::Null) | Node::Scalar(Value::Bool(false)) => false,
            Node::Scalar(Value::String(s)) => !s.trim().is_empty(),
            Node::Scalar(_) => true,
            Node::Object(f) => !f.is_empty(),
            Node::Array(a) => !a.is_empty(),
        }
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Scalar(v) => v.serialize(s),
            Node::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
    }
}

/// Renders a template tree keeping key order.
pub fn render_tree(
    templates: &Templates,
    tree: &TemplateTree,
    ctx: &Context,
) -> Result<Node, TemplateError> {
    Ok(match tree {
        TemplateTree::Literal(v) => Node::from_value(v),
        TemplateTree::Template(id) => match templates.render_value(id, ctx)? {
            Value::String(s) => Node::text(s),
            other => Node::from_value(&other),
        },
        TemplateTree::Object(fields) => Node::Object(
            fields
                .iter()
                .map(|(k, t)| Ok((k.clone(), render_tree(templates, t, ctx)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        TemplateTree::Array(items) => Node::Array(
            items
                .iter()
                .map(|t| render_tree(templates, t, ctx))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// What an item template sees: the payload's keys, plus `created_at` (RFC 3339) where
/// the payload has none.
pub fn event_context(event: &EventRow, payload: &Value) -> Context<'static> {
    // No credentials here: `build_doc` adds the feed owner's with `with_credentials`.
    let mut ctx = Context::new();
    if let Value::Object(map) = payload {
        for (k, v) in map {
            ctx.insert(k.as_str(), v);
        }
    } else {
        ctx.insert("value", payload);
    }
    if !ctx.contains_key("created_at") {
        ctx.insert("created_at", &event.created_at.and_utc().to_rfc3339());
    }
    ctx
}

/// The event's creation time with a UTC offset.
pub fn created_at(event: &EventRow) -> DateTime<FixedOffset> {
    event.created_at.and_utc().fixed_offset()
}

/// Applies Huginn's `guid` and `pubDate` rules to a rendered item.
pub fn finish(mut fields: Vec<(String, Node)>, event: &EventRow) -> Vec<(String, Node)> {
    let contents = match Node::get(&fields, "guid") {
        Some(g) if g.is_present() => g.clone(),
        _ => Node::Scalar(Value::from(event.id.0)),
    };
    let guid = Node::Object(vec![
        (
            "_attributes".into(),
            Node::Object(vec![("isPermaLink".into(), Node::text("false"))]),
        ),
        ("_contents".into(), contents),
    ]);
    Node::set(&mut fields, "guid", guid);
    let given = Node::get(&fields, "pubDate").and_then(Node::scalar_text);
    let date = match given.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => time::parse(text).unwrap_or_else(|| {
            tracing::warn!(event_id = event.id.0, value = %text.chars().take(80).collect::<String>(), "a \"pubDate\" value is not a date; using the event's time");
            created_at(event)
        }),
        None => created_at(event),
    };
    Node::set(&mut fields, "pubDate", Node::text(time::rfc2822(&date)));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Templates;
    use serde_json::json;

    fn event(id: i64) -> EventRow {
        EventRow {
            id: crate::ids::EventId(id),
            user_id: 1,
            agent_id: Some(crate::ids::AgentId(1)),
            event_type: "event.created".into(),
            payload: "{}".into(),
            created_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
                .unwrap()
                .and_hms_opt(14, 0, 0)
                .unwrap(),
            expires_at: None,
            target_agent_id: None,
        }
    }

    fn render(item: Value, payload: Value, id: i64) -> Vec<(String, Node)> {
        let mut t = Templates::liquid();
        let tree = t.add_tree("template.item", &item).unwrap();
        let ev = event(id);
        let Node::Object(fields) = render_tree(&t, &tree, &event_context(&ev, &payload)).unwrap()
        else {
            panic!("not an object")
        };
        finish(fields, &ev)
    }

    #[test]
    fn keeps_template_order_and_adds_guid_and_pub_date() {
        let fields = render(
            json!({"title": "{{ t }}", "link": "{{ u }}", "a": 1}),
            json!({"t": "T", "u": "http://x"}),
            7,
        );
        let json = serde_json::to_string(&Node::Object(fields)).unwrap();
        // Options are parsed into serde_json maps (sorted keys in this build), so fields
        // come in key order; guid and pubDate are appended, as in Huginn.
        assert!(
            json.starts_with(r#"{"a":1,"link":"http://x","title":"T","#),
            "{json}"
        );
        assert!(
            json.ends_with(r#""guid":{"_attributes":{"isPermaLink":"false"},"_contents":7},"pubDate":"Sun, 22 Nov 2026 14:00:00 +0000"}"#),
            "{json}"
        );
    }

    #[test]
    fn template_guid_and_pub_date_are_used_in_place() {
        let fields = render(
            json!({"guid": "{{ g }}", "pubDate": "{{ d }}", "title": "x"}),
            json!({"g": "abc", "d": "2014-11-05T16:47:49+05:30"}),
            7,
        );
        assert_eq!(fields[0].0, "guid");
        assert_eq!(
            fields[0].1,
            Node::Object(vec![
                (
                    "_attributes".into(),
                    Node::Object(vec![("isPermaLink".into(), Node::text("false"))])
                ),
                ("_contents".into(), Node::text("abc")),
            ])
        );
        assert_eq!(
            fields[1],
            (
                "pubDate".into(),
                Node::text("Wed, 05 Nov 2014 16:47:49 +0530")
            )
        );
        let fields = render(json!({"guid": " ", "pubDate": "garbage"}), json!({}), 9);
        assert_eq!(
            Node::get(&fields, "pubDate"),
            Some(&Node::text("Sun, 22 Nov 2026 14:00:00 +0000"))
        );
        let Some(Node::Object(g)) = Node::get(&fields, "guid") else {
            panic!()
        };
        assert_eq!(g[1].1, Node::Scalar(json!(9)));
    }
}
