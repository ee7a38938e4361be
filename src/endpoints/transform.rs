//! Incoming webhooks' `transform_template`: a tera template rendered against
//! `{"data": body, "headers": {...}, "query": {...}}` whose output must be JSON; the
//! JSON becomes the event's payload. Compiled when saved, so syntax errors are a 422
//! on save rather than on the first request. It may also be an object of templates
//! (AGiXT's `payload_transformation`, see `template::object`). Either form can also
//! name the body's own top-level keys (`{{ lead_name }}`), as AGiXT's examples do;
//! `data`, `headers` and `query` win over a body key of the same name.

use serde_json::{Map, Value, json};

use crate::template::object::{ObjectTemplate, stored_object};
use crate::template::{TemplateError, TemplateId, Templates, context_of};

/// Why a transform cannot be compiled or did not give a payload.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The template does not compile (said on save).
    #[error("{0}")]
    Compile(TemplateError),
    #[error("transform_template failed: {0}")]
    Failed(TemplateError),
    #[error("transform_template did not produce JSON ({error}); it produced: {excerpt}")]
    NotJson {
        error: serde_json::Error,
        /// The first 200 characters of what it produced.
        excerpt: String,
    },
}

pub enum Transform {
    Text {
        templates: Templates,
        id: TemplateId,
    },
    Object(ObjectTemplate),
}

impl Transform {
    pub fn new(source: &str) -> Result<Transform, TransformError> {
        if let Some(object) = stored_object(source) {
            return ObjectTemplate::new("transform_template", &object)
                .map(Transform::Object)
                .map_err(TransformError::Compile);
        }
        let mut templates = Templates::new();
        let id = templates
            .add("transform_template", source)
            .map_err(TransformError::Compile)?;
        Ok(Transform::Text { templates, id })
    }

    /// Renders the payload; the error says why the template failed or what JSON was wrong.
    pub fn apply(
        &self,
        data: &Value,
        headers: &[(String, String)],
        query: &str,
    ) -> Result<Value, TransformError> {
        let headers: Map<String, Value> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), Value::String(v.clone())))
            .collect();
        let query: Map<String, Value> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        let mut vars = match data {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        if let Value::Object(named) = json!({"data": data, "headers": headers, "query": query}) {
            vars.extend(named);
        }
        let vars = Value::Object(vars);
        let (templates, id) = match self {
            Transform::Object(t) => {
                return t.render(&vars).map_err(TransformError::Failed);
            }
            Transform::Text { templates, id } => (templates, id),
        };
        let text = templates
            .render(id, &context_of(&vars))
            .map_err(TransformError::Failed)?;
        serde_json::from_str(&text).map_err(|error| TransformError::NotJson {
            error,
            excerpt: text.chars().take(200).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_agixt_style_templates() {
        let t = Transform::new(
            r#"{"message": "{{ data.text }}", "priority": "{{ priority | default(value='medium') }}", "raw": {{ data | json_encode() }}{% for t in data.tags %}, "tag_{{ t }}": true{% endfor %}}"#,
        )
        .unwrap();
        let out = t
            .apply(&json!({"text": "hi", "tags": ["a"]}), &[], "x=1")
            .unwrap();
        assert_eq!(
            out,
            json!({"message": "hi", "priority": "medium", "raw": {"text": "hi", "tags": ["a"]}, "tag_a": true})
        );
    }

    #[test]
    fn objects_of_templates_and_top_level_names() {
        let source = crate::template::object::store(&json!({
            "message": "New lead: {{ lead_name }} from {{ company }}",
            "context": {"email": "{{ email }}", "source": "CRM System", "raw": "{{ data }}"}
        }));
        let t = Transform::new(&source).unwrap();
        let body = json!({"lead_name": "Ada", "company": "ACME", "email": "a@x"});
        assert_eq!(
            t.apply(&body, &[], "").unwrap(),
            json!({"message": "New lead: Ada from ACME", "context": {"email": "a@x", "source": "CRM System", "raw": body}})
        );
        let t = Transform::new(r#"{"m": "{{ lead_name }}/{{ data.lead_name }}"}"#).unwrap();
        assert_eq!(t.apply(&body, &[], "").unwrap(), json!({"m": "Ada/Ada"}));
    }

    #[test]
    fn bad_templates_and_bad_json_say_why() {
        assert!(Transform::new("{{ unclosed").is_err());
        let t = Transform::new("not json {{ data.a }}").unwrap();
        let e = t.apply(&json!({"a": 1}), &[], "").unwrap_err().to_string();
        assert!(e.contains("did not produce JSON"), "{e}");
        let t = Transform::new("{{ data.missing.deeper }}").unwrap();
        assert!(
            t.apply(&json!({}), &[], "")
                .unwrap_err()
                .to_string()
                .contains("transform_template failed")
        );
    }
}
