//! Converting Huginn's Liquid templates to tera, for scenario imports. The common forms
//! convert (`{{ x }}`, filters such as `default: 'y'`, `downcase`, `upcase`, `strip`,
//! `json`, `to_json`, `date`, `size`, `join`, `split`, `replace`, `truncate`, `append`,
//! `{% if %}`/`elsif`/`unless`, `{% for %}`, `{% assign %}`); anything else is reported,
//! never converted wrongly. Liquid renders a missing variable as "", tera fails: every
//! converted variable gets `default(value="")` so imported agents behave as before.

/// What could not be converted in one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconvertible(pub String);

/// Splits on `sep` outside of quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c == sep => parts.push(std::mem::take(&mut cur)),
            None => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn is_literal(expr: &str) -> bool {
    let e = expr.trim();
    e.starts_with('\'')
        || e.starts_with('"')
        || e.parse::<f64>().is_ok()
        || e == "true"
        || e == "false"
        || e == "nil"
}

/// Liquid values: `nil` is tera's `none`-ish; a quoted string stays quoted.
fn value(v: &str) -> String {
    match v.trim() {
        "nil" | "null" => "\"\"".to_string(),
        other => other.to_string(),
    }
}

/// Converts one `{{ ... }}` expression body.
fn convert_output(body: &str) -> Result<String, Unconvertible> {
    let parts = split_outside_quotes(body, '|');
    let mut expr = value(&parts[0]);
    let literal = is_literal(&expr);
    let mut filters: Vec<String> = Vec::new();
    let mut has_default = false;
    for raw in parts.iter().skip(1) {
        let (name, args) = match raw.split_once(':') {
            Some((n, a)) => (
                n.trim(),
                split_outside_quotes(a, ',')
                    .into_iter()
                    .map(|x| value(&x))
                    .collect::<Vec<_>>(),
            ),
            None => (raw.trim(), Vec::new()),
        };
        let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| "\"\"".into());
        let f = match name {
            "default" => {
                has_default = true;
                format!("default(value={})", arg(0))
            }
            "downcase" => "lower".into(),
            "upcase" => "upper".into(),
            "strip" => "trim".into(),
            "lstrip" => "trim_start".into(),
            "rstrip" => "trim_end".into(),
            "capitalize" => "capitalize".into(),
            "json" | "to_json" => "json_encode()".into(),
            "size" => "length".into(),
            "first" => "first".into(),
            "last" => "last".into(),
            "reverse" => "reverse".into(),
            "sort" => "sort".into(),
            "uniq" => "unique".into(),
            "escape" => "escape".into(),
            "url_encode" | "uri_escape" => "urlencode".into(),
            "strip_html" => "striptags".into(),
            "newline_to_br" => "linebreaksbr".into(),
            "join" => format!("join(sep={})", arg(0)),
            "split" => format!("split(pat={})", arg(0)),
            "replace" => format!("replace(from={}, to={})", arg(0), arg(1)),
            "remove" => format!("replace(from={}, to=\"\")", arg(0)),
            "truncate" => format!("truncate(length={})", arg(0)),
            "date" => {
                if expr.trim() == "'now'" || expr.trim() == "\"now\"" {
                    expr = "now()".into();
                }
                format!("date(format={})", arg(0))
            }
            "append" => {
                expr = format!("{expr} ~ {}", arg(0));
                continue;
            }
            "prepend" => {
                expr = format!("{} ~ {expr}", arg(0));
                continue;
            }
            other => {
                return Err(Unconvertible(format!(
                    "the Liquid filter {other:?} has no tera equivalent"
                )));
            }
        };
        filters.push(f);
    }
    let needs_default = !literal && !has_default && expr != "now()" && !expr.contains('~');
    let mut out = expr.trim().to_string();
    if needs_default {
        out = format!("{out} | default(value=\"\")");
    }
    for f in filters {
        out = format!("{out} | {f}");
    }
    Ok(format!("{{{{ {out} }}}}"))
}

/// Converts a Liquid condition (`a == 'x' and b contains 'y'`).
fn convert_condition(cond: &str) -> String {
    let words = split_outside_quotes(cond.trim(), ' ');
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if w == "contains" && !out.is_empty() && i + 1 < words.len() {
            let left = out.pop().unwrap_or_default();
            out.push(format!("{} in {left}", words[i + 1]));
            i += 2;
            continue;
        }
        out.push(match w {
            "nil" | "null" | "blank" | "empty" => "\"\"".to_string(),
            other => other.to_string(),
        });
        i += 1;
    }
    out.join(" ")
}

