//! Huginn's lax Liquid reads a few spellings the `liquid` crate's grammar refuses; real
//! scenarios use them. Before parsing, an output whose variable is written `$.a.b` or
//! `.a` (a JSONPath habit) is rewritten to the plain path `a.b` / `a`, which is exactly
//! what Ruby's lax parser makes of it. A filter written as a call, `default('')` (a
//! Jinja habit), is applied with no arguments, as the lax parser applies it (its
//! argument scanner only reads arguments after `:` or `,`). Nothing else changes, and
//! `raw` blocks are left as written.

/// Returns the source with `{{ $.path` and `{{ .path` read as `{{ path`, and filter
/// calls `| name(...)` read as `| name`.
pub fn normalize(src: &str) -> String {
    let src = &*lax_filter_calls(src);
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("{%") {
            let word = after.trim_start_matches('-').trim_start();
            if word.starts_with("raw")
                && word[3..]
                    .trim_start()
                    .trim_start_matches('-')
                    .starts_with("%}")
            {
                // Copy the raw block untouched, through its end tag.
                let end = find_endraw(rest).unwrap_or(rest.len());
                out.push_str(&rest[..end]);
                rest = &rest[end..];
                continue;
            }
            out.push_str("{%");
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix("{{") {
            out.push_str("{{");
            let trim = if after.starts_with('-') { 1 } else { 0 };
            out.push_str(&after[..trim]);
            let body = &after[trim..];
            let ws = body.len() - body.trim_start().len();
            out.push_str(&body[..ws]);
            let body = &body[ws..];
            let stripped = body
                .strip_prefix("$.")
                .or_else(|| body.strip_prefix('.'))
                .filter(|b| b.starts_with(|c: char| c.is_alphabetic() || c == '_'));
            rest = stripped.unwrap_or(body);
            continue;
        }
        out.push('{');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// Every `{{ }}` and `{% %}` markup with its filter calls' parenthesised arguments
/// skipped; text and `raw` blocks are copied as they are.
fn lax_filter_calls(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let close = if rest.starts_with("{{") {
            "}}"
        } else if let Some(after) = rest.strip_prefix("{%") {
            let word = after.trim_start_matches('-').trim_start();
            if word.starts_with("raw")
                && let Some(end) = find_endraw(rest)
            {
                out.push_str(&rest[..end]);
                rest = &rest[end..];
                continue;
            }
            "%}"
        } else {
            out.push('{');
            rest = &rest[1..];
            continue;
        };
        let end = find_close(rest, close).unwrap_or(rest.len());
        let markup = drop_call_arguments(&rest[..end]);
        if close == "}}" {
            out.push_str(&drop_output_junk(&markup));
        } else {
            out.push_str(&markup);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The first `{{` or `{%` that is never closed, as Ruby Liquid words it ("Variable
/// '{{' was not properly terminated"), with its line and column: the crate's parser
/// only says it expected a literal somewhere after it.
pub fn unclosed_markup(src: &str) -> Option<String> {
    let mut rest = src;
    let mut offset = 0;
    while let Some(at) = rest.find('{') {
        let here = &rest[at..];
        let (close, what) = if here.starts_with("{{") {
            ("}}", "Variable")
        } else if here.starts_with("{%") {
            ("%}", "Tag")
        } else {
            offset += at + 1;
            rest = &rest[at + 1..];
            continue;
        };
        let Some(end) = find_close(here, close) else {
            let before = &src[..offset + at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Some(format!(
                "{what} '{}' at line {line}, column {column} was not properly terminated with '{close}'",
                &here[..2]
            ));
        };
        offset += at + end;
        rest = &here[end..];
    }
    None
}

/// A whole-number literal in markup that does not fit Liquid's 64-bit integers: the
/// crate's parser would fail on it inside (Ruby reads it as a Bignum).
pub fn oversized_integer(src: &str) -> Option<String> {
    let mut rest = src;
    while let Some(at) = rest.find('{') {
        let here = &rest[at..];
        let close = if here.starts_with("{{") {
            "}}"
        } else if here.starts_with("{%") {
            "%}"
        } else {
            rest = &rest[at + 1..];
            continue;
        };
        let end = find_close(here, close).unwrap_or(here.len());
        if let Some(number) = oversized_in(&here[..end]) {
            return Some(format!(
                "the number {number} is too large: Liquid's whole numbers go up to {}",
                i64::MAX
            ));
        }
        rest = &here[end..];
    }
    None
}

/// The first digit run outside quotes in `markup` that is a whole number too large
/// for an i64 (a run inside a name or a decimal number is not one).
fn oversized_in(markup: &str) -> Option<&str> {
    let bytes = markup.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c.is_ascii_digit() => {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let at = |k: usize| start.checked_sub(k).map(|b| bytes[b]);
                // `a9…` is a name, `1.9…` a fraction; `(1..9…)` is a range's end.
                let in_name = at(1).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                    || (at(1) == Some(b'.') && at(2).is_some_and(|b| b.is_ascii_alphanumeric()));
                let decimal =
                    bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                let run = &markup[start..i];
                if !in_name && !decimal && run.parse::<i64>().is_err() {
                    return Some(run);
                }
                continue;
            }
            None => {}
        }
        i += 1;
    }
    None
}

/// The end (just past `close`) of the markup that starts `s`, with quoted text skipped.
fn find_close(s: &str, close: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(2) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if s[i..].starts_with(close) => return Some(i + close.len()),
            None => {}
        }
    }
    None
}

/// One markup with `| name(...)` read as `| name`.
fn drop_call_arguments(markup: &str) -> String {
    let mut out = String::with_capacity(markup.len());
    let mut quote: Option<char> = None;
    let mut chars = markup.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        out.push(c);
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '|' => {
                let after = &markup[i + 1..];
                let name_start = after.len() - after.trim_start().len();
                let name_len = after[name_start..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .unwrap_or(after.len() - name_start);
                let tail = &after[name_start + name_len..];
                let gap = tail.len() - tail.trim_start().len();
                if name_len == 0 || !tail[gap..].starts_with('(') {
                    continue;
                }
                let Some(args_len) = paren_group_len(&tail[gap..]) else {
                    continue;
                };
                out.push_str(&after[..name_start + name_len]);
                let skip_to = i + 1 + name_start + name_len + gap + args_len;
                while chars.peek().is_some_and(|&(j, _)| j < skip_to) {
                    chars.next();
                }
            }
            None => {}
        }
    }
    out
}

/// One `{{ ... }}` markup with the text between its variable and its first filter
/// dropped, as Ruby's lax parser reads it: the variable is the first fragment and
/// everything up to the first `|` is ignored, so `{{ Crypto Diagest }}` renders the
/// variable `Crypto` (blank), where the crate's grammar refuses the template. Only bare
/// words after a plain variable path are cut; operators, literals and quoted text are
/// left to the parser, which reports them.
fn drop_output_junk(markup: &str) -> String {
    let Some(inner) = markup.strip_prefix("{{") else {
        return markup.to_string();
    };
    let (inner, close) = inner.strip_suffix("}}").map_or((inner, ""), |i| (i, "}}"));
    let (open_dash, body) = inner.strip_prefix('-').map_or(("", inner), |b| ("-", b));
    let (body, close_dash) = body.strip_suffix('-').map_or((body, ""), |b| (b, "-"));
    let trimmed = body.trim_start();
    let lead = &body[..body.len() - trimmed.len()];
    let first_len = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
    let (first, rest) = trimmed.split_at(first_len);
    let is_path = first.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '?'));
    let pipe = unquoted_pipe(rest);
    let junk = &rest[..pipe.unwrap_or(rest.len())];
    // Only bare words: an operator or a literal after the variable (`{{ a ~ '!' }}`,
    // another engine's syntax) stays an error to report, not text to drop silently.
    let words = junk.split_whitespace().all(|w| {
        w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !is_path || junk.trim().is_empty() || !words {
        return markup.to_string();
    }
    let filters = pipe.map_or(String::new(), |p| format!(" {}", rest[p..].trim_end()));
    format!("{{{{{open_dash}{lead}{first}{filters} {close_dash}{close}")
}

/// The first `|` of `s` outside quotes.
fn unquoted_pipe(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '|' => return Some(i),
            None => {}
        }
    }
    None
}

