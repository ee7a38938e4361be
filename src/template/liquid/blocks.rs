//! Our `for` block and Huginn's `regex_replace`/`regex_replace_first` blocks.
//!
//! `for` is ours rather than the crate's because the crate's materialises `(1..n)` and
//! the whole array before the first iteration, and opens a strict scope (a missing key
//! of the loop item is an error there, nil in Huginn). Ours charges the iteration count
//! to the work budget before it starts, makes range items one at a time and opens a lax
//! [`Frame`].

use std::io::Write;

use liquid_core::error::{Error, Result};
use liquid_core::model::{Object, Value, ValueCow};
use liquid_core::parser::{BlockElement, TryMatchToken};
use liquid_core::runtime::{Interrupt, InterruptRegister};
use liquid_core::{
    BlockReflection, Expression, Language, ParseBlock, Renderable, Runtime, TagBlock, TagTokenIter,
    Template, ValueView,
};

use super::bounds::{CappedWriter, charge};
use super::convert::match_object;
use super::filter_kit::text;
use super::regex_util;
use super::runtime::Frame;
use super::std_filters::to_number;

#[derive(Clone, Copy, Debug)]
pub struct ForBlock;

impl BlockReflection for ForBlock {
    fn start_tag(&self) -> &str {
        "for"
    }
    fn end_tag(&self) -> &str {
        "endfor"
    }
    fn description(&self) -> &str {
        ""
    }
}

#[derive(Debug)]
enum Range {
    Array(Expression),
    Counted(Expression, Expression),
}

#[derive(Debug)]
struct For {
    var: String,
    range: Range,
    limit: Option<Expression>,
    offset: Option<Expression>,
    reversed: bool,
    body: Template,
    else_body: Option<Template>,
}

/// A block's elements before its separator tag, and the template after it if any.
type SplitBody = (Vec<Box<dyn Renderable>>, Option<Template>);

/// A block's body up to a bare `{% separator %}` tag, and the part after it if there is
/// one: `for`'s `else`, `regex_replace`'s `with`.
fn split_at_tag(
    tokens: &mut TagBlock<'_, '_>,
    options: &Language,
    separator: &str,
) -> Result<SplitBody> {
    let mut before = Vec::new();
    while let Some(element) = tokens.next()? {
        match element {
            BlockElement::Tag(mut tag) if tag.name() == separator => {
                tag.tokens().expect_nothing()?;
                return Ok((before, Some(Template::new(tokens.parse_all(options)?))));
            }
            element => before.push(element.parse(tokens, options)?),
        }
    }
    Ok((before, None))
}

fn parse_attr(arguments: &mut TagTokenIter<'_>) -> Result<Expression> {
    arguments
        .expect_next("\":\" expected.")?
        .expect_str(":")
        .into_result_custom_msg("\":\" expected.")?;
    arguments
        .expect_next("Value expected.")?
        .expect_value()
        .into_result()
}

