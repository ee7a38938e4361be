//! Huginn's Liquid, on the `liquid` crate: templates in agent options are compiled once
//! ([`compile`]) and rendered per event ([`LiquidTemplate::render`]) with Huginn's
//! semantics (lax lookups, Ruby Liquid 5 standard filters, Huginn's filters, tags and
//! blocks) inside the same sandbox as tera templates (work, time, value and output
//! bounds from [`Limits`]).
//!
//! The parts: [`runtime`] (lax variable lookup), [`blocks`] (`for`, `regex_replace`),
//! [`tags`] (`credential`, `line_break`, `uuidv4`, bounded `capture`), [`std_filters`]
//! (standard filters Ruby renders differently), [`huginn_filters`] and [`uri_filters`]
//! (Huginn's), [`filter_kit`] (the bounded filter plumbing), [`bounds`] (the sandbox),
//! [`normalize`] (Huginn's lax spellings), [`convert`] (JSON <-> Liquid values).

mod blocks;
mod bounds;
mod convert;
pub mod expander;
mod filter_kit;
mod html_entities;
mod huginn_filters;
mod math_filters;
mod normalize;
mod regex_util;
mod runtime;
mod std_filters;
mod tags;
mod uri_filters;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use liquid_core::{Language, ParseFilter, Renderable, Runtime, Template};
use liquid_lib::stdlib;
use serde_json::{Map, Value};

use crate::template::budget;
use crate::template::limits::Limits;

use filter_kit::Guarded;
use huginn_filters::{AS_OBJECT_STOP, AsObject};
use tags::Credentials;

/// Where `{% credential NAME %}` reads from while one rendering runs (the agent owner's credentials).
pub trait CredentialSource: Send + Sync {
    /// The value, or None when the user has no credential of that name (renders as "").
    fn credential(&self, name: &str) -> Option<String>;

    /// The names of every credential the owner has (the java_script agent hands its
    /// code all of them, as Huginn's `this.credential(name)` may ask for any); none by
    /// default.
    fn names(&self) -> Vec<String> {
        Vec::new()
    }

    /// What `uri_expand` asks (the hub's, for an owner's renderings); none: no requests.
    fn uri_expander(&self) -> Option<std::sync::Arc<dyn expander::UriExpander>> {
        None
    }
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
    inner: Arc<Compiled>,
}

struct Compiled {
    template: Template,
    credentials: Vec<String>,
}

/// True when `s` contains Liquid markup (`{{` or `{%`); plain strings are not compiled.
pub fn has_markup(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

fn language() -> &'static Language {
    static LANGUAGE: OnceLock<Language> = OnceLock::new();
    LANGUAGE.get_or_init(build_language)
}

// One idea: the registration of every tag, block and filter of muninn's Liquid language, one table.
fn build_language() -> Language {
    let mut l = Language::default();
    // `include` and `render` (other templates), `tablerow` and `ifchanged` (which
    // buffer without bounds) are left out.
    l.tags
        .register("assign".into(), Box::new(stdlib::AssignTag));
    l.tags.register("break".into(), Box::new(stdlib::BreakTag));
    l.tags
        .register("continue".into(), Box::new(stdlib::ContinueTag));
    l.tags.register("cycle".into(), Box::new(stdlib::CycleTag));
    l.tags
        .register("increment".into(), Box::new(stdlib::IncrementTag));
    l.tags
        .register("decrement".into(), Box::new(stdlib::DecrementTag));
    l.tags
        .register("credential".into(), Box::new(tags::CredentialTag));
    l.tags
        .register("line_break".into(), Box::new(tags::LineBreakTag));
    l.tags.register("uuidv4".into(), Box::new(tags::Uuidv4Tag));
    l.tags.register("echo".into(), Box::new(tags::EchoTag));
    l.blocks.register("raw".into(), Box::new(stdlib::RawBlock));
    l.blocks.register("if".into(), Box::new(stdlib::IfBlock));
    l.blocks
        .register("unless".into(), Box::new(stdlib::UnlessBlock));
    l.blocks
        .register("comment".into(), Box::new(stdlib::CommentBlock));
    l.blocks
        .register("case".into(), Box::new(stdlib::CaseBlock));
    l.blocks
        .register("capture".into(), Box::new(tags::CaptureBlock));
    l.blocks.register("for".into(), Box::new(blocks::ForBlock));
    for first in [false, true] {
        let b = blocks::RegexReplaceBlock { first };
        let name = if first {
            "regex_replace_first"
        } else {
            "regex_replace"
        };
        l.blocks.register(name.into(), Box::new(b));
    }
    let standard: Vec<Box<dyn ParseFilter>> = vec![
        Box::new(stdlib::Abs),
        Box::new(stdlib::AtLeast),
        Box::new(stdlib::AtMost),
        Box::new(stdlib::Capitalize),
        Box::new(stdlib::Ceil),
        Box::new(stdlib::Compact),
        Box::new(stdlib::Concat),
        Box::new(stdlib::Downcase),
        Box::new(stdlib::Escape),
        Box::new(stdlib::EscapeOnce),
        Box::new(stdlib::First),
        Box::new(stdlib::Floor),
        Box::new(stdlib::Last),
        Box::new(stdlib::Lstrip),
        Box::new(stdlib::Map),
        Box::new(stdlib::NewlineToBr),
        Box::new(stdlib::Reverse),
        Box::new(stdlib::Rstrip),
        Box::new(stdlib::Size),
        Box::new(stdlib::Slice),
        Box::new(stdlib::Sort),
        Box::new(stdlib::SortNatural),
        Box::new(stdlib::Split),
        Box::new(stdlib::Strip),
        Box::new(stdlib::StripHtml),
        Box::new(stdlib::StripNewlines),
        Box::new(stdlib::Truncate),
        Box::new(stdlib::TruncateWords),
        Box::new(stdlib::Uniq),
        Box::new(stdlib::Upcase),
        Box::new(stdlib::UrlDecode),
        Box::new(stdlib::UrlEncode),
        Box::new(stdlib::Where),
    ];
    for f in standard {
        let name = f.reflection().name().to_owned();
        l.filters.register(name, Box::new(Guarded(f)));
    }
    // Ruby Liquid's short name for `escape`.
    l.filters
        .register("h".into(), Box::new(Guarded(Box::new(stdlib::Escape))));
    let ours = std_filters::FILTERS
        .iter()
        .chain(huginn_filters::FILTERS)
        .chain(math_filters::FILTERS)
        .chain(uri_filters::FILTERS);
    for f in ours {
        l.filters.register(f.name.to_owned(), Box::new(f.clone()));
    }
    l
}

