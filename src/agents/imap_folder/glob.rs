//! The `from`/`to`/`cc` conditions' patterns: Ruby's `File.fnmatch?` with FNM_CASEFOLD
//! and FNM_EXTGLOB (no FNM_PATHNAME, no FNM_PERIOD), as Huginn matches them — `*` any
//! text, `?` one character, `[...]` a class (`[!...]`/`[^...]` negated), `{a,b}`
//! alternatives, `\x` a literal. A pattern becomes an anchored, case-insensitive regex
//! with a bounded size (patterns are user input).

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob(regex::Regex);

/// Why a pattern is no glob.
#[derive(Debug, thiserror::Error)]
pub enum GlobError {
    #[error("{0:?} has an unclosed {{")]
    UnclosedBrace(String),
    /// Too big once compiled, mostly.
    #[error("{pattern:?} is not a valid pattern: {source}")]
    Invalid {
        pattern: String,
        source: regex::Error,
    },
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let mut re = String::from("^(?s:");
        let mut chars = pattern.chars().peekable();
        let mut braces = 0usize;
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                '\\' => match chars.next() {
                    Some(n) => re.push_str(&regex::escape(&n.to_string())),
                    None => re.push_str(r"\\"),
                },
                '{' => {
                    braces += 1;
                    re.push_str("(?:");
                }
                '}' if braces > 0 => {
                    braces -= 1;
                    re.push(')');
                }
                ',' if braces > 0 => re.push('|'),
                '[' => {
                    // A class runs to the next `]` (one right after the opening is
                    // literal); without one the `[` is literal, as fnmatch reads it.
                    let rest: String = chars.clone().collect();
                    let start = usize::from(rest.starts_with(['!', '^']));
                    let close = rest
                        .char_indices()
                        .skip(start + 1)
                        .find(|(_, c)| *c == ']')
                        .map(|(i, _)| i);
                    match close {
                        Some(end) => {
                            let body = &rest[start..end];
                            re.push('[');
                            if start == 1 {
                                re.push('^');
                            }
                            for b in body.chars() {
                                if matches!(b, '[' | ']' | '\\' | '^' | '&' | '~') {
                                    re.push('\\');
                                }
                                re.push(b);
                            }
                            re.push(']');
                            for _ in 0..=end {
                                chars.next();
                            }
                        }
                        None => re.push_str(r"\["),
                    }
                }
                other => re.push_str(&regex::escape(&other.to_string())),
            }
        }
        if braces > 0 {
            return Err(GlobError::UnclosedBrace(pattern.to_string()));
        }
        re.push_str(")$");
        regex::RegexBuilder::new(&re)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .build()
            .map(Glob)
            .map_err(|source| GlobError::Invalid {
                pattern: pattern.to_string(),
                source,
            })
    }

    pub fn matches(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).map(|g| g.matches(t)).unwrap_or(false)
    }

    #[test]
    fn matches_as_fnmatch_casefold_extglob() {
        assert!(m("John.Doe@*", "john.doe@example.com"));
        assert!(!m("John.Doe@*", "jane.doe@example.com"));
        assert!(m("*", ""));
        assert!(m("*@example.{com,jp}", "a@example.jp"));
        assert!(!m("*@example.{com,jp}", "a@example.org"));
        assert!(m("?@x", "a@x"));
        assert!(m("[ab]@x", "B@x"));
        assert!(m("[!ab]@x", "c@x"));
        assert!(!m("[!ab]@x", "a@x"));
        assert!(m("a[@x", "a[@x"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(Glob::new("{a,b").is_err());
    }
}
