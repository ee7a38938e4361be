//! The website agent's options, read and checked once when the agent is saved or
//! loaded, with Huginn's validation messages (website_agent.rb `validate_options`, and
//! WebRequestConcern's for the request options). Everything a user writes that compiles
//! (templates, CSS selectors, XPath, regexps, JSONPaths) is compiled here, so a mistake is
//! a save-time error naming its option, never a surprise at run time.

use serde_json::{Map, Value};

use super::extract::{Extractor, How, Select};
use crate::agents::{OptionError, opt_bool, opt_str, type_name};
use crate::jsonpath::BoundedPath;
use crate::template::{TemplateId, TemplateTree, Templates};

/// The most events one page may turn into, and the most values one extractor may take.
pub const MAX_VALUES: usize = 10_000;
/// The most payload digests kept for `on_change` (Huginn looks back over stored events).
pub const MAX_LOOK_BACK: usize = 10_000;
/// Compiled size allowed for a `regexp` (the regex crate's size limit), in bytes.
const MAX_REGEX_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocType {
    Html,
    Xml,
    Json,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    OnChange,
    All,
    Merge,
}

pub struct Options {
    /// `url`, one template tree (a string or a list of them).
    pub url: Option<TemplateTree>,
    pub url_from_event: Option<TemplateId>,
    pub data_from_event: Option<(TemplateId, String)>,
    pub doc_type: DocType,
    pub mode: Mode,
    /// None: the whole JSON document is the event (type json without `extract`).
    pub extract: Option<Vec<Extractor>>,
    /// The `extract` option as given, quoted in the uneven-matches error.
    pub extract_text: String,
    pub template: Option<TemplateTree>,
    pub look_back: Option<usize>,
    pub success_codes: Vec<u16>,
    /// `user_agent` and `headers` (headers win), rendered per request.
    pub headers: TemplateTree,
    pub basic_auth: Option<TemplateTree>,
    pub use_namespaces: Option<bool>,
    pub templates: Templates,
}

fn base(option: &str, message: impl Into<String>) -> OptionError {
    OptionError::new(option, message)
}

/// Huginn's `is_positive_integer?`: a whole number of 0 or more, as a number or a string.
fn positive_integer(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Huginn's `present?` for an option value.
fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(_)) => true,
    }
}

/// The type: `type`, or guessed from the URL's extension as Huginn does.
fn doc_type(options: &Value) -> Result<DocType, OptionError> {
    let given = match options.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            return Err(base(
                "type",
                format!("Unknown extraction type {other} ({})", type_name(other)),
            ));
        }
    };
    let guessed = || {
        let url = options.get("url").and_then(Value::as_str).unwrap_or("");
        let lower = url.to_ascii_lowercase();
        if lower.ends_with(".rss") || lower.ends_with(".xml") {
            "xml"
        } else if lower.ends_with(".json") {
            "json"
        } else if lower.ends_with(".txt") || lower.ends_with(".text") {
            "text"
        } else {
            "html"
        }
    };
    match given.unwrap_or_else(guessed) {
        "html" => Ok(DocType::Html),
        "xml" => Ok(DocType::Xml),
        "json" => Ok(DocType::Json),
        "text" => Ok(DocType::Text),
        other if other.contains('{') => Err(base(
            "type",
            "is a Liquid template; muninn needs the type when the agent is saved: use html, xml, json or text",
        )),
        other => Err(base("type", format!("Unknown extraction type {other:?}"))),
    }
}

/// Huginn's required options: a source (`url`, `url_from_event` or `data_from_event`)
/// and `expected_update_period_in_days`.
fn required(options: &Value) -> Result<(), OptionError> {
    let o = |k: &str| options.get(k);
    if !present(o("url")) && !present(o("url_from_event")) && !present(o("data_from_event")) {
        return Err(base(
            "url",
            "either url, url_from_event, or data_from_event are required",
        ));
    }
    match o("expected_update_period_in_days") {
        v if !present(v) => Err(base(
            "expected_update_period_in_days",
            "expected_update_period_in_days is required",
        )),
        Some(v) if positive_integer(v).is_none() => Err(base(
            "expected_update_period_in_days",
            "Invalid expected_update_period_in_days format",
        )),
        _ => Ok(()),
    }
}

/// `uniqueness_look_back`, at most `MAX_LOOK_BACK`.
fn look_back(v: Option<&Value>) -> Result<Option<usize>, OptionError> {
    match v {
        v if !present(v) => Ok(None),
        Some(v) => match positive_integer(v) {
            Some(n) if n as usize <= MAX_LOOK_BACK => Ok(Some(n as usize)),
            Some(_) => Err(base(
                "uniqueness_look_back",
                format!("must be at most {MAX_LOOK_BACK}"),
            )),
            None => Err(base(
                "uniqueness_look_back",
                "Invalid uniqueness_look_back format",
            )),
        },
        None => Ok(None),
    }
}

