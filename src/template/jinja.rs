//! Jinja2 spellings that tera does not parse, rewritten into tera's before a template is
//! compiled. Users of webhook platforms write Jinja2 (the AGiXT document prints
//! `{{ priority | default('medium') }}` and `{% if labels contains 'urgent' %}`); tera
//! names every filter argument and has `in` where they write `contains`. Each rewrite
//! only touches a form tera would refuse to parse, so a template tera already takes is
//! left exactly as written.

use std::borrow::Cow;

/// Tera's argument names, in Jinja2's positional order, for the filters whose Jinja2
/// spelling passes them by position.
const POSITIONAL: &[(&str, &[&str])] = &[
    ("default", &["value"]),
    ("join", &["sep"]),
    ("replace", &["from", "to"]),
    ("truncate", &["length"]),
    ("split", &["pat"]),
    ("date", &["format"]),
    ("round", &["precision"]),
];

/// The template with Jinja2's positional filter arguments named and `a contains b`
/// conditions written `b in a`; borrowed when nothing needed rewriting.
pub fn normalize(src: &str) -> Cow<'_, str> {
    if !src.contains('(') && !src.contains("contains") {
        return Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + 16);
    let mut rest = src;
    let mut changed = false;
    while let Some(open) = find_tag(rest) {
        let (before, tag) = rest.split_at(open);
        out.push_str(before);
        let close = if tag.starts_with("{{") { "}}" } else { "%}" };
        let Some(end) = find_outside_quotes(&tag[2..], close).map(|e| e + 2) else {
            out.push_str(tag);
            rest = "";
            break;
        };
        let body = &tag[2..end];
        let mut fixed = name_positional_args(body);
        if close == "%}" {
            fixed = contains_to_in(&fixed);
        }
        changed |= fixed != body;
        out.push_str(&tag[..2]);
        out.push_str(&fixed);
        out.push_str(close);
        rest = &tag[end + 2..];
        if body
            .trim_start()
            .trim_start_matches('-')
            .trim_start()
            .starts_with("raw")
        {
            // A raw block's text is not template syntax.
            let stop = rest.find("endraw").unwrap_or(rest.len());
            out.push_str(&rest[..stop]);
            rest = &rest[stop..];
        }
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(src)
    }
}

/// The start of the next `{{` or `{%` tag, skipping `{# #}` comments.
fn find_tag(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find('{').map(|i| i + from) {
        match s.as_bytes().get(i + 1) {
            Some(b'{') | Some(b'%') => return Some(i),
            Some(b'#') => from = s[i..].find("#}").map_or(s.len(), |e| i + e + 2),
            _ => from = i + 1,
        }
        if from >= s.len() {
            return None;
        }
    }
    None
}

