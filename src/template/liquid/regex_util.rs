//! Regular expressions as Huginn's filters and blocks use them, on Rust's `regex` (linear
//! time, so no pattern can backtrack catastrophically), with Ruby's defaults (`^`/`$`
//! match at line boundaries) and Ruby's replacement escapes (`\1`, `\k<name>`, `\0`,
//! `\&`, `` \` ``, `\'`, `\+`, `\\`, `\n`, `\t`, `\u{XXXX}`, `\xHH` ...). Compiled
//! patterns are cached per thread so a pattern in a loop compiles once.

use std::cell::RefCell;
use std::collections::HashMap;

use liquid_core::error::{Error, Result};
use regex::{Captures, Regex, RegexBuilder};

use super::bounds::{charge, precheck};

thread_local! {
    static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

const CACHE_MAX: usize = 64;

/// Compiles `pattern` with bounded compiled size and nesting.
pub fn compile(pattern: &str) -> Result<Regex> {
    if let Some(re) = CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    charge(1 + (pattern.len() / 64) as u64)?;
    let re = RegexBuilder::new(pattern)
        .multi_line(true)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(64)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim().to_owned();
            Error::with_msg(format!("invalid regular expression {pattern:?}: {last}"))
        })?;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(pattern.to_owned(), re.clone());
    });
    Ok(re)
}

/// Charges searching `subject` once.
pub fn charge_search(subject: &str) -> Result<()> {
    charge(1 + (subject.len() / 4096) as u64)
}

/// One piece of a parsed replacement.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Group(usize),
    Named(String),
    Pre,
    Post,
    Last,
}

/// Parses Ruby's replacement escapes once per call.
// One idea: one scanner over a replacement string, with a branch per escape form of Ruby's
// (numbered and named groups, the text before and after the match, the last group); the
// branches share its position.
fn parse_replacement(rep: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let chars: Vec<char> = rep.chars().collect();
    let mut i = 0;
    let piece = |text: &mut String, out: &mut Vec<Piece>, p: Piece| {
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(text)));
        }
        out.push(p);
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            text.push(c);
            i += 1;
            continue;
        }
        let n = chars[i + 1];
        i += 2;
        match n {
            '0'..='9' => piece(&mut text, &mut out, Piece::Group(n as usize - '0' as usize)),
            '&' => piece(&mut text, &mut out, Piece::Group(0)),
            '`' => piece(&mut text, &mut out, Piece::Pre),
            '\'' => piece(&mut text, &mut out, Piece::Post),
            '+' => piece(&mut text, &mut out, Piece::Last),
            '\\' => text.push('\\'),
            'k' if chars.get(i) == Some(&'<') => {
                let rest: String = chars[i + 1..].iter().collect();
                match rest.find('>') {
                    Some(end)
                        if rest[..end].chars().all(|c| c.is_alphanumeric() || c == '_')
                            && end > 0 =>
                    {
                        piece(&mut text, &mut out, Piece::Named(rest[..end].to_owned()));
                        i += 1 + rest[..end].chars().count() + 1;
                    }
                    _ => text.push('k'),
                }
            }
            'u' if chars.get(i) == Some(&'{') => {
                let rest: String = chars[i + 1..].iter().collect();
                let code = rest
                    .find('}')
                    .filter(|&e| e > 0 && rest[..e].chars().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|e| u32::from_str_radix(&rest[..e], 16).ok().map(|v| (e, v)))
                    .and_then(|(e, v)| char::from_u32(v).map(|c| (e, c)));
                match code {
                    Some((e, ch)) => {
                        text.push(ch);
                        i += 1 + e + 1;
                    }
                    None => text.push('u'),
                }
            }
            'x' if chars.len() >= i + 2
                && chars[i].is_ascii_hexdigit()
                && chars[i + 1].is_ascii_hexdigit() =>
            {
                let v = chars[i].to_digit(16).unwrap_or(0) * 16
                    + chars[i + 1].to_digit(16).unwrap_or(0);
                text.push(char::from(v as u8));
                i += 2;
            }
            'a' => text.push('\u{7}'),
            'b' => text.push('\u{8}'),
            'e' => text.push('\u{1b}'),
            'f' => text.push('\u{c}'),
            'n' => text.push('\n'),
            'r' => text.push('\r'),
            's' => text.push(' '),
            't' => text.push('\t'),
            'v' => text.push('\u{b}'),
            // Ruby's unescape drops the backslash of an unknown escape but keeps a
            // backslash before a newline (its `.` does not match one).
            '\n' => text.push_str("\\\n"),
            other => text.push(other),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

fn expand(pieces: &[Piece], caps: &Captures<'_>, subject: &str, out: &mut String) {
    let whole = caps.get(0);
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
            Piece::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
            Piece::Pre => out.push_str(&subject[..whole.map_or(0, |m| m.start())]),
            Piece::Post => out.push_str(&subject[whole.map_or(0, |m| m.end())..]),
            Piece::Last => {
                let last = (1..caps.len()).rev().find_map(|i| caps.get(i));
                out.push_str(last.map_or("", |m| m.as_str()));
            }
        }
    }
}

/// Ruby's `gsub`/`sub` with a regex and a replacement string.
pub fn replace(subject: &str, pattern: &str, rep: &str, first: bool) -> Result<String> {
    let re = compile(pattern)?;
    let pieces = parse_replacement(rep);
    replace_with(subject, &re, first, |caps, out| {
        expand(&pieces, caps, subject, out);
        Ok(())
    })
}

/// Replaces matches with what `with` writes for each, checking the size as it grows.
pub fn replace_with(
    subject: &str,
    re: &Regex,
    first: bool,
    mut with: impl FnMut(&Captures<'_>, &mut String) -> Result<()>,
) -> Result<String> {
    charge_search(subject)?;
    let mut out = String::with_capacity(subject.len());
    let mut last = 0;
    for caps in re.captures_iter(subject) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&subject[last..m.start()]);
        with(&caps, &mut out)?;
        last = m.end();
        precheck(out.len() + subject.len() - last)?;
        charge(1)?;
        if first {
            break;
        }
    }
    out.push_str(&subject[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_replacement_escapes() {
        let r = |s: &str, p: &str, rep: &str| {
            crate::template::budget::run(Default::default(), || {
                replace(s, p, rep, false).map_err(|e| e.to_string())
            })
            .0
            .unwrap_or_else(|e| e)
        };
        assert_eq!(r("ab", "(a)(b)", r"\2\1"), "ba");
        assert_eq!(r("ab", "(?<x>a)b", r"[\k<x>]"), "[a]");
        assert_eq!(r("xaby", "ab", r"<\`|\&|\'>"), "x<x|ab|y>y");
        assert_eq!(r("ab", "(a)(b)?c?", r"\+"), "b");
        assert_eq!(r("a", "a", r"\\\n\t\s\q"), "\\\n\t q");
        assert_eq!(r("a", "a", r"\u{263a}\x41"), "\u{263a}A");
        assert_eq!(r("a", "a", r"\0\0"), "aa");
    }

    #[test]
    fn ruby_anchors_match_lines() {
        let out = crate::template::budget::run(Default::default(), || {
            replace("a\nb", "^", "-", false).map_err(|e| e.to_string())
        })
        .0;
        assert_eq!(out.as_deref(), Ok("-a\n-b"));
    }
}
