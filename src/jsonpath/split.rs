//! Splits a JSONPath that serde_json_path already accepted into its segments and each
//! segment into its selectors, and reads what a filter selector would cost. The
//! evaluator needs the pieces because the crate evaluates a whole query at once, with
//! no bound; evaluated one selector at a time, every step can be counted and stopped.

use super::PathError;

/// One segment's text: `descendant` for `..`, and each selector as a one-selector
/// JSONPath (`$.name`, `$.*`, `$[0:2]`, `$[?@.a]`) the crate can parse on its own.
#[derive(Debug)]
pub(super) struct RawSegment {
    pub descendant: bool,
    pub selectors: Vec<String>,
}

/// What one test of a filter selector may cost, read from the filter's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FilterShape {
    /// `match(...)` and `search(...)` calls: each compiles its regex at every test.
    pub regex_calls: usize,
    /// Wildcards and slices in the filter's own queries: each may walk the tested
    /// value's subtree.
    pub fan_out: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || !c.is_ascii()
}

/// The chars of `text` with the inside of string literals replaced by spaces, so that
/// `$`, `..`, `,` and brackets can be found without reading quoted names.
pub(super) fn skeleton(text: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for &c in text {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                    out.push(' ');
                } else if c == '\\' {
                    escaped = true;
                    out.push(' ');
                } else if c == q {
                    quote = None;
                    out.push(c);
                } else {
                    out.push(' ');
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Splits `path` (which starts with `$` and parsed) into segments.
pub(super) fn segments(path: &str) -> Result<Vec<RawSegment>, PathError> {
    let chars: Vec<char> = path.trim().chars().collect();
    let skel = skeleton(&chars);
    if skel.first() != Some(&'$') {
        return Err(PathError::Syntax("a JSONPath starts with $".into()));
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < skel.len() {
        if skel[i].is_whitespace() {
            i += 1;
            continue;
        }
        let descendant = skel[i] == '.' && skel.get(i + 1) == Some(&'.');
        if descendant {
            i += 2;
        } else if skel[i] == '.' {
            i += 1;
        } else if skel[i] != '[' {
            return Err(PathError::Syntax(format!(
                "unexpected {:?} at character {i}",
                skel[i]
            )));
        }
        let selectors = match skel.get(i) {
            Some('[') => {
                let (sels, end) = bracket(&chars, &skel, i)?;
                i = end;
                sels
            }
            Some('*') => {
                i += 1;
                vec!["$.*".to_string()]
            }
            _ => {
                let start = i;
                while i < skel.len() && is_name_char(skel[i]) {
                    i += 1;
                }
                if start == i {
                    return Err(PathError::Syntax(format!(
                        "a name is missing at character {i}"
                    )));
                }
                vec![format!("$.{}", chars[start..i].iter().collect::<String>())]
            }
        };
        out.push(RawSegment {
            descendant,
            selectors,
        });
    }
    Ok(out)
}

/// Reads the bracketed selectors that open at `open`; returns them and the index
/// after the closing bracket.
fn bracket(chars: &[char], skel: &[char], open: usize) -> Result<(Vec<String>, usize), PathError> {
    let mut depth = 0usize;
    let mut parens = 0usize;
    let mut start = open + 1;
    let mut sels = Vec::new();
    let take = |from: usize, to: usize| -> String {
        format!("$[{}]", chars[from..to].iter().collect::<String>().trim())
    };
    for (i, &c) in skel.iter().enumerate().skip(open + 1) {
        match c {
            '[' => depth += 1,
            ']' if depth == 0 => {
                sels.push(take(start, i));
                return Ok((sels, i + 1));
            }
            ']' => depth -= 1,
            '(' => parens += 1,
            ')' => parens = parens.saturating_sub(1),
            ',' if depth == 0 && parens == 0 => {
                sels.push(take(start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    Err(PathError::Syntax("a [ is never closed".into()))
}

/// Checks a filter selector (`$[?...]`) against the rules that keep one test cheap and
/// says what a test costs.
pub(super) fn filter_shape(selector: &str, regex_size: usize) -> Result<FilterShape, PathError> {
    let all: Vec<char> = selector.chars().collect();
    // Skip the "$[?" this selector was written as, and its closing "]".
    let chars = all.get(3..all.len().saturating_sub(1)).unwrap_or(&[]);
    let skel = skeleton(chars);
    let body = &skel[..];
    let text: String = chars.iter().collect();
    let shown = || text.trim().to_string();
    if body.contains(&'$') {
        return Err(PathError::RootInFilter(shown()));
    }
    if body.windows(2).any(|w| w == ['.', '.']) {
        return Err(PathError::DescendantInFilter(shown()));
    }
    let mut depth = 0usize;
    let mut fan_out = 0;
    for &c in body {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '?' => return Err(PathError::NestedFilter(shown())),
            ',' if depth > 0 => return Err(PathError::ListInFilter(shown())),
            '*' | ':' => fan_out += 1,
            _ => {}
        }
    }
    let regex_calls = regex_literals(chars, body)
        .into_iter()
        .map(|lit| check_regex(lit, regex_size, &shown()))
        .collect::<Result<Vec<()>, PathError>>()?
        .len();
    Ok(FilterShape {
        regex_calls,
        fan_out,
    })
}

/// The second argument of every `match(` / `search(` call, which must be a string
/// literal: a pattern read from the data could be as large as the data and would be
/// compiled again for every value tested. `Err`: the function whose pattern is not one.
fn regex_literals<'a>(chars: &'a [char], skel: &[char]) -> Vec<Result<&'a [char], &'static str>> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < skel.len() {
        let at_word = i == 0 || !is_name_char(skel[i - 1]);
        let name = ["match", "search"].into_iter().find(|n| {
            let n: Vec<char> = n.chars().collect();
            skel.get(i..i + n.len()) == Some(&n[..])
        });
        let Some(name) = name.filter(|_| at_word) else {
            i += 1;
            continue;
        };
        let mut j = i + name.len();
        while j < skel.len() && skel[j].is_whitespace() {
            j += 1;
        }
        if skel.get(j) != Some(&'(') {
            i += 1;
            continue;
        }
        let (mut depth, mut comma, mut close) = (0usize, None, None);
        for (k, &c) in skel.iter().enumerate().skip(j + 1) {
            match c {
                '(' | '[' => depth += 1,
                ')' if depth == 0 => {
                    close = Some(k);
                    break;
                }
                ')' | ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 && comma.is_none() => comma = Some(k),
                _ => {}
            }
        }
        let arg = comma.zip(close).map(|(a, b)| (a + 1, b));
        found.push(match arg {
            Some((a, b)) => {
                let lit = trim(&chars[a..b]);
                let inner = trim(&skel[a..b]);
                // One literal: its opening quote closes only at its end.
                let one_literal = lit.len() >= 2
                    && inner.len() == lit.len()
                    && matches!(lit[0], '\'' | '"')
                    && lit[lit.len() - 1] == lit[0]
                    && inner[1..inner.len() - 1].iter().all(|c| *c == ' ');
                if one_literal {
                    Ok(&lit[1..lit.len() - 1])
                } else {
                    Err(name)
                }
            }
            None => Err(name),
        });
        i = j + 1;
    }
    found
}

fn trim(s: &[char]) -> &[char] {
    let start = s.iter().position(|c| !c.is_whitespace()).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn check_regex(
    lit: Result<&[char], &'static str>,
    size: usize,
    filter: &str,
) -> Result<(), PathError> {
    let raw = lit.map_err(|f| PathError::RegexNotLiteral(f.to_string(), filter.to_string()))?;
    let pattern = unescape(raw).ok_or_else(|| {
        PathError::Syntax(format!(
            "the regular expression in {filter:?} has a bad escape"
        ))
    })?;
    // serde_json_path compiles it the same way, at every test.
    regex::RegexBuilder::new(&format!("(?R)^({pattern})$"))
        .size_limit(size)
        .build()
        .map(|_| ())
        .map_err(|e| PathError::RegexTooBig(pattern.clone(), size, e.to_string()))
}

/// A JSONPath string literal's content without its escapes (RFC 9535 section 2.3.1.1).
fn unescape(raw: &[char]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match it.next()? {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = it.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).ok()?;
                // A surrogate pair cannot be one char; its size is what matters here.
                char::from_u32(code).unwrap_or('\u{FFFD}')
            }
            other => *other,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sels(path: &str) -> Vec<(bool, Vec<String>)> {
        segments(path)
            .unwrap()
            .into_iter()
            .map(|s| (s.descendant, s.selectors))
            .collect()
    }

    #[test]
    fn splits_every_segment_form() {
        assert_eq!(
            sels("$.a..b.*..*['x,]', 0, 1:3]..[?@.c == 'd]']"),
            vec![
                (false, vec!["$.a".to_string()]),
                (true, vec!["$.b".to_string()]),
                (false, vec!["$.*".to_string()]),
                (true, vec!["$.*".to_string()]),
                (
                    false,
                    vec![
                        "$['x,]']".to_string(),
                        "$[0]".to_string(),
                        "$[1:3]".to_string()
                    ]
                ),
                (true, vec!["$[?@.c == 'd]']".to_string()]),
            ]
        );
        assert_eq!(sels("$"), vec![]);
        assert_eq!(sels("$ .a [0]").len(), 2);
        assert_eq!(sels("$.ünï_1"), vec![(false, vec!["$.ünï_1".to_string()])]);
    }

    #[test]
    fn filters_are_read() {
        let s = |f: &str| filter_shape(f, 1 << 15);
        assert_eq!(s("$[?@.a]").unwrap(), FilterShape::default());
        assert_eq!(s("$[?count(@.*) > 1]").unwrap().fan_out, 1);
        assert_eq!(
            s("$[?match(@.t, 'a.*') || search(@.t, \"b\")]")
                .unwrap()
                .regex_calls,
            2
        );
        assert!(matches!(
            s("$[?@.a == $.b]"),
            Err(PathError::RootInFilter(_))
        ));
        assert!(s("$[?@.a == '$..']").is_ok(), "quoted text is not a query");
        assert!(matches!(
            s("$[?@..a]"),
            Err(PathError::DescendantInFilter(_))
        ));
        assert!(matches!(s("$[?@[?@.a]]"), Err(PathError::NestedFilter(_))));
        assert!(matches!(s("$[?@[0,0]]"), Err(PathError::ListInFilter(_))));
        assert!(matches!(
            s("$[?match(@.t, @.p)]"),
            Err(PathError::RegexNotLiteral(..))
        ));
        assert!(matches!(
            s("$[?match(@.t, 'a{1000}{1000}')]"),
            Err(PathError::RegexTooBig(..))
        ));
    }

    #[test]
    fn unescapes_literals() {
        let u = |s: &str| unescape(&s.chars().collect::<Vec<_>>());
        assert_eq!(u(r"a\\d\'\u0041").as_deref(), Some(r"a\d'A"));
        assert_eq!(u(r"bad\"), None);
    }
}
