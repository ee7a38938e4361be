//! What a template may contain, checked when it is saved, and the instrumentation that
//! bounds what it may do when it runs. Before tera parses a source, [`prescan`] bounds its
//! size and nesting (tera's parser and renderer recurse per level); after, [`check`]
//! refuses includes, inheritance, macros, filter sections and every name not on the
//! allow-list in [`super::builtins`], and [`instrument`] makes each loop iteration
//! charge the work it does and each `set` admit its value.

use std::collections::HashMap;

use tera::ast::{Expr, ExprVal, FunctionCall, LogicOperator, Node, WS};

use super::builtins::{CAP, FILTERS, FUNCTIONS, RENDERER_FILTERS, TESTS, TICK, TRUTHY};
use super::limits::Limits;

/// What the sandbox refuses in a template, and why; each message names the limit or
/// the construct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("the template is {bytes} bytes; the limit is {limit} (template size limit)")]
    TooLarge { bytes: usize, limit: usize },
    #[error("the template nests deeper than {limit} levels (template depth limit)")]
    TooDeep { limit: usize },
    #[error("a tag has more than {limit} operators (template expression limit)")]
    TooManyOperators { limit: usize },
    #[error(
        "an expression reads more than {limit} variables, calls and filters (template expression limit)"
    )]
    TooManyTerms { limit: usize },
    /// A kind of construct muninn templates leave out (`what` is plural: "macros").
    #[error("{what} are not available in muninn templates")]
    Refused { what: &'static str },
    /// One of the engine's internal names.
    #[error("`{name}` is not available in muninn templates")]
    Internal { name: String },
    #[error("there is no {kind} `{name}` in muninn templates; the {kind}s are: {}", .known.join(", "))]
    Unknown {
        kind: &'static str,
        name: String,
        known: &'static [&'static str],
    },
}

/// Bounds a source's size, tag nesting, bracket nesting and operators per tag, without
/// parsing it.
pub fn prescan(src: &str, limits: &Limits) -> Result<(), SandboxError> {
    if src.len() > limits.max_source_bytes {
        return Err(SandboxError::TooLarge {
            bytes: src.len(),
            limit: limits.max_source_bytes,
        });
    }
    let b = src.as_bytes();
    let mut blocks = 0usize;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let kind = b[i + 1];
        i += 2;
        if kind == b'#' {
            i = find(b, i, b"#}").map_or(b.len(), |e| e + 2);
            continue;
        }
        let close = if kind == b'{' { b"}}" } else { b"%}" };
        let tag = scan_tag(b, i, close, limits)?;
        match tag.first_word.as_str() {
            "if" | "for" | "macro" | "filter" | "block" => blocks += 1,
            w if w.starts_with("end") && w != "endraw" => blocks = blocks.saturating_sub(1),
            _ => {}
        }
        if blocks > limits.max_depth {
            return Err(depth_error(limits));
        }
        i = tag.end;
        if tag.first_word == "raw" {
            // A raw block's text is not template syntax.
            i = find(b, i, b"endraw").unwrap_or(b.len());
        }
    }
    Ok(())
}

fn depth_error(limits: &Limits) -> SandboxError {
    SandboxError::TooDeep {
        limit: limits.max_depth,
    }
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

struct Tag {
    end: usize,
    first_word: String,
}

fn scan_tag(b: &[u8], mut i: usize, close: &[u8], limits: &Limits) -> Result<Tag, SandboxError> {
    let (mut depth, mut ops, mut quote) = (0usize, 0usize, None);
    let mut first_word = String::new();
    let mut word = String::new();
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if b[i..].starts_with(close) {
            i += 2;
            break;
        }
        if c.is_ascii_alphanumeric() || c == b'_' {
            word.push(c as char);
        } else {
            if matches!(word.as_str(), "and" | "or" | "not" | "in" | "is") {
                ops += 1;
            }
            if first_word.is_empty() && !word.is_empty() {
                first_word = std::mem::take(&mut word);
            }
            word.clear();
        }
        match c {
            b'"' | b'\'' | b'`' => quote = Some(c),
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'<' | b'>' | b'=' | b'!' | b'|' => ops += 1,
            _ => {}
        }
        if depth > limits.max_depth {
            return Err(depth_error(limits));
        }
        if ops > limits.max_tag_operators {
            return Err(SandboxError::TooManyOperators {
                limit: limits.max_tag_operators,
            });
        }
        i += 1;
    }
    if first_word.is_empty() {
        first_word = word;
    }
    Ok(Tag { end: i, first_word })
}

