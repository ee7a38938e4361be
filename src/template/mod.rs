//! Templates, compiled once when an agent or endpoint is loaded and rendered per event,
//! in one of two languages: Liquid for agent options (Huginn's language, see [`liquid`])
//! and tera/Jinja2 for subscription payload templates and incoming-webhook transforms.
//! Option values are JSON trees whose strings may be templates; a [`TemplateTree`]
//! keeps the tree's shape and compiles only the strings that contain template syntax,
//! so plain strings cost nothing at render time. [`RenderCtx`] is the context either
//! language renders with.
//!
//! Every tera template runs in the sandbox: [`sandbox`] decides what may be saved and
//! instruments it, [`builtins`] is the allow-list of functions, filters and tests,
//! [`budget`] keeps each rendering's account, and [`limits::Limits`] holds the bounds.

pub mod budget;
pub mod builtins;
pub mod context;
pub mod jinja;
pub mod limits;
pub mod liquid;
pub mod object;
pub mod sandbox;
pub mod upgrade;

pub use context::RenderCtx;
use limits::Limits;

use serde_json::{Map, Value};
use tera::Tera;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// Flattens tera's error chain into one line a person can act on.
fn describe(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        // The sandbox's own calls (`__cap`, `__tick`) are not in the user's template.
        if !parts.contains(&text) && !text.contains("'__") {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Which language a [`Templates`] set compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Huginn's Liquid: agent options.
    Liquid,
    /// tera (Jinja2-like): subscription payload templates and incoming transforms.
    Tera,
}

/// Most tera templates one [`Templates`] holds (a subscription's or an incoming
/// webhook's template object): adding one costs time in proportion to those held.
pub const MAX_TERA_TEMPLATES: usize = 1000;

/// A set of compiled templates owned by one agent or endpoint.
pub struct Templates {
    language: Language,
    tera: Tera,
    liquid: Vec<(String, liquid::LiquidTemplate)>,
    next: usize,
    limits: Limits,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// A tera set (subscription payloads, incoming transforms).
    pub fn new() -> Self {
        Self::with_limits(Limits::DEFAULT)
    }

    /// A Liquid set (agent options).
    pub fn liquid() -> Self {
        Templates {
            language: Language::Liquid,
            ..Self::new()
        }
    }

    pub fn with_limits(limits: Limits) -> Self {
        let mut tera = Tera::default();
        // Outputs are JSON values, plain text and URLs, never HTML pages.
        tera.autoescape_on(vec![]);
        builtins::install(&mut tera);
        Templates {
            language: Language::Tera,
            tera,
            liquid: Vec::new(),
            next: 0,
            limits,
        }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// True when nothing was compiled: a caller can skip building a render context.
    pub fn is_empty(&self) -> bool {
        self.liquid.is_empty() && self.tera.templates.is_empty()
    }

    /// Whether `s` is compiled as a template (else it is kept as a literal).
    fn is_template(&self, s: &str) -> bool {
        match self.language {
            Language::Liquid => liquid::has_markup(s),
            Language::Tera => has_syntax(s),
        }
    }

    /// Compiles `source`; `label` names it in errors (e.g. `instructions.message`). A
    /// template the sandbox refuses is an error here, when it is saved.
    pub fn add(&mut self, label: &str, source: &str) -> Result<TemplateId, TemplateError> {
        let fail = |why: String| TemplateError(format!("{label}: {why}"));
        if self.language == Language::Liquid {
            let t = liquid::compile(source, &self.limits).map_err(|e| fail(e.to_string()))?;
            self.liquid.push((label.to_string(), t));
            return Ok(TemplateId(Key::Liquid(self.liquid.len() - 1)));
        }
        // tera checks every template it holds each time one is added, so the cost of
        // a template object grows with the square of its templated strings: 60,000 in
        // one `payload_template` kept a worker busy for minutes.
        if self.tera.templates.len() >= MAX_TERA_TEMPLATES {
            return Err(fail(format!(
                "more than {MAX_TERA_TEMPLATES} templated strings in one template object; \
                 put fewer {{{{ }}}} or {{% %}} strings in it"
            )));
        }
        sandbox::prescan(source, &self.limits).map_err(|e| fail(e.to_string()))?;
        let source = &*jinja::normalize(source);
        let name = format!("{}#{}", self.next, label);
        self.next += 1;
        self.tera
            .add_raw_template(&name, source)
            .map_err(|e| fail(describe(&e)))?;
        let checked = match self.tera.templates.get_mut(&name) {
            Some(t) => sandbox::check(&t.ast, &self.limits)
                .map(|()| sandbox::instrument(&mut t.ast))
                .map_err(|e| e.to_string()),
            None => Err("the template was not kept".to_string()),
        };
        if let Err(why) = checked {
            self.tera.templates.remove(&name);
            return Err(fail(why));
        }
        Ok(TemplateId(Key::Tera(name)))
    }

    /// Renders to text: a Liquid `as_object` value is written as JSON.
    pub fn render(&self, id: &TemplateId, ctx: &RenderCtx<'_>) -> Result<String, TemplateError> {
        Ok(match self.render_value(id, ctx)? {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// Renders to a value: a string, or what a Liquid template ending in `as_object` makes.
    pub fn render_value(
        &self,
        id: &TemplateId,
        ctx: &RenderCtx<'_>,
    ) -> Result<Value, TemplateError> {
        match &id.0 {
            Key::Liquid(i) => {
                let Some((label, t)) = self.liquid.get(*i) else {
                    return Err(TemplateError("the template was not kept".into()));
                };
                t.render(ctx.vars(), ctx.credentials(), &self.limits)
                    .map_err(|e| TemplateError(format!("{label}: {e}")))
            }
            Key::Tera(name) => self.render_tera(name, ctx.tera()).map(Value::String),
        }
    }

    fn render_tera(&self, name: &str, context: &tera::Context) -> Result<String, TemplateError> {
        let label = || name.split_once('#').map(|(_, l)| l).unwrap_or(name);
        let mut out = limits::CappedOutput::new(self.limits.max_output_bytes);
        let (res, broken) = budget::run(self.limits, || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.tera.render_to(name, context, &mut out)
            }))
        });
        if let Some(bound) = broken {
            return Err(TemplateError(format!(
                "{}: {}",
                label(),
                bound.describe(&self.limits)
            )));
        }
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(TemplateError(format!("{}: {}", label(), describe(&e)))),
            Err(_) => {
                return Err(TemplateError(format!(
                    "{}: the template engine failed on this template",
                    label()
                )));
            }
        }
        String::from_utf8(out.bytes)
            .map_err(|_| TemplateError(format!("{}: the output is not UTF-8", label())))
    }

    /// Compiles every template string inside `value`.
    pub fn add_tree(&mut self, label: &str, value: &Value) -> Result<TemplateTree, TemplateError> {
        Ok(match value {
            Value::String(s) if self.is_template(s) => TemplateTree::Template(self.add(label, s)?),
            Value::Object(map) => {
                let mut out = Vec::with_capacity(map.len());
                for (k, v) in map {
                    out.push((k.clone(), self.add_tree(&format!("{label}.{k}"), v)?));
                }
                TemplateTree::Object(out)
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    out.push(self.add_tree(&format!("{label}[{i}]"), v)?);
                }
                TemplateTree::Array(out)
            }
            other => TemplateTree::Literal(other.clone()),
        })
    }

    /// Renders a tree; a Liquid `as_object` option becomes the JSON value itself.
    pub fn render_tree(
        &self,
        tree: &TemplateTree,
        ctx: &RenderCtx<'_>,
    ) -> Result<Value, TemplateError> {
        Ok(match tree {
            TemplateTree::Literal(v) => v.clone(),
            TemplateTree::Template(id) => self.render_value(id, ctx)?,
            TemplateTree::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    map.insert(k.clone(), self.render_tree(t, ctx)?);
                }
                Value::Object(map)
            }
            TemplateTree::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| self.render_tree(t, ctx))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

