//! The dependency direction of the crate, checked: every `crate::...` path in `src/`
//! (in `use` lines, grouped `use crate::{a, b::c}`, inline `crate::x::y` and `super::`
//! chains that climb out of a subsystem) is mapped to the subsystem it names, and a
//! subsystem may name only subsystems on a lower layer:
//!
//! ```text
//! server → http → hub → {agents, accounts} → {endpoints, delivery, feeds, mail}
//!        → telemetry → store
//!        → {options, ops} → {template, config} → leaves (time, net, event_types,
//!          jsonpath, secrets, sandbox)
//! ```
//!
//! Arrows that still point up are listed in `KNOWN_UPWARD` with the reason; that list
//! only shrinks: the test also fails when a listed arrow no longer exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer; a module may import only lower layers
/// (and the same-layer pairs in `PEERS`). A new top-level module must be placed here.
const LAYERS: &[(&str, u8)] = &[
    ("time", 0),
    ("net", 0),
    ("event_types", 0),
    ("jsonpath", 0),
    ("secrets", 0),
    ("sandbox", 0),
    ("template", 1),
    ("config", 1),
    ("options", 2),
    ("ops", 2),
    ("store", 3),
    ("telemetry", 4),
    ("cluster", 4),
    ("endpoints", 5),
    ("delivery", 5),
    ("feeds", 5),
    ("mail", 5),
    ("agents", 6),
    ("accounts", 6),
    ("hub", 7),
    ("http", 8),
    ("server", 9),
    ("lib", 10),
    ("main", 10),
    ("cli", 10),
    ("agent_kind", 0),
    ("ids", 0),
];

/// Same-layer imports that are part of the design (one way only).
const PEERS: &[(&str, &str, &str)] = &[
    (
        "endpoints",
        "delivery",
        "inbound signature checks verify with the outbound signer (Standard Webhooks)",
    ),
    (
        "agents",
        "accounts",
        "a java_script agent's this.credential(name, value) saves through the credentials service",
    ),
];

/// Names at the crate root that are not modules: `#[macro_export]` macros and the
/// re-exports of `lib.rs`, with the subsystem that owns them.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("cached", "store"),
    ("per_backend", "store"),
    ("Config", "config"),
    ("run", "server"),
    ("RunError", "server"),
];

/// Upward arrows still in the code: (importing file, imported subsystem, why it is
/// still there). Remove an entry when its arrow is gone; the test insists.
const KNOWN_UPWARD: &[(&str, &str, &str)] = &[];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    line: usize,
    /// The subsystem named (first segment after `crate::`, or where `super::` lands).
    target: String,
    text: String,
}

fn layer(subsystem: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(n, _)| *n == subsystem)
        .map(|(_, l)| *l)
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file relative to `src/`: `delivery/actor/reset.rs` is
/// `[delivery, actor, reset]`, `store/mod.rs` is `[store]`, `lib.rs` is `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && !(parts.is_empty() && (stem == "lib" || stem == "main")) {
        parts.push(stem.to_string());
    }
    parts
}

fn subsystem_of(rel: &Path) -> String {
    let first = rel.iter().next().unwrap().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Blanks out comments, string and char literals (keeping newlines), so only code is
/// searched for paths.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !b[..i]
                .last()
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // Raw string r"..." / r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(b[i..j.min(b.len())].iter().map(|c| blank(*c)));
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}'), or a lifetime / label.
            let close = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|k| b[*k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(k) => {
                    out.extend(std::iter::repeat_n(' ', k + 1 - i));
                    i = k + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first segment of each top-level item of a `{...}` group starting at `open`.
fn group_heads(code: &[char], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    let mut i = open;
    while i < code.len() {
        let c = code[i];
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    at_item_start = true;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => at_item_start = true,
            c if depth == 1 && at_item_start && is_ident(c) => {
                let start = i;
                while i < code.len() && is_ident(code[i]) {
                    i += 1;
                }
                heads.push(code[start..i].iter().collect());
                at_item_start = false;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    heads
}

/// For each position of `code`, how many inline `mod name { ... }` blocks enclose it
/// (each is one more level a `super::` climbs through).
fn inline_module_depths(code: &[char]) -> Vec<usize> {
    let mut depths = Vec::with_capacity(code.len());
    let mut braces = 0usize;
    // Brace depth at which each open inline module's body started.
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let word_start = i == 0 || !is_ident(code[i - 1]);
        if word_start && code[i..].iter().take(4).copied().eq("mod ".chars()) {
            let mut j = i + 4;
            while j < code.len() && (is_ident(code[j]) || code[j].is_whitespace()) {
                j += 1;
            }
            if code.get(j) == Some(&'{') {
                while i < j {
                    depths.push(open.len());
                    i += 1;
                }
                braces += 1;
                open.push(braces);
                depths.push(open.len());
                i += 1;
                continue;
            }
        }
        match code[i] {
            '{' => braces += 1,
            '}' => {
                if open.last() == Some(&braces) {
                    open.pop();
                }
                braces = braces.saturating_sub(1);
            }
            _ => {}
        }
        depths.push(open.len());
        i += 1;
    }
    depths.push(open.len());
    depths
}

/// Every subsystem-crossing path of one file: `crate::` paths and `super::` chains
/// that climb to the crate root.
fn imports(code: &str, module: &[String]) -> Vec<Import> {
    let chars: Vec<char> = code.chars().collect();
    let line_of = |pos: usize| chars[..pos].iter().filter(|c| **c == '\n').count() + 1;
    let text_at = |pos: usize| -> String {
        chars[pos..]
            .iter()
            .take_while(|c| **c != '\n' && **c != ';')
            .collect::<String>()
            .trim()
            .to_string()
    };
    let inline = inline_module_depths(&chars);
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let preceded = i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':');
        let rest = |s: &str| chars[i..].iter().take(s.len()).copied().eq(s.chars());
        if !preceded && (rest("crate::") || rest("super::")) {
            let start = i;
            // Where the path lands: `crate::` is the root; each `super::` one level up.
            let mut depth_left: Option<usize> = None;
            if rest("crate::") {
                depth_left = Some(0);
                i += "crate::".len();
            } else {
                let mut up = 0;
                while chars[i..].iter().take(7).copied().eq("super::".chars()) {
                    up += 1;
                    i += "super::".len();
                }
                if up >= module.len() + inline[start] {
                    depth_left = Some(0);
                }
            }
            if depth_left.is_some() {
                let heads = if chars.get(i) == Some(&'{') {
                    group_heads(&chars, i)
                } else {
                    let s = i;
                    while i < chars.len() && is_ident(chars[i]) {
                        i += 1;
                    }
                    vec![chars[s..i].iter().collect()]
                };
                for h in heads.into_iter().filter(|h| !h.is_empty() && h != "self") {
                    found.push(Import {
                        line: line_of(start),
                        target: h,
                        text: text_at(start),
                    });
                }
            }
            continue;
        }
        i += 1;
    }
    found
}

/// Maps a name at the crate root to its subsystem.
fn owner(name: &str) -> Result<String, String> {
    if layer(name).is_some() {
        return Ok(name.to_string());
    }
    ROOT_ITEMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s.to_string())
        .ok_or_else(|| format!("`crate::{name}` is neither a module in LAYERS nor in ROOT_ITEMS"))
}

