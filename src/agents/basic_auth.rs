//! Huginn's `basic_auth` web-request option (post, rss and website agents):
//! `"user:password"` or `["user", "password"]`. Huginn interpolates it like its other
//! options, so `":{% credential ntfy_token %}"` sends the user's credential: the option
//! is compiled as Liquid at save and rendered for each request.

use serde_json::Value;

use super::request_headers::RequestError;
use crate::agents::OptionError;
use crate::template::{RenderCtx, TemplateTree, Templates};

/// The option as written, checked for its shape (Huginn checks the raw option at save
/// too), as `user:password`.
pub fn parse(options: &Value) -> Result<Option<String>, OptionError> {
    credentials(options.get("basic_auth")).map_err(|()| {
        OptionError::new(
            "basic_auth",
            "must be \"user:password\" or [\"user\", \"password\"]",
        )
    })
}

fn credentials(value: Option<&Value>) -> Result<Option<String>, ()> {
    Ok(match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.contains(':') => Some(s.clone()),
        Some(Value::Array(a)) if a.len() == 2 && a.iter().all(Value::is_string) => Some(format!(
            "{}:{}",
            a[0].as_str().unwrap_or_default(),
            a[1].as_str().unwrap_or_default()
        )),
        Some(_) => return Err(()),
    })
}

/// The option compiled for rendering per request; None when the agent has none.
pub fn compile(
    templates: &mut Templates,
    options: &Value,
) -> Result<Option<TemplateTree>, OptionError> {
    if parse(options)?.is_none() {
        return Ok(None);
    }
    let value = options.get("basic_auth").cloned().unwrap_or(Value::Null);
    templates
        .add_tree("basic_auth", &value)
        .map(Some)
        .map_err(OptionError::template)
}

/// `user:password` for one request, rendered with `ctx`.
pub fn render(
    templates: &Templates,
    tree: Option<&TemplateTree>,
    ctx: &RenderCtx<'_>,
) -> Result<Option<String>, RequestError> {
    let Some(tree) = tree else {
        return Ok(None);
    };
    let value = templates.render_tree(tree, ctx)?;
    credentials(Some(&value)).map_err(|()| RequestError::BasicAuthShape)
}

/// The `Authorization` header for `user:password`.
pub fn header(credentials: &str) -> (String, String) {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    ("Authorization".into(), format!("Basic {encoded}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::context_of;
    use serde_json::json;

    fn rendered(options: Value, vars: Value) -> Result<Option<String>, String> {
        let mut templates = Templates::liquid();
        let tree = compile(&mut templates, &options).map_err(|e| e.to_string())?;
        render(&templates, tree.as_ref(), &context_of(&vars)).map_err(|e| e.to_string())
    }

    #[test]
    fn both_shapes_are_read_and_others_refused_at_save() {
        assert_eq!(
            parse(&json!({"basic_auth": "u:p"})).unwrap().as_deref(),
            Some("u:p")
        );
        assert_eq!(
            parse(&json!({"basic_auth": ["u", "p:q"]}))
                .unwrap()
                .as_deref(),
            Some("u:p:q")
        );
        assert_eq!(parse(&json!({"basic_auth": ""})).unwrap(), None);
        assert_eq!(parse(&json!({})).unwrap(), None);
        let e = parse(&json!({"basic_auth": "no colon"})).unwrap_err();
        assert_eq!(e.option, "basic_auth");
        assert!(parse(&json!({"basic_auth": ["one"]})).is_err());
    }

    #[test]
    fn the_option_is_liquid_rendered_per_request() {
        let got = rendered(
            json!({"basic_auth": ":{{ token }}"}),
            json!({"token": "t0k"}),
        );
        assert_eq!(got.unwrap().as_deref(), Some(":t0k"));
        let got = rendered(
            json!({"basic_auth": ["{{ u }}", "pw"]}),
            json!({"u": "ann"}),
        );
        assert_eq!(got.unwrap().as_deref(), Some("ann:pw"));
        // A literal stays as written.
        assert_eq!(
            rendered(json!({"basic_auth": "a:b"}), json!({}))
                .unwrap()
                .as_deref(),
            Some("a:b")
        );
        assert_eq!(header("a:b").1, "Basic YTpi");
    }
}