#[derive(Debug, Clone)]
enum Key {
    Tera(String),
    Liquid(usize),
}

#[derive(Debug, Clone)]
pub struct TemplateId(Key);

/// A JSON value whose template strings are compiled.
#[derive(Debug, Clone)]
pub enum TemplateTree {
    Literal(Value),
    Template(TemplateId),
    Object(Vec<(String, TemplateTree)>),
    Array(Vec<TemplateTree>),
}

/// A render context from a JSON value: an object's keys become variables; any other
/// value is available as `value`.
pub fn context_of(value: &Value) -> RenderCtx<'_> {
    RenderCtx::of(value)
}

/// Checks that `value`'s tera template strings compile; the error names the option.
pub fn validate_tree(label: &str, value: &Value) -> Result<(), TemplateError> {
    Templates::new().add_tree(label, value).map(|_| ())
}

/// Checks that `value`'s Liquid template strings compile; the error names the option.
pub fn validate_liquid_tree(label: &str, value: &Value) -> Result<(), TemplateError> {
    Templates::liquid().add_tree(label, value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_nested_trees_and_leaves_plain_values_alone() {
        let mut t = Templates::new();
        let tree = t
            .add_tree(
                "instructions",
                &json!({"msg": "Hi {{ name | upper }}", "n": 3, "list": ["{{ name }}", "x"]}),
            )
            .unwrap();
        let out = t
            .render_tree(&tree, &context_of(&json!({"name": "ada"})))
            .unwrap();
        assert_eq!(out, json!({"msg": "Hi ADA", "n": 3, "list": ["ada", "x"]}));
    }

    #[test]
    fn errors_name_the_option() {
        let err = validate_tree("instructions", &json!({"msg": "{{ oops"})).unwrap_err();
        assert!(err.0.starts_with("instructions.msg:"), "{}", err.0);
        let mut t = Templates::new();
        let id = t.add("response", "{{ missing }}").unwrap();
        let err = t.render(&id, &RenderCtx::new()).unwrap_err();
        assert!(err.0.contains("missing"), "{}", err.0);
    }

    #[test]
    fn runaway_templates_fail_with_a_reason_instead_of_eating_memory() {
        let mut t = Templates::new();
        let ctx = RenderCtx::new();
        let fine = t
            .add(
                "ok",
                "{% for i in range(start=1, end=10, step_by=3) %}{{ i }}{% endfor %}",
            )
            .unwrap();
        assert_eq!(t.render(&fine, &ctx).unwrap(), "147");
        let huge = t
            .add("huge", "{% for i in range(end=100000000) %}x{% endfor %}")
            .unwrap();
        assert!(
            t.render(&huge, &ctx)
                .unwrap_err()
                .0
                .contains("the limit is 10000")
        );
        let stuck = t
            .add(
                "stuck",
                "{% for i in range(end=5, step_by=0) %}x{% endfor %}",
            )
            .unwrap();
        assert!(t.render(&stuck, &ctx).unwrap_err().0.contains("step_by"));
        let wide = t
            .add(
                "wide",
                "{% for i in range(end=10000) %}{% for j in range(end=10000) %}xxxxxxxx{% endfor %}{% endfor %}",
            )
            .unwrap();
        let err = t.render(&wide, &ctx).unwrap_err().0;
        assert!(err.contains("larger than 4 MiB"), "{err}");
    }

    #[test]
    fn liquid_sets_render_liquid_and_know_when_they_are_empty() {
        let mut t = Templates::liquid();
        assert!(t.is_empty());
        let tree = t
            .add_tree("i", &json!({"m": "{{ a | upcase }}", "plain": "x"}))
            .unwrap();
        assert!(!t.is_empty());
        let out = t
            .render_tree(&tree, &context_of(&json!({"a": "b"})))
            .unwrap();
        assert_eq!(out, json!({"m": "B", "plain": "x"}));
        assert!(Templates::new().is_empty());
    }

    #[test]
    fn html_is_not_escaped() {
        let mut t = Templates::new();
        let id = t.add("x", "{{ v }}").unwrap();
        let out = t
            .render(&id, &context_of(&json!({"v": "<b>&</b>"})))
            .unwrap();
        assert_eq!(out, "<b>&</b>");
    }
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod sandbox_tests;