impl ParseBlock for ForBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let var = arguments
            .expect_next("Identifier expected.")?
            .expect_identifier()
            .into_result()?
            .to_owned();
        arguments
            .expect_next("\"in\" expected.")?
            .expect_str("in")
            .into_result_custom_msg("\"in\" expected.")?;
        let range = match arguments
            .expect_next("Array or range expected.")?
            .expect_value()
        {
            TryMatchToken::Matches(array) => Range::Array(array),
            TryMatchToken::Fails(token) => match token.expect_range() {
                TryMatchToken::Matches((a, b)) => Range::Counted(a, b),
                TryMatchToken::Fails(token) => return Err(token.raise_error()),
            },
        };
        let (mut limit, mut offset, mut reversed) = (None, None, false);
        while let Some(token) = arguments.next() {
            match token.as_str() {
                "limit" => limit = Some(parse_attr(&mut arguments)?),
                "offset" => offset = Some(parse_attr(&mut arguments)?),
                "reversed" => reversed = true,
                _ => {
                    return Err(
                        token.raise_custom_error("\"limit\", \"offset\" or \"reversed\" expected.")
                    );
                }
            }
        }
        let (body, else_body) = split_at_tag(&mut tokens, options, "else")?;
        Ok(Box::new(For {
            var,
            range,
            limit,
            offset,
            reversed,
            body: Template::new(body),
            else_body,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

fn count_attr(e: &Option<Expression>, runtime: &dyn Runtime) -> Result<Option<i64>> {
    match e {
        None => Ok(None),
        Some(e) => Ok(Some(to_number(e.evaluate(runtime)?.as_view()) as i64)),
    }
}

/// What a loop runs over: borrowed items or a counted range (made one at a time).
enum Items<'a> {
    Values(Vec<ValueCow<'a>>),
    Counted,
}

impl For {
    fn items<'r>(&self, source: &'r ValueCow<'r>) -> Items<'r> {
        if let Some(a) = source.as_array() {
            Items::Values(a.values().map(ValueCow::Borrowed).collect())
        } else if let Some(o) = source.as_object() {
            Items::Values(
                o.iter()
                    .map(|(k, v)| {
                        ValueCow::Owned(Value::Array(vec![
                            Value::scalar(k.into_owned()),
                            v.to_value(),
                        ]))
                    })
                    .collect(),
            )
        } else {
            Items::Values(Vec::new())
        }
    }
}

impl Renderable for For {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let source = match &self.range {
            Range::Array(e) => Some(e.evaluate(runtime)?),
            Range::Counted(..) => None,
        };
        let (start, items, total) = match (&self.range, &source) {
            (Range::Counted(a, b), _) => {
                let a = to_number(a.evaluate(runtime)?.as_view()) as i64;
                let b = to_number(b.evaluate(runtime)?.as_view()) as i64;
                (
                    a,
                    Items::Counted,
                    b.saturating_sub(a).saturating_add(1).max(0),
                )
            }
            (Range::Array(_), Some(src)) => {
                let items = self.items(src);
                let n = match &items {
                    Items::Values(v) => v.len() as i64,
                    Items::Counted => 0,
                };
                (0, items, n)
            }
            (Range::Array(_), None) => (0, Items::Values(Vec::new()), 0),
        };
        let offset = count_attr(&self.offset, runtime)?
            .unwrap_or(0)
            .clamp(0, total);
        let limit = count_attr(&self.limit, runtime)?
            .map_or(total - offset, |l| l.clamp(0, total - offset));
        if limit == 0 {
            if let Some(e) = &self.else_body {
                e.render_to(writer, runtime)?;
            }
            return Ok(());
        }
        // The whole loop's iterations are charged before the first one runs, so a
        // loop the budget cannot afford fails at once.
        charge(limit as u64)?;
        for step in 0..limit {
            // Nothing else in a body need charge the account; this keeps the deadline
            // checked (every 64th charge reads the clock).
            charge(0)?;
            let i = if self.reversed {
                offset + limit - 1 - step
            } else {
                offset + step
            };
            let counted;
            let item: &dyn ValueView = match &items {
                Items::Counted => {
                    counted = Value::scalar(start + i);
                    &counted
                }
                Items::Values(v) => v.get(i as usize).map_or(&Value::Nil, |v| v.as_view()),
            };
            let forloop = forloop(step, limit);
            let scope = Frame::new(
                runtime,
                vec![("forloop", &forloop), (self.var.as_str(), item)],
            );
            self.body.render_to(writer, &scope)?;
            if let Some(Interrupt::Break) = scope.registers().get_mut::<InterruptRegister>().reset()
            {
                break;
            }
        }
        Ok(())
    }
}

fn forloop(i: i64, len: i64) -> Value {
    let mut o = Object::new();
    o.insert("length".into(), Value::scalar(len));
    o.insert("index".into(), Value::scalar(i + 1));
    o.insert("index0".into(), Value::scalar(i));
    o.insert("rindex".into(), Value::scalar(len - i));
    o.insert("rindex0".into(), Value::scalar(len - i - 1));
    o.insert("first".into(), Value::scalar(i == 0));
    o.insert("last".into(), Value::scalar(i == len - 1));
    Value::Object(o)
}

/// `{% regex_replace "re" in %}subject{% with %}replacement{% endregex_replace %}`.
#[derive(Clone, Copy, Debug)]
pub struct RegexReplaceBlock {
    pub first: bool,
}

impl BlockReflection for RegexReplaceBlock {
    fn start_tag(&self) -> &str {
        if self.first {
            "regex_replace_first"
        } else {
            "regex_replace"
        }
    }
    fn end_tag(&self) -> &str {
        if self.first {
            "endregex_replace_first"
        } else {
            "endregex_replace"
        }
    }
    fn description(&self) -> &str {
        ""
    }
}

#[derive(Debug)]
struct RegexReplace {
    first: bool,
    pattern: Expression,
    subject: Template,
    with: Option<Template>,
}

impl ParseBlock for RegexReplaceBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let syntax = || {
            Error::with_msg(format!(
                "Syntax Error in {} tag - Valid syntax: {} pattern in",
                self.start_tag(),
                self.start_tag()
            ))
        };
        let pattern = match arguments.next().map(|t| t.expect_value()) {
            Some(TryMatchToken::Matches(e)) => e,
            _ => return Err(syntax()),
        };
        match arguments.next() {
            None => {}
            Some(t) if t.as_str() == "in" => arguments.expect_nothing()?,
            Some(_) => return Err(syntax()),
        }
        let (subject, with) = split_at_tag(&mut tokens, options, "with")?;
        Ok(Box::new(RegexReplace {
            first: self.first,
            pattern,
            subject: Template::new(subject),
            with,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

impl Renderable for RegexReplace {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let pattern = text(self.pattern.evaluate(runtime)?.as_view());
        let re = regex_util::compile(&pattern)?;
        let mut buf = CappedWriter::value();
        self.subject.render_to(&mut buf, runtime)?;
        let subject = buf.into_string();
        let out = regex_util::replace_with(&subject, &re, self.first, |caps, out| {
            let Some(with) = &self.with else {
                return Ok(());
            };
            let m = match_object(&re, caps, &subject);
            let named: Vec<(&str, Value)> = re
                .capture_names()
                .flatten()
                .map(|n| {
                    (
                        n,
                        caps.name(n)
                            .map_or(Value::Nil, |v| Value::scalar(v.as_str().to_owned())),
                    )
                })
                .collect();
            let mut bindings: Vec<(&str, &dyn ValueView)> = named
                .iter()
                .map(|(n, v)| (*n, v as &dyn ValueView))
                .collect();
            bindings.push(("match", &m));
            let scope = Frame::new(runtime, bindings);
            let mut buf = CappedWriter::value();
            with.render_to(&mut buf, &scope)?;
            out.push_str(&String::from_utf8_lossy(&buf.bytes));
            Ok(())
        })?;
        writer
            .write_all(out.as_bytes())
            .map_err(|e| Error::with_msg(e.to_string()))
    }
}