/// `url`: one URL or a list of them, templates; each literal one must be http(s).
fn url_option(
    templates: &mut Templates,
    options: &Value,
) -> Result<Option<TemplateTree>, OptionError> {
    let url = match options.get("url") {
        v if !present(v) => None,
        Some(v @ Value::String(_)) => Some(add(templates, "url", v)?),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            Some(add(templates, "url", &Value::Array(items.clone()))?)
        }
        Some(_) => return Err(base("url", "must be a URL or a list of URLs")),
        None => None,
    };
    for literal in literal_urls(options) {
        match url::Url::parse(literal.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(base(
                    "url",
                    format!("{literal:?} is not an http or https URL"),
                ));
            }
        }
    }
    Ok(url)
}

/// On an XML page a CSS selector is run as XPath: each must translate.
fn xml_css<'a>(extract: impl Iterator<Item = &'a Extractor>) -> Result<(), OptionError> {
    for e in extract {
        if let How::Node {
            select: Select::Css(css),
            ..
        } = &e.how
        {
            super::css_xml::to_xpath(css)
                .map_err(|why| base(&format!("extract.{}.css", e.name), why.to_string()))?;
        }
    }
    Ok(())
}

impl Options {
    pub fn parse(options: &Value) -> Result<Options, OptionError> {
        let mut templates = Templates::liquid();
        let o = |k: &str| options.get(k);
        required(options)?;
        let doc_type = doc_type(options)?;
        let mode = match opt_str(options, "mode")?.map(str::trim) {
            None | Some("") | Some("on_change") => Mode::OnChange,
            Some("all") => Mode::All,
            Some("merge") => Mode::Merge,
            Some(_) => return Err(base("mode", "mode must be set to on_change, all or merge")),
        };
        let look_back = look_back(o("uniqueness_look_back"))?;
        let url = url_option(&mut templates, options)?;
        let url_from_event = one_template(&mut templates, options, "url_from_event")?;
        let data_from_event = one_template(&mut templates, options, "data_from_event")?
            .map(|id| (id, opt_string(options, "data_from_event")));
        let (extract, extract_text) = extract_options(options, doc_type)?;
        let template = match o("template") {
            v if !present(v) => None,
            Some(v @ Value::Object(m)) if m.values().all(Value::is_string) => {
                Some(add(&mut templates, "template", v)?)
            }
            Some(_) => return Err(base("template", "template must be a hash of strings.")),
            None => None,
        };
        let success_codes = success_codes(o("http_success_codes"))?;
        let headers = super::request::headers(&mut templates, options)?;
        let basic_auth = crate::agents::basic_auth::compile(&mut templates, options)?;
        unsupported(options)?;
        let use_namespaces = opt_bool(options, "use_namespaces")?;
        if doc_type == DocType::Xml {
            xml_css(extract.iter().flatten())?;
        }
        Ok(Options {
            url,
            url_from_event,
            data_from_event,
            doc_type,
            mode,
            extract,
            extract_text,
            template,
            look_back,
            success_codes,
            headers,
            basic_auth,
            use_namespaces,
            templates,
        })
    }
}

fn add(templates: &mut Templates, label: &str, v: &Value) -> Result<TemplateTree, OptionError> {
    templates.add_tree(label, v).map_err(OptionError::template)
}

