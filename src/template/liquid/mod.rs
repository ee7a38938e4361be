//! PLACEHOLDER, replaced by the "engine" helper's Liquid engine at merge: the agreed API
//! (/work/brief/LIQUID_API.md) on the `liquid` crate's standard library only, so that the
//! callers (agents, API validation, scenario import) can be wired and tested meanwhile.
//! It has none of Huginn's filters and tags, and only the source and output bounds.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::template::limits::Limits;

/// Where `{% credential NAME %}` reads from while one rendering runs (the agent owner's credentials).
pub trait CredentialSource: Send + Sync {
    /// The value, or None when the user has no credential of that name (renders as "").
    fn credential(&self, name: &str) -> Option<String>;
}

/// For renderings that have no owner (tests, validation at save time).
pub struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn credential(&self, _: &str) -> Option<String> {
        None
    }
}

/// One compiled Liquid template; cheap to clone (Arc inside), Send + Sync.
#[derive(Clone)]
pub struct LiquidTemplate {
    template: Arc<liquid::Template>,
}

fn parser() -> Result<&'static liquid::Parser, String> {
    static PARSER: OnceLock<Option<liquid::Parser>> = OnceLock::new();
    PARSER
        .get_or_init(|| liquid::ParserBuilder::with_stdlib().build().ok())
        .as_ref()
        .ok_or_else(|| "the Liquid parser could not be built".to_string())
}

/// One line from liquid's multi-line error text.
fn one_line(e: &liquid::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses and checks `source` once (at save/load). The error is one line in Liquid's terms,
/// WITHOUT the option label (the caller prefixes "options.message: ").
pub fn compile(source: &str, limits: &Limits) -> Result<LiquidTemplate, String> {
    if source.len() > limits.max_source_bytes {
        return Err(format!(
            "the template is {} bytes; the limit is {}",
            source.len(),
            limits.max_source_bytes
        ));
    }
    let template = parser()?
        .parse(source)
        .map_err(|e| format!("Liquid syntax error: {}", one_line(&e)))?;
    Ok(LiquidTemplate {
        template: Arc::new(template),
    })
}

impl LiquidTemplate {
    /// Renders with `vars` as the top-level variables. Returns Value::String normally; when the
    /// template ends in the `as_object` filter, the object/array/number itself (Huginn semantics).
    /// Errors are one line a person can act on (limit broken, filter error ...).
    pub fn render(
        &self,
        vars: &Map<String, Value>,
        _credentials: &dyn CredentialSource,
        limits: &Limits,
    ) -> Result<Value, String> {
        let globals = liquid::model::to_object(vars).map_err(|e| one_line(&e))?;
        let out = self
            .template
            .render(&Lenient(&globals))
            .map_err(|e| one_line(&e))?;
        if out.len() > limits.max_output_bytes {
            return Err(format!(
                "the output is larger than {} bytes",
                limits.max_output_bytes
            ));
        }
        Ok(Value::String(out))
    }
}

/// True when `s` contains Liquid markup (`{{` or `{%`); plain strings are not compiled.
pub fn has_markup(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

use liquid::model::{DisplayCow, KStringCow, ObjectView, State, Value as LValue, ValueView};

/// Huginn renders a missing top-level variable as nil; liquid's stdlib refuses it.
static NIL: LValue = LValue::Nil;

#[derive(Debug)]
struct Lenient<'a>(&'a liquid::Object);

impl ValueView for Lenient<'_> {
    fn as_debug(&self) -> &dyn std::fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        self.0.render()
    }
    fn source(&self) -> DisplayCow<'_> {
        self.0.source()
    }
    fn type_name(&self) -> &'static str {
        "object"
    }
    fn query_state(&self, state: State) -> bool {
        self.0.query_state(state)
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        self.0.to_kstr()
    }
    fn to_value(&self) -> LValue {
        self.0.to_value()
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

impl ObjectView for Lenient<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        ObjectView::size(self.0)
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        ObjectView::keys(self.0)
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        ObjectView::values(self.0)
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        ObjectView::iter(self.0)
    }
    fn contains_key(&self, _: &str) -> bool {
        true
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        ObjectView::get(self.0, index).or(Some(&NIL))
    }
}