/// The length of the balanced `( ... )` group that starts `s`, quotes respected.
fn paren_group_len(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '(' => depth += 1,
            None if c == ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            None => {}
        }
    }
    None
}

/// The end of the `{% endraw %}` tag after a raw block's start.
fn find_endraw(s: &str) -> Option<usize> {
    let mut from = 2;
    while let Some(at) = s.get(from..)?.find("{%") {
        let tag_start = from + at;
        let inner = &s[tag_start + 2..];
        let close = inner.find("%}")?;
        if inner[..close].trim_matches(|c: char| c == '-' || c.is_whitespace()) == "endraw" {
            return Some(tag_start + 2 + close + 2);
        }
        from = tag_start + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn jsonpath_habits_become_plain_paths() {
        assert_eq!(
            normalize("{{ $.original_event.url }}"),
            "{{ original_event.url }}"
        );
        assert_eq!(
            normalize("{{.title | remove: 'v'}}"),
            "{{title | remove: 'v'}}"
        );
        assert_eq!(normalize("{{- $.a -}}"), "{{- a -}}");
        assert_eq!(normalize("a { b } {{ x }}"), "a { b } {{ x }}");
        assert_eq!(
            normalize("{% raw %}{{ $.a }}{% endraw %}{{ $.a }}"),
            "{% raw %}{{ $.a }}{% endraw %}{{ a }}"
        );
        assert_eq!(normalize("{{ 1.5 }}{{ '.x' }}"), "{{ 1.5 }}{{ '.x' }}");
    }

    #[test]
    fn whole_numbers_too_large_for_liquid_are_found_before_the_parser() {
        use super::oversized_integer;
        assert!(
            oversized_integer("{{ 99999999999999999999 }}")
                .is_some_and(|e| e.starts_with("the number 99999999999999999999 is too large"))
        );
        assert!(
            oversized_integer("{% for i in (1..99999999999999999999) %}{% endfor %}").is_some()
        );
        assert_eq!(
            oversized_integer("{{ 9223372036854775807 | plus: 1.5 }}"),
            None
        );
        assert_eq!(oversized_integer("{{ 99999999999999999999.5 }}"), None);
        assert_eq!(
            oversized_integer("{{ '99999999999999999999' }} 99999999999999999999"),
            None
        );
        assert_eq!(oversized_integer("{{ a99999999999999999999 }}"), None);
    }

    #[test]
    fn unclosed_markup_is_named_with_its_place() {
        use super::unclosed_markup;
        assert_eq!(
            unclosed_markup("Now {{price").as_deref(),
            Some("Variable '{{' at line 1, column 5 was not properly terminated with '}}'")
        );
        assert_eq!(
            unclosed_markup("a\n{% if x }}").as_deref(),
            Some("Tag '{%' at line 2, column 1 was not properly terminated with '%}'")
        );
        assert_eq!(unclosed_markup("{{ a }} { b {% if '%}' %}"), None);
    }

    #[test]
    fn text_between_a_variable_and_its_filters_is_ignored_as_ruby_lax_liquid_does() {
        assert_eq!(normalize("{{ Crypto Diagest }}"), "{{ Crypto }}");
        assert_eq!(
            normalize("a {{- x y | upcase -}} b"),
            "a {{- x | upcase -}} b"
        );
        assert_eq!(normalize("{{ a b c | size }}"), "{{ a | size }}");
        // Already valid, or not a plain variable: left to the parser.
        for same in [
            "{{ title | upcase }}",
            "{{ a.b[0] }}",
            "{{ 'two words' }}",
            "{{ x | default: 'a b' }}",
            "{{ 1 2 }}",
            "{{ a ~ '!' }}",
            "{{ a 'b|c' | size }}",
            "{{ a == b }}",
            "{% if a b %}{% endif %}",
        ] {
            assert_eq!(normalize(same), same);
        }
    }

    #[test]
    fn filter_calls_are_applied_without_arguments_as_ruby_lax_liquid_does() {
        assert_eq!(
            normalize("{{ message | default('') }}"),
            "{{ message | default }}"
        );
        assert_eq!(
            normalize("{{ tags | default([]) | as_object }}"),
            "{{ tags | default | as_object }}"
        );
        assert_eq!(
            normalize("{% if a | size(1) > 0 %}x{% endif %}"),
            "{% if a | size > 0 %}x{% endif %}"
        );
        // Quoted text, raw blocks and plain arguments are left alone.
        assert_eq!(
            normalize("{{ 'a | b(c)' | append: '(x)' }} | f(y)"),
            "{{ 'a | b(c)' | append: '(x)' }} | f(y)"
        );
        assert_eq!(
            normalize("{% raw %}{{ a | f(b) }}{% endraw %}"),
            "{% raw %}{{ a | f(b) }}{% endraw %}"
        );
        assert_eq!(normalize("{{ a | f(unclosed }}"), "{{ a | f(unclosed }}");
        assert_eq!(normalize("{{ a | é(1) }}"), "{{ a | é }}");
    }
}
