//! Restores Liquid from the tera that earlier versions stored in agent options: agents
//! then rendered tera, and the scenario importer converted Huginn's Liquid to tera
//! (`{{ x | default(value="") | upper }}`, `{% elif %}`, `a ~ 'b'`, `now()` ...). This
//! is the exact inverse of that converter's forms; anything else is left to the caller
//! to report (see `hub::upgrade`). Used once, at the first start of this version.

use serde_json::Value;

use super::limits::Limits;
use super::liquid;

/// Filters only tera has: a template using one is tera even if Liquid could parse it.
const TERA_ONLY: &[&str] = &[
    "upper",
    "lower",
    "trim",
    "trim_start",
    "trim_end",
    "json_encode",
    "length",
    "unique",
    "urlencode",
    "striptags",
    "linebreaksbr",
];

/// What became of one option string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// Already Liquid (or plain text): kept.
    Keep,
    /// Rewritten to this Liquid.
    Rewritten(String),
    /// tera that has no exact Liquid form; the reason.
    Unrestorable(String),
}

/// Decides what to do with one option string.
pub fn upgrade(src: &str) -> Upgrade {
    if !liquid::has_markup(src) && !src.contains("{#") {
        return Upgrade::Keep;
    }
    let limits = Limits::DEFAULT;
    let parses = liquid::compile(src, &limits).is_ok();
    if parses && !looks_like_tera(src) {
        return Upgrade::Keep;
    }
    match rewrite(src) {
        Ok(out) if out == src => Upgrade::Keep,
        Ok(out) => match liquid::compile(&out, &limits) {
            Ok(_) => Upgrade::Rewritten(out),
            Err(e) if parses => {
                tracing::debug!(error = %e, "a tera-looking template also parses as Liquid; kept");
                Upgrade::Keep
            }
            Err(e) => Upgrade::Unrestorable(format!(
                "restored to {out:?}, which is not valid Liquid: {e}"
            )),
        },
        Err(_) if parses => Upgrade::Keep,
        Err(why) => Upgrade::Unrestorable(why.to_string()),
    }
}

/// Restores every tera template string inside `v` to Liquid; `path` names where, and
/// each string that cannot be restored is kept as it is and reported as (path, why).
pub fn upgrade_tree(v: &Value, path: &str, problems: &mut Vec<(String, String)>) -> Value {
    match v {
        Value::String(s) => match upgrade(s) {
            Upgrade::Keep => v.clone(),
            Upgrade::Rewritten(t) => Value::String(t),
            Upgrade::Unrestorable(why) => {
                problems.push((path.to_string(), format!("{why} (kept as written: {s:?})")));
                v.clone()
            }
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| upgrade_tree(x, &format!("{path}[{i}]"), problems))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    (k.clone(), upgrade_tree(x, &p, problems))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `src` uses a form that only tera has.
fn looks_like_tera(src: &str) -> bool {
    src.contains("{% elif")
        || src.contains("{%- elif")
        || src.contains("{% set ")
        || src.contains("now()")
        || src.contains("{#")
        || split_outside_quotes(src, '|').iter().skip(1).any(|f| {
            let name: String = f
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after = f.trim_start()[name.len()..].trim_start();
            TERA_ONLY.contains(&name.as_str()) || after.starts_with('(')
        })
}

/// Splits on `sep` outside of quotes and parentheses.
fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '(' => depth += 1,
            None if c == ')' => depth = depth.saturating_sub(1),
            None if c == sep && depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            None => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

fn is_literal(e: &str) -> bool {
    let e = e.trim();
    e.starts_with('\'') || e.starts_with('"') || e.parse::<f64>().is_ok()
}

/// Why a tera form cannot be restored to Liquid; the message quotes the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    #[error("the filter {0:?} is not closed")]
    FilterNotClosed(String),
    #[error("the tera filter {0:?} lacks an argument")]
    MissingArgument(String),
    #[error("the tera filter {0:?} has no Liquid equivalent")]
    NoLiquidFilter(String),
    #[error("the tera expression {0:?} has no Liquid equivalent")]
    NoLiquidExpression(String),
    #[error("the tera condition {0:?} has no Liquid equivalent")]
    NoLiquidCondition(String),
    #[error("the tera tag {{% {0} %}} is not an assignment")]
    NotAnAssignment(String),
    #[error("the tera tag {{% {0} %}} has no Liquid equivalent")]
    NoLiquidTag(String),
    #[error("an unclosed {0}")]
    Unclosed(String),
}

/// `name(k=v, ...)` -> (name, [v, ...]); a bare name has no arguments.
fn call(f: &str) -> Result<(String, Vec<String>), UpgradeError> {
    let f = f.trim();
    let Some((name, rest)) = f.split_once('(') else {
        return Ok((f.to_string(), Vec::new()));
    };
    let inner = rest
        .strip_suffix(')')
        .ok_or_else(|| UpgradeError::FilterNotClosed(f.to_string()))?;
    let mut args = Vec::new();
    for a in split_outside_quotes(inner, ',') {
        if a.trim().is_empty() {
            continue;
        }
        let v = match a.split_once('=') {
            Some((k, v)) if !k.contains(['\'', '"']) => v.trim().to_string(),
            _ => a.trim().to_string(),
        };
        args.push(v);
    }
    Ok((name.trim().to_string(), args))
}

/// One tera filter as Liquid, or why it has none.
fn filter(f: &str, first: bool) -> Result<Option<String>, UpgradeError> {
    let (name, args) = call(f)?;
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or_else(|| UpgradeError::MissingArgument(name.clone()))
    };
    Ok(Some(match name.as_str() {
        // Liquid renders a missing value as "": the importer's guard is not needed.
        "default" if first && matches!(arg(0)?.as_str(), "\"\"" | "''") => return Ok(None),
        "default" => format!("default: {}", arg(0)?),
        "lower" => "downcase".into(),
        "upper" => "upcase".into(),
        "trim" => "strip".into(),
        "trim_start" => "lstrip".into(),
        "trim_end" => "rstrip".into(),
        "json_encode" => "json".into(),
        "length" => "size".into(),
        "unique" => "uniq".into(),
        "urlencode" => "url_encode".into(),
        "striptags" => "strip_html".into(),
        "linebreaksbr" => "newline_to_br".into(),
        "capitalize" | "first" | "last" | "reverse" | "sort" | "escape" => name.clone(),
        "join" => format!("join: {}", arg(0)?),
        "split" => format!("split: {}", arg(0)?),
        "replace" if matches!(arg(1)?.as_str(), "\"\"" | "''") => format!("remove: {}", arg(0)?),
        "replace" => format!("replace: {}, {}", arg(0)?, arg(1)?),
        "truncate" => format!("truncate: {}", arg(0)?),
        "date" => format!("date: {}", arg(0)?),
        other => return Err(UpgradeError::NoLiquidFilter(other.to_string())),
    }))
}