/// Refuses what a template may not contain; the error names the construct.
pub fn check(ast: &[Node], limits: &Limits) -> Result<(), SandboxError> {
    let mut c = Checker { limits, terms: 0 };
    c.nodes(ast, 1)
}

struct Checker<'a> {
    limits: &'a Limits,
    terms: usize,
}

impl Checker<'_> {
    fn deeper(&self, depth: usize) -> Result<usize, SandboxError> {
        if depth >= self.limits.max_depth {
            return Err(depth_error(self.limits));
        }
        Ok(depth + 1)
    }

    fn nodes(&mut self, nodes: &[Node], depth: usize) -> Result<(), SandboxError> {
        let depth = self.deeper(depth)?;
        for n in nodes {
            self.node(n, depth)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &Node, depth: usize) -> Result<(), SandboxError> {
        let refused = |what: &'static str| Err(SandboxError::Refused { what });
        match node {
            Node::Super | Node::Extends(..) => refused("`extends` and `super()`"),
            Node::Include(..) => refused("`include` tags"),
            Node::ImportMacro(..) | Node::MacroDefinition(..) => refused("macros"),
            Node::FilterSection(..) => refused(
                "`{% filter %}` sections (apply the filter in an expression, `{{ x | upper }}`,)",
            ),
            Node::Text(_)
            | Node::Raw(..)
            | Node::Comment(..)
            | Node::Break(_)
            | Node::Continue(_) => Ok(()),
            Node::VariableBlock(_, e) => self.top_expr(e, depth),
            Node::Set(_, set) => self.top_expr(&set.value, depth),
            Node::Block(_, block, _) => self.nodes(&block.body, depth),
            Node::Forloop(_, f, _) => {
                self.top_expr(&f.container, depth)?;
                self.nodes(&f.body, depth)?;
                f.empty_body
                    .as_ref()
                    .map_or(Ok(()), |b| self.nodes(b, depth))
            }
            Node::If(i, _) => {
                for (_, cond, body) in &i.conditions {
                    self.top_expr(cond, depth)?;
                    self.nodes(body, depth)?;
                }
                i.otherwise
                    .as_ref()
                    .map_or(Ok(()), |(_, b)| self.nodes(b, depth))
            }
        }
    }

    fn top_expr(&mut self, e: &Expr, depth: usize) -> Result<(), SandboxError> {
        self.terms = 0;
        self.expr(e, depth)
    }

    fn term(&mut self) -> Result<(), SandboxError> {
        self.terms += 1;
        if self.terms > self.limits.max_expression_terms {
            return Err(SandboxError::TooManyTerms {
                limit: self.limits.max_expression_terms,
            });
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr, depth: usize) -> Result<(), SandboxError> {
        let depth = self.deeper(depth)?;
        for f in &e.filters {
            if !FILTERS.contains(&f.name.as_str()) && !RENDERER_FILTERS.contains(&f.name.as_str()) {
                return Err(unknown("filter", &f.name, FILTERS));
            }
            self.term()?;
            for a in f.args.values() {
                self.expr(a, depth)?;
            }
        }
        self.val(&e.val, depth)
    }

    fn val(&mut self, v: &ExprVal, depth: usize) -> Result<(), SandboxError> {
        let depth = self.deeper(depth)?;
        match v {
            ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => Ok(()),
            ExprVal::Ident(name) => {
                if name.starts_with("__tera") {
                    return Err(SandboxError::Internal { name: name.clone() });
                }
                self.term()
            }
            ExprVal::Math(m) => {
                self.expr(&m.lhs, depth)?;
                self.expr(&m.rhs, depth)
            }
            ExprVal::Logic(l) => {
                self.expr(&l.lhs, depth)?;
                self.expr(&l.rhs, depth)
            }
            ExprVal::In(i) => {
                self.expr(&i.lhs, depth)?;
                self.expr(&i.rhs, depth)
            }
            ExprVal::Test(t) => {
                if !TESTS.contains(&t.name.as_str()) {
                    return Err(unknown("test", &t.name, TESTS));
                }
                self.term()?;
                t.args.iter().try_for_each(|a| self.expr(a, depth))
            }
            ExprVal::MacroCall(_) => Err(SandboxError::Refused { what: "macros" }),
            ExprVal::FunctionCall(f) => {
                if !FUNCTIONS.contains(&f.name.as_str()) {
                    return Err(unknown("function", &f.name, FUNCTIONS));
                }
                self.term()?;
                f.args.values().try_for_each(|a| self.expr(a, depth))
            }
            ExprVal::Array(items) => items.iter().try_for_each(|i| self.expr(i, depth)),
            ExprVal::StringConcat(c) => c.values.iter().try_for_each(|v| self.val(v, depth)),
        }
    }
}

fn unknown(kind: &'static str, name: &str, known: &'static [&'static str]) -> SandboxError {
    SandboxError::Unknown {
        kind,
        name: name.to_string(),
        known,
    }
}

/// Makes a checked template charge its work as it runs: every loop body starts with a
/// call charging the body's size, and every `set` value passes through the value bounds.
pub fn instrument(ast: &mut [Node]) {
    for node in ast {
        match node {
            Node::VariableBlock(_, e) => fix_expr(e),
            Node::Set(_, set) => {
                fix_expr(&mut set.value);
                let value = std::mem::replace(&mut set.value, Expr::new(ExprVal::Bool(false)));
                set.value = call(CAP, "v", value);
            }
            Node::Forloop(_, f, _) => {
                fix_expr(&mut f.container);
                instrument(&mut f.body);
                let cost = weight(&f.body).max(1);
                let tick = call(TICK, "n", Expr::new(ExprVal::Int(cost)));
                f.body.insert(0, Node::VariableBlock(WS::default(), tick));
                if let Some(b) = f.empty_body.as_mut() {
                    instrument(b);
                }
            }
            Node::If(i, _) => {
                for (_, cond, body) in &mut i.conditions {
                    fix_bool(cond);
                    instrument(body);
                }
                if let Some((_, b)) = i.otherwise.as_mut() {
                    instrument(b);
                }
            }
            Node::Block(_, block, _) => instrument(&mut block.body),
            _ => {}
        }
    }
}

/// Tera 1.20.1 panics when an array literal, or a `~` concatenation that is negated or
/// whose filters make a non-string, is used as a condition (a negated expression
/// evaluates to a bool, which tera then reads as a string); such a condition is asked
/// through `__truthy`.
fn fix_bool(e: &mut Expr) {
    fix_expr(e);
    let panics = match &e.val {
        ExprVal::Array(_) => true,
        ExprVal::StringConcat(_) => !e.filters.is_empty() || e.negated,
        _ => false,
    };
    if panics {
        let negated = std::mem::take(&mut e.negated);
        let inner = std::mem::replace(e, Expr::new(ExprVal::Bool(false)));
        *e = call(TRUTHY, "v", inner);
        e.negated = negated;
    }
}

/// Applies [`fix_bool`] to every condition inside an expression.
fn fix_expr(e: &mut Expr) {
    for f in &mut e.filters {
        f.args.values_mut().for_each(fix_expr);
    }
    match &mut e.val {
        ExprVal::Logic(l) if matches!(l.operator, LogicOperator::And | LogicOperator::Or) => {
            fix_bool(&mut l.lhs);
            fix_bool(&mut l.rhs);
        }
        ExprVal::Logic(l) => {
            fix_expr(&mut l.lhs);
            fix_expr(&mut l.rhs);
        }
        ExprVal::Math(m) => {
            fix_expr(&mut m.lhs);
            fix_expr(&mut m.rhs);
        }
        ExprVal::In(i) => {
            fix_expr(&mut i.lhs);
            fix_expr(&mut i.rhs);
        }
        ExprVal::Test(t) => t.args.iter_mut().for_each(fix_expr),
        ExprVal::FunctionCall(f) => f.args.values_mut().for_each(fix_expr),
        ExprVal::Array(items) => items.iter_mut().for_each(fix_expr),
        _ => {}
    }
}

fn call(name: &str, arg: &str, value: Expr) -> Expr {
    Expr::new(ExprVal::FunctionCall(FunctionCall {
        name: name.to_string(),
        args: HashMap::from([(arg.to_string(), value)]),
    }))
}

/// Nodes a loop body runs per iteration outside its own loops (they charge for
/// themselves), plus a step per KiB of text it writes.
fn weight(nodes: &[Node]) -> i64 {
    let mut w = 0i64;
    for n in nodes {
        w += 1;
        match n {
            Node::Text(t) | Node::Raw(_, t, _) => w += (t.len() / 1024) as i64,
            Node::If(i, _) => {
                for (_, _, body) in &i.conditions {
                    w += 1 + weight(body);
                }
                if let Some((_, b)) = &i.otherwise {
                    w += weight(b);
                }
            }
            Node::Block(_, b, _) => w += weight(&b.body),
            _ => {}
        }
    }
    w
}