fn opt_string(options: &Value, key: &str) -> String {
    options
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A string option compiled as one Liquid template (a plain string is one too).
fn one_template(
    templates: &mut Templates,
    options: &Value,
    key: &str,
) -> Result<Option<TemplateId>, OptionError> {
    match options.get(key) {
        v if !present(v) => Ok(None),
        Some(Value::String(s)) => templates
            .add(key, s)
            .map(Some)
            .map_err(OptionError::template),
        Some(other) => Err(base(
            key,
            format!("must be a string (got {})", type_name(other)),
        )),
        None => Ok(None),
    }
}

/// The URLs in `url` that are not templates (known at save time).
pub fn literal_urls(options: &Value) -> Vec<&str> {
    let all: Vec<&str> = match options.get("url") {
        Some(Value::String(u)) => vec![u.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    all.into_iter()
        .filter(|u| !u.trim().is_empty() && !crate::template::liquid::has_markup(u))
        .collect()
}

/// Huginn's `validate_http_success_codes!`.
fn success_codes(v: Option<&Value>) -> Result<Vec<u16>, OptionError> {
    let opt = "http_success_codes";
    if !present(v) {
        return Ok(Vec::new());
    }
    let Some(Value::Array(items)) = v else {
        return Err(base(
            opt,
            "must be an array and specify at least one status code",
        ));
    };
    for (i, a) in items.iter().enumerate() {
        if items[..i].contains(a) {
            return Err(base(opt, "duplicate http code found"));
        }
    }
    items
        .iter()
        .map(|c| match c {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        })
        .map(|c| c.and_then(|c| u16::try_from(c).ok()))
        .collect::<Option<Vec<u16>>>()
        .ok_or_else(|| {
            base(
                opt,
                "please make sure to use only numeric values for code, ex 404, or \"404\"",
            )
        })
}

/// The web-request options muninn cannot honour: refused by name rather than ignored.
fn unsupported(options: &Value) -> Result<(), OptionError> {
    match options.get("proxy") {
        v if !present(v) => {}
        Some(Value::String(_)) => {
            return Err(base(
                "proxy",
                "cannot be honoured: muninn fetches directly, through its target guard, never through a proxy; remove the option",
            ));
        }
        Some(_) => return Err(base("proxy", "proxy must be a string")),
        None => {}
    }
    match options.get("disable_ssl_verification") {
        None | Some(Value::Null) => {}
        Some(v) => match opt_bool(options, "disable_ssl_verification") {
            Ok(Some(true)) => {
                return Err(base(
                    "disable_ssl_verification",
                    "cannot be honoured: muninn always verifies TLS certificates; remove the option or set it to false",
                ));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(base(
                    "disable_ssl_verification",
                    format!(
                        "if provided, disable_ssl_verification must be true or false (got {v})"
                    ),
                ));
            }
        },
    }
    if present(options.get("unzip")) {
        return Err(base(
            "unzip",
            "cannot be honoured: muninn reads fetched bodies as text, so it cannot inflate a gzip file (a gzip Content-Encoding is decoded without this option); remove the option",
        ));
    }
    match options.get("force_encoding") {
        v if !present(v) => {}
        Some(Value::String(e))
            if matches!(e.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8") => {}
        Some(Value::String(e)) => {
            return Err(base(
                "force_encoding",
                format!(
                    "{e:?} cannot be honoured: muninn reads fetched pages as UTF-8 only; remove the option or set it to UTF-8"
                ),
            ));
        }
        Some(_) => return Err(base("force_encoding", "force_encoding must be a string")),
        None => {}
    }
    if let Some(ua) = options.get("user_agent")
        && present(Some(ua))
        && !ua.is_string()
    {
        return Err(base("user_agent", "user_agent must be a string"));
    }
    Ok(())
}

/// `extract`, checked as Huginn's `validate_extract_options!`, and compiled.
fn extract_options(
    options: &Value,
    doc_type: DocType,
) -> Result<(Option<Vec<Extractor>>, String), OptionError> {
    let text = options
        .get("extract")
        .map(Value::to_string)
        .unwrap_or_default();
    let map: &Map<String, Value> = match options.get("extract") {
        None | Some(Value::Null) if doc_type == DocType::Json => return Ok((None, text)),
        None | Some(Value::Null) => {
            return Err(base(
                "extract",
                "extract is required for all types except json",
            ));
        }
        Some(Value::Object(m)) => m,
        Some(_) => return Err(base("extract", "extract must be a hash")),
    };
    if map.values().any(|v| !v.is_object()) {
        return Err(base("extract", "extract must be a hash of hashes."));
    }
    if map.len() > 100 {
        return Err(base("extract", "may have at most 100 extractions"));
    }
    let mut out = Vec::with_capacity(map.len());
    for (name, details) in map {
        out.push(super::extract::compile(name, details, doc_type)?);
    }
    Ok((Some(out), text))
}

/// Compiles a `regexp` with Ruby's meaning of `^`, `$` (always per line) and of the
/// `m` flag (dot matches newline: Rust's `s`), bounded in compiled size.
pub fn ruby_regex(source: &str) -> Result<regex::Regex, regex::Error> {
    let translated = literal_braces(&source.replace("(?m:", "(?s:").replace("(?m)", "(?s)"));
    regex::RegexBuilder::new(&translated)
        .multi_line(true)
        .size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(MAX_REGEX_BYTES)
        .build()
}

/// Ruby reads a `{` that does not start a repetition (`{2}`, `{1,3}`, `{,3}`) as a
/// literal, and a `}` that closes none; Rust's regex wants both escaped.
fn literal_braces(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len() + 8);
    let (mut i, mut in_class, mut open) = (0, false, false);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push(c);
                if let Some(n) = chars.get(i + 1) {
                    out.push(*n);
                }
                i += 2;
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '{' if !in_class => {
                let rest: String = chars[i + 1..].iter().take(24).collect();
                let quantifier = rest.split_once('}').is_some_and(|(body, _)| {
                    !body.is_empty()
                        && body.chars().all(|c| c.is_ascii_digit() || c == ',')
                        && body.matches(',').count() <= 1
                        && body != ","
                });
                if quantifier {
                    open = true;
                } else {
                    out.push('\\');
                }
            }
            '}' if !in_class => {
                if open {
                    open = false;
                } else {
                    out.push('\\');
                }
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Quick checks of one extraction's values: JSON paths parse under the bounds. Goessner
/// forms Huginn's JsonPath gem reads are rewritten first: `.[0]` is `[0]`, and the
/// script `[(@.length-1)]` is the last item, `[-1]`.
pub fn json_path(name: &str, path: &str) -> Result<BoundedPath, OptionError> {
    let path = path.replace(".[", "[").replace("[(@.length-1)]", "[-1]");
    BoundedPath::parse_huginn(&path)
        .map_err(|e| base(&format!("extract.{name}.path"), e.to_string()))
}