/// Liquid's errors span several lines (message, source excerpt, context); one line for
/// a log or an API answer: the messages, then where.
fn one_line(e: &liquid_core::Error) -> String {
    let text = e.to_string();
    let mut parts: Vec<String> = Vec::new();
    let mut at = None;
    for line in text.lines().map(str::trim) {
        let line = line.strip_prefix("liquid:").unwrap_or(line).trim();
        let excerpt = line.starts_with('|')
            || line
                .split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
        if line.is_empty() || line == "with:" || excerpt {
            continue;
        }
        if let Some(pos) = line.strip_prefix("-->") {
            let (l, c) = pos.trim().split_once(':').unwrap_or((pos.trim(), "?"));
            at = Some(format!("at line {l}, column {c}"));
            continue;
        }
        let line = line.strip_prefix("= ").unwrap_or(line);
        let line = line.strip_prefix("from: ").unwrap_or(line);
        if !line.starts_with("available filters=") {
            parts.push(line.to_owned());
        }
    }
    let mut out = parts.join("; ");
    if let Some(at) = at {
        out = format!("{out} ({at})");
    }
    out
}

/// Why a Liquid template does not compile or render. Each message is one line in
/// Liquid's terms, WITHOUT the option label (the caller prefixes "options.message: ").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiquidError {
    /// A sandbox bound is broken: source size or nesting, output, work or time.
    #[error("{0}")]
    Limit(String),
    /// The source does not parse (or holds a number Liquid cannot hold).
    #[error("{0}")]
    Syntax(String),
    /// Rendering failed: a filter's error, a missing credential, ...
    #[error("{0}")]
    Render(String),
    /// The engine panicked on this template.
    #[error("the Liquid engine failed on this template (an internal error); simplify the template")]
    Internal,
}

/// Parses and checks `source` once (at save/load).
pub fn compile(source: &str, limits: &Limits) -> Result<LiquidTemplate, LiquidError> {
    bounds::prescan(source, limits)?;
    let src = normalize::normalize(source);
    if let Some(too_large) = normalize::oversized_integer(&src) {
        return Err(LiquidError::Syntax(too_large));
    }
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        liquid_core::parser::parse(&src, language())
    }))
    .map_err(|_| LiquidError::Internal)?;
    let elements = parsed.map_err(|e| {
        LiquidError::Syntax(match normalize::unclosed_markup(source) {
            Some(unclosed) => unclosed,
            None => one_line(&e),
        })
    })?;
    Ok(LiquidTemplate {
        inner: Arc::new(Compiled {
            template: Template::new(elements),
            credentials: tags::credential_names(&src),
        }),
    })
}

impl LiquidTemplate {
    /// Renders with `vars` as the top-level variables. Returns Value::String normally; when the
    /// template ends in the `as_object` filter, the object/array/number itself (Huginn semantics).
    /// Errors are one line a person can act on (limit broken, filter error ...).
    pub fn render(
        &self,
        vars: &Map<String, Value>,
        credentials: &dyn CredentialSource,
        limits: &Limits,
    ) -> Result<Value, LiquidError> {
        let object = convert::to_object(vars);
        let creds: std::collections::HashMap<String, String> = self
            .inner
            .credentials
            .iter()
            .filter_map(|n| credentials.credential(n).map(|v| (n.clone(), v)))
            .collect();
        let uri_expander = credentials.uri_expander();
        let (outcome, broken) = budget::run(*limits, || {
            catch_unwind(AssertUnwindSafe(|| {
                let root = runtime::Root::new(&object);
                root.registers().get_mut::<Credentials>().0 = creds;
                root.registers().get_mut::<expander::Expander>().0 = uri_expander;
                let mut out = bounds::CappedWriter::output(limits);
                let res = self.inner.template.render_to(&mut out, &root);
                let as_object = root.registers().get_mut::<AsObject>().0.take();
                (res, out.bytes, as_object)
            }))
        });
        let Ok((res, bytes, as_object)) = outcome else {
            return Err(LiquidError::Internal);
        };
        if let Some(v) = as_object {
            return Ok(v);
        }
        if let Some(b) = broken {
            return Err(LiquidError::Limit(b.describe(limits)));
        }
        match res {
            Ok(()) => Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) => {
                let msg = one_line(&e);
                debug_assert!(!msg.contains(AS_OBJECT_STOP));
                Err(LiquidError::Render(msg))
            }
        }
    }
}