/// One `{{ ... }}` body.
fn output(body: &str) -> Result<String, UpgradeError> {
    let parts = split_outside_quotes(body, '|');
    let entry = parts.first().map(|s| s.trim()).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    let operands = split_outside_quotes(entry, '~');
    let head = operands.first().map(|s| s.trim()).unwrap_or_default();
    if head.contains('(') && head != "now()" {
        return Err(UpgradeError::NoLiquidExpression(head.to_string()));
    }
    out.push(if head == "now()" {
        "'now'".into()
    } else {
        head.to_string()
    });
    for o in operands.iter().skip(1) {
        out.push(format!("append: {}", o.trim()));
    }
    for (i, f) in parts.iter().skip(1).enumerate() {
        if let Some(l) = filter(f, i == 0 && !is_literal(head))? {
            out.push(l);
        }
    }
    Ok(format!("{{{{ {} }}}}", out.join(" | ")))
}

/// A tera condition as Liquid (`'y' in x` -> `x contains 'y'`).
fn condition(cond: &str) -> Result<String, UpgradeError> {
    let words = split_outside_quotes(cond.trim(), ' ');
    let words: Vec<&str> = words
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match words[i] {
            "in" if !out.is_empty() && i + 1 < words.len() => {
                let needle = out.pop().unwrap_or_default();
                out.push(format!("{} contains {needle}", words[i + 1]));
                i += 2;
                continue;
            }
            "not" | "is" | "~" => {
                return Err(UpgradeError::NoLiquidCondition(cond.to_string()));
            }
            w if w.contains('(') || w.contains('|') => {
                return Err(UpgradeError::NoLiquidCondition(cond.to_string()));
            }
            w => out.push(w.to_string()),
        }
        i += 1;
    }
    Ok(out.join(" "))
}