/// Why `from` may not import `to`, or `None` when it may.
fn broken_rule(from: &str, to: &str) -> Option<String> {
    let (lf, lt) = (layer(from)?, layer(to)?);
    if from == to || lt < lf || PEERS.iter().any(|(a, b, _)| *a == from && *b == to) {
        return None;
    }
    let why = if lt == lf {
        "imports between subsystems of one layer must be listed in PEERS"
    } else {
        "a subsystem imports only lower layers"
    };
    Some(format!(
        "{from} (layer {lf}) must not import {to} (layer {lt}): {why}"
    ))
}

#[test]
fn dependencies_point_down() {
    let root = src_dir();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    let mut upward = BTreeSet::new();
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap();
        let from = subsystem_of(rel);
        if layer(&from).is_none() {
            problems.push(format!(
                "src/{}: top-level module `{from}` has no layer; add it to LAYERS",
                rel.display()
            ));
            continue;
        }
        let code = code_only(&fs::read_to_string(path).unwrap());
        for imp in imports(&code, &module_path(rel)) {
            let to = match owner(&imp.target) {
                Ok(to) => to,
                Err(e) => {
                    problems.push(format!("src/{}:{}: {e}", rel.display(), imp.line));
                    continue;
                }
            };
            let Some(rule) = broken_rule(&from, &to) else {
                continue;
            };
            let file = format!("src/{}", rel.display());
            if KNOWN_UPWARD.iter().any(|(f, t, _)| *f == file && *t == to) {
                upward.insert((file, to));
                continue;
            }
            problems.push(format!("{file}:{}: `{}`: {rule}", imp.line, imp.text));
        }
    }
    for (file, to, _) in KNOWN_UPWARD {
        if !upward.contains(&(file.to_string(), to.to_string())) {
            problems.push(format!(
                "{file} no longer imports {to}: remove it from KNOWN_UPWARD (the list only shrinks)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "dependency direction broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form_of_path() {
    let src = r##"
use crate::store::Store;
use crate::{options::OptionError, event_types::{self, CATALOG}};
// use crate::hub::Registry;  (a comment)
/* crate::http::x */
fn f() -> String { let _ = crate::time::ts; "crate::agents::x".into() }
let c = '"'; let r = r#"crate::hub"#; let l: &'static str = "";
use super::super::feeds::FeedSpec;
use super::sibling;
mod tests { use super::super::super::hub::X; use super::super::y; }
"##;
    let code = code_only(src);
    let module = vec!["delivery".to_string(), "actor".to_string()];
    let got: Vec<(usize, String)> = imports(&code, &module)
        .into_iter()
        .map(|i| (i.line, i.target))
        .collect();
    let want: Vec<(usize, String)> = [
        (2, "store"),
        (3, "options"),
        (3, "event_types"),
        (6, "time"),
        (8, "feeds"),
        (10, "hub"),
    ]
    .iter()
    .map(|(l, t)| (*l, t.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(broken_rule("delivery", "hub").is_some());
    assert!(broken_rule("delivery", "feeds").is_some());
    assert!(broken_rule("endpoints", "delivery").is_none());
    assert!(broken_rule("hub", "store").is_none());
}