fn convert_tag(body: &str) -> Result<String, Unconvertible> {
    let b = body.trim();
    let (tag, rest) = b.split_once(char::is_whitespace).unwrap_or((b, ""));
    Ok(match tag {
        "if" => format!("{{% if {} %}}", convert_condition(rest)),
        "elsif" => format!("{{% elif {} %}}", convert_condition(rest)),
        "unless" => format!("{{% if not ({}) %}}", convert_condition(rest)),
        "else" => "{% else %}".into(),
        "endif" | "endunless" => "{% endif %}".into(),
        "for" => format!("{{% for {rest} %}}"),
        "endfor" => "{% endfor %}".into(),
        "assign" => format!("{{% set {rest} %}}"),
        "raw" => "{% raw %}".into(),
        "endraw" => "{% endraw %}".into(),
        "line_break" => "\n".into(),
        other => {
            return Err(Unconvertible(format!(
                "the Liquid tag {{% {other} %}} has no tera equivalent"
            )));
        }
    })
}

/// Converts a Liquid template; plain text passes through unchanged.
pub fn convert(src: &str) -> Result<String, Unconvertible> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    loop {
        let next_out = rest.find("{{");
        let next_tag = rest.find("{%");
        let (start, is_tag) = match (next_out, next_tag) {
            (None, None) => {
                out.push_str(rest);
                return Ok(out);
            }
            (Some(a), Some(b)) if b < a => (b, true),
            (Some(a), _) => (a, false),
            (None, Some(b)) => (b, true),
        };
        out.push_str(&rest[..start]);
        let close = if is_tag { "%}" } else { "}}" };
        let body_start = start + 2;
        let Some(len) = rest[body_start..].find(close) else {
            return Err(Unconvertible("an unclosed {{ or {% ".into()));
        };
        let body = rest[body_start..body_start + len].trim_matches('-');
        out.push_str(&if is_tag {
            convert_tag(body)?
        } else {
            convert_output(body)?
        });
        rest = &rest[body_start + len + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        convert(s).unwrap()
    }

    #[test]
    fn outputs_and_filters() {
        assert_eq!(c("Hi {{ name }}!"), "Hi {{ name | default(value=\"\") }}!");
        assert_eq!(
            c("{{ name | default: 'anon' }}"),
            "{{ name | default(value='anon') }}"
        );
        assert_eq!(
            c("{{title|downcase|strip}}"),
            "{{ title | default(value=\"\") | lower | trim }}"
        );
        assert_eq!(
            c("{{ data | json }}"),
            "{{ data | default(value=\"\") | json_encode() }}"
        );
        assert_eq!(
            c("{{ 'now' | date: '%Y' }}"),
            "{{ now() | date(format='%Y') }}"
        );
        assert_eq!(
            c("{{ tags | join: ', ' }}"),
            "{{ tags | default(value=\"\") | join(sep=', ') }}"
        );
        assert_eq!(c("{{ a | append: '!' }}"), "{{ a ~ '!' }}");
        assert_eq!(c("no templates"), "no templates");
    }

    #[test]
    fn tags() {
        assert_eq!(
            c("{% if level == 'high' %}A{% elsif x contains 'y' %}B{% else %}C{% endif %}"),
            "{% if level == 'high' %}A{% elif 'y' in x %}B{% else %}C{% endif %}"
        );
        assert_eq!(
            c("{% unless ok %}bad{% endunless %}"),
            "{% if not (ok) %}bad{% endif %}"
        );
        assert_eq!(
            c("{% for i in items %}{{ i.n }}{% endfor %}"),
            "{% for i in items %}{{ i.n | default(value=\"\") }}{% endfor %}"
        );
    }

    #[test]
    fn the_rest_is_reported() {
        assert!(
            convert("{{ x | regex_replace: 'a', 'b' }}")
                .unwrap_err()
                .0
                .contains("regex_replace")
        );
        assert!(
            convert("{% credential key %}")
                .unwrap_err()
                .0
                .contains("credential")
        );
        assert!(convert("{{ oops").is_err());
    }

    #[test]
    fn converted_templates_compile_in_tera() {
        for src in [
            "{{ a | default: 'x' | upcase }}",
            "{% if a == 'b' %}{{ c | size }}{% endif %}",
            "{{ 'now' | date: '%H:%M' }}",
        ] {
            let mut t = tera::Tera::default();
            t.add_raw_template("t", &c(src)).unwrap();
        }
    }
}