/// One `{% ... %}` body; `blocks` tracks open if/unless so `endif` closes the right one.
fn tag(body: &str, blocks: &mut Vec<&'static str>) -> Result<String, UpgradeError> {
    let b = body.trim();
    let (name, rest) = b.split_once(char::is_whitespace).unwrap_or((b, ""));
    let rest = rest.trim();
    Ok(match name {
        "if" => match rest.strip_prefix("not (").and_then(|r| r.strip_suffix(')')) {
            Some(inner) => {
                blocks.push("unless");
                format!("{{% unless {} %}}", condition(inner)?)
            }
            None => {
                blocks.push("if");
                format!("{{% if {} %}}", condition(rest)?)
            }
        },
        "elif" => format!("{{% elsif {} %}}", condition(rest)?),
        "else" => "{% else %}".into(),
        "endif" => match blocks.pop() {
            Some("unless") => "{% endunless %}".into(),
            _ => "{% endif %}".into(),
        },
        "for" | "endfor" | "raw" | "endraw" => format!("{{% {b} %}}"),
        "set" => {
            let (var, expr) = rest
                .split_once('=')
                .ok_or_else(|| UpgradeError::NotAnAssignment(b.to_string()))?;
            let value = output(expr)?;
            let value = value.trim_start_matches("{{ ").trim_end_matches(" }}");
            format!("{{% assign {} = {value} %}}", var.trim())
        }
        other => return Err(UpgradeError::NoLiquidTag(other.to_string())),
    })
}

/// Rewrites the tera forms of `src` to Liquid.
pub fn rewrite(src: &str) -> Result<String, UpgradeError> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let mut blocks = Vec::new();
    loop {
        let Some(start) = ["{{", "{%", "{#"].iter().filter_map(|m| rest.find(m)).min() else {
            out.push_str(rest);
            return Ok(out);
        };
        out.push_str(&rest[..start]);
        let open = &rest[start..start + 2];
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let body_start = start + 2;
        let len = rest[body_start..]
            .find(close)
            .ok_or_else(|| UpgradeError::Unclosed(open.to_string()))?;
        let body = &rest[body_start..body_start + len];
        let (trim_l, trim_r) = (body.starts_with('-'), body.ends_with('-'));
        let inner = body.trim_start_matches('-').trim_end_matches('-');
        let mut piece = match open {
            "{{" => output(inner)?,
            "{%" => tag(inner, &mut blocks)?,
            _ => format!("{{% comment %}}{}{{% endcomment %}}", inner),
        };
        if trim_l {
            piece.insert(2, '-');
        }
        if trim_r {
            let at = piece.len() - 2;
            piece.insert(at, '-');
        }
        out.push_str(&piece);
        rest = &rest[body_start + len + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        match upgrade(s) {
            Upgrade::Rewritten(t) => t,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn the_importers_forms_come_back_as_liquid() {
        assert_eq!(r("Hi {{ name | default(value=\"\") }}!"), "Hi {{ name }}!");
        assert_eq!(
            r("{{ title | default(value=\"\") | lower | trim }}"),
            "{{ title | downcase | strip }}"
        );
        assert_eq!(
            r("{{ name | default(value='anon') }}"),
            "{{ name | default: 'anon' }}"
        );
        assert_eq!(
            r("{{ now() | date(format='%Y') }}"),
            "{{ 'now' | date: '%Y' }}"
        );
        assert_eq!(r("{{ tags | join(sep=', ') }}"), "{{ tags | join: ', ' }}");
        assert_eq!(r("{{ a ~ '!' }}"), "{{ a | append: '!' }}");
        assert_eq!(
            r("{{ a | replace(from='x', to='') }}"),
            "{{ a | remove: 'x' }}"
        );
        assert_eq!(
            r("{% if level == 'high' %}A{% elif 'y' in x %}B{% else %}C{% endif %}"),
            "{% if level == 'high' %}A{% elsif x contains 'y' %}B{% else %}C{% endif %}"
        );
        assert_eq!(
            r("{% if not (ok) %}bad{% endif %}"),
            "{% unless ok %}bad{% endunless %}"
        );
        assert_eq!(r("{{ x | upper }}"), "{{ x | upcase }}");
    }

    #[test]
    fn json_encode_becomes_json() {
        assert_eq!(
            r("{{ data | default(value=\"\") | json_encode() }}"),
            "{{ data | json }}"
        );
    }

    #[test]
    fn liquid_and_plain_text_are_kept() {
        for s in [
            "plain",
            "{{ x }}",
            "{{ x | upcase }}",
            "{% if a %}b{% elsif c %}d{% endif %}",
            "{{ x | default: 'y' }}",
        ] {
            assert_eq!(upgrade(s), Upgrade::Keep, "{s}");
        }
    }

    #[test]
    fn what_has_no_liquid_form_is_reported() {
        for s in [
            "{{ x | wordcount }}",
            "{% if x is defined %}y{% endif %}",
            "{{ range(end=3) }}",
            "{% macro m() %}{% endmacro %}",
        ] {
            assert!(matches!(upgrade(s), Upgrade::Unrestorable(_)), "{s}");
        }
    }
}
