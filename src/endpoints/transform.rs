//! Incoming webhooks' `transform_template`: a tera template rendered against
//! `{"data": body, "headers": {...}, "query": {...}}` whose output must be JSON; the
//! JSON becomes the event's payload. Compiled when saved, so syntax errors are a 422
//! on save rather than on the first request.

use serde_json::{Map, Value, json};

use crate::template::{TemplateId, Templates, context_of};

pub struct Transform {
    templates: Templates,
    id: TemplateId,
}

impl Transform {
    pub fn new(source: &str) -> Result<Transform, String> {
        let mut templates = Templates::new();
        let id = templates
            .add("transform_template", source)
            .map_err(|e| e.to_string())?;
        Ok(Transform { templates, id })
    }

    /// Renders the payload; the error says why the template failed or what JSON was wrong.
    pub fn apply(
        &self,
        data: &Value,
        headers: &[(String, String)],
        query: &str,
    ) -> Result<Value, String> {
        let headers: Map<String, Value> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), Value::String(v.clone())))
            .collect();
        let query: Map<String, Value> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        let context = json!({"data": data, "headers": headers, "query": query});
        let text = self
            .templates
            .render(&self.id, &context_of(&context))
            .map_err(|e| format!("transform_template failed: {e}"))?;
        serde_json::from_str(&text).map_err(|e| {
            let excerpt: String = text.chars().take(200).collect();
            format!("transform_template did not produce JSON ({e}); it produced: {excerpt}")
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
    fn bad_templates_and_bad_json_say_why() {
        assert!(Transform::new("{{ unclosed").is_err());
        let t = Transform::new("not json {{ data.a }}").unwrap();
        let e = t.apply(&json!({"a": 1}), &[], "").unwrap_err();
        assert!(e.contains("did not produce JSON"), "{e}");
        let t = Transform::new("{{ data.missing.deeper }}").unwrap();
        assert!(
            t.apply(&json!({}), &[], "")
                .unwrap_err()
                .contains("transform_template failed")
        );
    }
}
