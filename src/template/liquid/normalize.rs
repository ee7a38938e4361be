//! Huginn's lax Liquid reads a few spellings the `liquid` crate's grammar refuses; real
//! scenarios use them. Before parsing, an output whose variable is written `$.a.b` or
//! `.a` (a JSONPath habit) is rewritten to the plain path `a.b` / `a`, which is exactly
//! what Ruby's lax parser makes of it. Nothing else changes, and `raw` blocks are left
//! as written.

/// Returns the source with `{{ $.path` and `{{ .path` read as `{{ path`.
pub fn normalize(src: &str) -> String {
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
}
