//! Templates written as a JSON object (TagoRUN's `payload_template`, AGiXT's
//! `payload_transformation`): every string leaf is a template, the rest is kept. A
//! leaf that is one bare variable (`"{{ event.data }}"`) takes that value with its
//! type (an object stays an object, a missing one is null), as those documents'
//! readers expect; any other leaf renders to a string.
//!
//! Stored in the same text column as a string template, after [`OBJECT_MARK`] (a
//! tera comment, so the text is still a template that renders the object's JSON).

use serde_json::{Map, Value};

use super::{TemplateError, TemplateTree, Templates};

/// Marks stored text as an object template.
pub const OBJECT_MARK: &str = "{#object#}";

/// The stored text of an object template.
pub fn store(object: &Value) -> String {
    format!("{OBJECT_MARK}{object}")
}

/// The object of a stored object template, or None for a string template.
pub fn stored_object(text: &str) -> Option<Value> {
    text.strip_prefix(OBJECT_MARK)
        .and_then(|rest| serde_json::from_str(rest).ok())
}

enum Node {
    Lookup(Vec<String>),
    Tree(TemplateTree),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

/// A compiled object template.
pub struct ObjectTemplate {
    templates: Templates,
    root: Node,
}

fn bare_variable(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let parts: Vec<String> = inner.split('.').map(str::to_string).collect();
    let ok = parts.iter().all(|p| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    ok.then_some(parts)
}

impl ObjectTemplate {
    /// Compiles every leaf; errors name the leaf (`payload_template.user.email`).
    pub fn new(label: &str, object: &Value) -> Result<ObjectTemplate, TemplateError> {
        let mut templates = Templates::new();
        let root = compile(&mut templates, label, object)?;
        Ok(ObjectTemplate { templates, root })
    }

    /// Renders against `vars` (an object whose keys are the variables).
    pub fn render(&self, vars: &Value) -> Result<Value, TemplateError> {
        let context = super::context_of(vars);
        render(&self.templates, &self.root, vars, &context)
    }
}

fn compile(t: &mut Templates, label: &str, v: &Value) -> Result<Node, TemplateError> {
    Ok(match v {
        Value::String(s) => match bare_variable(s) {
            Some(path) => Node::Lookup(path),
            None => Node::Tree(t.add_tree(label, v)?),
        },
        Value::Object(map) => Node::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), compile(t, &format!("{label}.{k}"), v)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile(t, &format!("{label}[{i}]"), v))
                .collect::<Result<_, _>>()?,
        ),
        other => Node::Tree(TemplateTree::Literal(other.clone())),
    })
}

fn render(
    t: &Templates,
    node: &Node,
    vars: &Value,
    context: &super::RenderCtx<'_>,
) -> Result<Value, TemplateError> {
    Ok(match node {
        Node::Lookup(path) => {
            let mut cur = Some(vars);
            for key in path {
                cur = cur.and_then(|v| v.get(key));
            }
            cur.cloned().unwrap_or(Value::Null)
        }
        Node::Tree(tree) => t.render_tree(tree, context)?,
        Node::Object(fields) => {
            let mut map = Map::with_capacity(fields.len());
            for (k, n) in fields {
                map.insert(k.clone(), render(t, n, vars, context)?);
            }
            Value::Object(map)
        }
        Node::Array(items) => Value::Array(
            items
                .iter()
                .map(|n| render(t, n, vars, context))
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bare_variables_keep_their_type_and_other_leaves_render() {
        let t = ObjectTemplate::new(
            "payload_template",
            &json!({"id": "{{event.id}}", "metadata": "{{event.data}}", "who": "{{ user.name }} <{{ user.email }}>", "source": "TagoRUN", "n": 3, "gone": "{{ session.ip }}"}),
        )
        .unwrap();
        let out = t
            .render(&json!({"event": {"id": "msg_1", "data": {"v": 1}}, "user": {"name": "Ada", "email": "a@x"}}))
            .unwrap();
        assert_eq!(
            out,
            json!({"id": "msg_1", "metadata": {"v": 1}, "who": "Ada <a@x>", "source": "TagoRUN", "n": 3, "gone": null})
        );
    }

    #[test]
    fn stored_text_round_trips_and_errors_name_the_leaf() {
        let obj = json!({"a": "{{ x }}"});
        assert_eq!(stored_object(&store(&obj)), Some(obj));
        assert_eq!(stored_object("{\"a\": 1}"), None);
        let err = ObjectTemplate::new("payload_template", &json!({"a": {"b": "{% if %}"}}))
            .err()
            .unwrap();
        assert!(err.0.starts_with("payload_template.a.b"), "{}", err.0);
    }
}