/// The first `needle` in `s` that is not inside a quoted string.
fn find_outside_quotes(s: &str, needle: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' || c == '`' => quote = Some(c),
            None if s[i..].starts_with(needle) => return Some(i),
            None => {}
        }
    }
    None
}

/// Splits `s` on top-level commas (outside quotes, brackets and parentheses).
fn split_args(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Whether an argument is already named (`value=...`): a top-level `=` that is not part
/// of `==`, `!=`, `<=` or `>=`.
fn is_named(arg: &str) -> bool {
    let b = arg.as_bytes();
    find_outside_quotes(arg, "=").is_some_and(|i| {
        let prev = i.checked_sub(1).map(|p| b[p]);
        !matches!(prev, Some(b'=' | b'!' | b'<' | b'>')) && b.get(i + 1) != Some(&b'=')
    })
}

/// The index of the `)` closing the `(` just before `s`, outside quotes.
fn closing_paren(s: &str) -> Option<usize> {
    let (mut depth, mut quote) = (0i32, None::<char>);
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '(' => depth += 1,
                ')' if depth == 0 => return Some(i),
                ')' => depth -= 1,
                _ => {}
            },
        }
    }
    None
}

/// Names the positional arguments of the known filters in one tag's body.
fn name_positional_args(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 8);
    let mut rest = body;
    while let Some(bar) = find_outside_quotes(rest, "|") {
        out.push_str(&rest[..=bar]);
        rest = &rest[bar + 1..];
        let trimmed = rest.trim_start();
        let name_len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        let (name, after) = trimmed.split_at(name_len);
        let Some(names) = POSITIONAL.iter().find(|(n, _)| *n == name).map(|(_, a)| *a) else {
            continue;
        };
        let Some(args_src) = after.strip_prefix('(') else {
            continue;
        };
        let Some(close) = closing_paren(args_src) else {
            continue;
        };
        let args = split_args(&args_src[..close]);
        let positional = args.iter().filter(|a| !is_named(a)).count();
        if args_src[..close].trim().is_empty() || positional == 0 || args.len() > names.len() {
            continue;
        }
        let named: Vec<String> = args
            .iter()
            .zip(names)
            .map(|(a, n)| {
                if is_named(a) {
                    a.trim().to_string()
                } else {
                    format!("{n}={}", a.trim())
                }
            })
            .collect();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        out.push_str(name);
        out.push('(');
        out.push_str(&named.join(", "));
        out.push(')');
        rest = &args_src[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Rewrites `a contains b` (Liquid's and many Jinja2 users' spelling) into tera's
/// `b in a`, where `a` is a variable path and `b` a literal or a variable path.
fn contains_to_in(body: &str) -> String {
    let mut out = body.to_string();
    // Bounded: each pass removes one ` contains ` outside quotes.
    for _ in 0..16 {
        let Some(at) = find_outside_quotes(&out, " contains ") else {
            break;
        };
        let (lhs_all, rhs_all) = (&out[..at], &out[at + " contains ".len()..]);
        let lhs_start = lhs_all
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let lhs = &lhs_all[lhs_start..];
        let rhs_trim = rhs_all.trim_start();
        let rhs_len = match rhs_trim.chars().next() {
            Some(q @ ('\'' | '"')) => rhs_trim[1..].find(q).map(|e| e + 2),
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => Some(
                rhs_trim
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(rhs_trim.len()),
            ),
            _ => None,
        };
        let (Some(rhs_len), false) = (rhs_len, lhs.is_empty()) else {
            break;
        };
        let rhs = &rhs_trim[..rhs_len];
        let tail = &rhs_trim[rhs_len..];
        out = format!("{}{rhs} in {lhs}{tail}", &lhs_all[..lhs_start]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn positional_filter_arguments_are_named() {
        assert_eq!(
            normalize("{{ priority | default('medium') }}"),
            "{{ priority | default(value='medium') }}"
        );
        assert_eq!(
            normalize("{{ a.b | default(\"x, y\") | upper }} and {{ l | join(', ') }}"),
            "{{ a.b | default(value=\"x, y\") | upper }} and {{ l | join(sep=', ') }}"
        );
        assert_eq!(
            normalize("{{ s | replace('a', 'b') }}"),
            "{{ s | replace(from='a', to='b') }}"
        );
    }

    #[test]
    fn templates_tera_already_takes_are_left_alone() {
        for t in [
            "{{ x | default(value='y') }}",
            "{{ x | truncate(length=3) }}",
            "{{ \"| default('no')\" }}",
            "{# {{ x | default('c') }} #}plain",
            "{% raw %}{{ x | default('r') }}{% endraw %}",
            "{{ f(a=1) }} {{ x | round }}",
            "{% if a == 'contains x' %}{% endif %}",
        ] {
            assert_eq!(normalize(t), t, "{t}");
        }
    }

    #[test]
    fn contains_becomes_in() {
        assert_eq!(
            normalize(
                "{% if object_type == 'issue' and labels contains 'urgent' %}high{% endif %}"
            ),
            "{% if object_type == 'issue' and 'urgent' in labels %}high{% endif %}"
        );
        assert_eq!(
            normalize("{% if data.tags contains tag %}y{% endif %}"),
            "{% if tag in data.tags %}y{% endif %}"
        );
    }

    #[test]
    fn unbalanced_input_does_not_panic() {
        for t in [
            "{{ x | default(",
            "{% if a contains %}",
            "{{ | default('a'",
            "{{",
            "{%",
            "{% if é contains 'x' %}",
            "{% if x contains é %}",
        ] {
            let _ = normalize(t);
        }
    }
}
