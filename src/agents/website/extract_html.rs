//! HTML and XML documents: node sets chosen by a CSS selector or an XPath, then each
//! node's `value` XPath, as Huginn does with Nokogiri.
//!
//! Crates (pure Rust, nothing to install): `scraper` parses HTML with html5ever (the
//! parser the rss agent's `clean` already uses through ammonia) and matches CSS with
//! Servo's `selectors`; `sxd-document` + `sxd-xpath` give a complete XPath 1.0 (axes,
//! functions such as `normalize-space`, `count`, `substring-after`) and an XML parser.
//! The HTML tree is copied into an sxd document once, and CSS matches are recorded
//! during that copy, so a `css` node set and an `xpath` one are nodes of one document
//! and `value` runs the same way on both. Differences from Nokogiri (libxml2) found:
//! html5ever repairs broken HTML as browsers do (libxml2 sometimes differently);
//! on xml, `css` is translated to XPath ([`super::css_xml`], simple selectors only); for
//! xml, namespaces are stripped unless `use_namespaces`, and with it the prefixes are
//! the document's own plus `xmlns` for the root's default namespace, as Nokogiri.
//!
//! Bounds: an XPath's length, `//` steps and nesting; a document's element depth; the
//! nodes one selection may take; the total size and the time of one page's values.

use std::time::{Duration, Instant};

use serde_json::Value;
use sxd_document::Package;
use sxd_document::dom::{self, ChildOfElement, ChildOfRoot, Document};
use sxd_xpath::nodeset::Node;
use sxd_xpath::{Context, Factory, XPath};

use super::error::{ExprError, ExtractError};
use super::extract::{Extractor, How, Select};
use super::options::MAX_VALUES;

pub(super) const MAX_EXPR_CHARS: usize = 2000;
/// `//` (descendant) steps in one XPath: each may multiply the nodes visited.
pub(super) const MAX_DESCENDANT_STEPS: usize = 4;
/// Brackets and parentheses nested in one XPath (the parser recurses on them).
pub(super) const MAX_NESTING: usize = 32;
/// Elements nested in a document (evaluation and copying walk this deep).
pub(super) const MAX_DEPTH: usize = 512;
/// Characters of values one page may give, all extractions together.
pub(super) const MAX_OUTPUT: usize = 64 * 1024 * 1024;
/// Time one page's extraction may take.
pub(super) const MAX_TIME: Duration = Duration::from_secs(10);

pub fn check_css(css: &str) -> Result<(), ExprError> {
    if css.chars().count() > MAX_EXPR_CHARS {
        return Err(ExprError::TooLong);
    }
    scraper::Selector::parse(css)
        .map(|_| ())
        .map_err(|e| ExprError::Css(e.to_string().replace('\n', "; ")))
}

pub fn check_xpath(x: &str) -> Result<(), ExprError> {
    compile(x).map(|_| ())
}

fn compile(x: &str) -> Result<XPath, ExprError> {
    if x.chars().count() > MAX_EXPR_CHARS {
        return Err(ExprError::TooLong);
    }
    let steps = x.matches("//").count() + x.matches("descendant").count();
    if steps > MAX_DESCENDANT_STEPS {
        return Err(ExprError::TooManyDescendantSteps(steps));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in x.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(ExprError::TooDeep(deepest));
    }
    Factory::new()
        .build(x)
        .map_err(|e| ExprError::XPath(e.to_string()))?
        .ok_or(ExprError::EmptyXPath)
}

/// `name`'s expression in `option` is refused.
fn refused(name: &str, option: &'static str) -> impl FnOnce(ExprError) -> ExtractError {
    move |source| ExtractError::Expr {
        name: name.to_string(),
        option,
        source,
    }
}

/// Each extraction's values, in `extract` order; `values[i]` is extraction i's `value`
/// (its template already rendered).
pub fn values(
    body: &str,
    xml: bool,
    use_namespaces: bool,
    extractors: &[Extractor],
    value_exprs: &[String],
) -> Result<Vec<Vec<Value>>, ExtractError> {
    let css = css_selectors(extractors);
    let package = if xml {
        xml_package(body, use_namespaces)?
    } else {
        Package::new()
    };
    let doc = package.as_document();
    let mut context = Context::new();
    let matched = if xml {
        if use_namespaces {
            register_namespaces(&doc, &mut context);
        }
        vec![Vec::new(); css.len()]
    } else {
        let html = scraper::Html::parse_document(body);
        from_html(&html, &doc, &css)?
    };
    let mut run = Run {
        context: &context,
        html: !xml,
        output: 0,
        started: Instant::now(),
    };
    let mut out = Vec::with_capacity(extractors.len());
    for (i, e) in extractors.iter().enumerate() {
        let How::Node {
            select,
            raw,
            single_array,
            ..
        } = &e.how
        else {
            return Err(ExtractError::WrongKind {
                name: e.name.clone(),
                needs: "\"css\" or \"xpath\"",
            });
        };
        let nodes: Vec<Node> = match select {
            Select::Css(c) if xml => {
                let x = super::css_xml::to_xpath(c)
                    .map_err(|err| refused(&e.name, "css")(err.into()))?;
                nodeset(&x, &context, &doc, &e.name)?
            }
            Select::Css(_) => matched
                .get(i)
                .map(|m| m.iter().map(|el| Node::Element(*el)).collect())
                .unwrap_or_default(),
            Select::XPath(x) => nodeset(x, &context, &doc, &e.name)?,
        };
        if nodes.len() > MAX_VALUES {
            return Err(ExtractError::TooManyNodes {
                name: e.name.clone(),
                count: nodes.len(),
            });
        }
        let expr = value_exprs.get(i).map_or(".", String::as_str);
        let xp = compile(expr).map_err(refused(&e.name, "value"))?;
        let mut vals = Vec::with_capacity(nodes.len());
        for n in nodes {
            vals.push(run.value(&xp, n, *raw, &e.name)?);
        }
        out.push(if *single_array {
            vec![Value::Array(vals)]
        } else {
            vals
        });
    }
    Ok(out)
}

/// The compiled selector of each CSS extraction (None for the others).
fn css_selectors(extractors: &[Extractor]) -> Vec<Option<scraper::Selector>> {
    extractors
        .iter()
        .map(|e| match &e.how {
            How::Node {
                select: Select::Css(c),
                ..
            } => scraper::Selector::parse(c).ok(),
            _ => None,
        })
        .collect()
}

/// The XML page, parsed; with its namespaces stripped unless `use_namespaces`.
fn xml_package(body: &str, use_namespaces: bool) -> Result<Package, ExtractError> {
    let parsed = parse_xml(body)?;
    if use_namespaces {
        return Ok(parsed);
    }
    let stripped = Package::new();
    copy_without_namespaces(&parsed.as_document(), &stripped.as_document())?;
    Ok(stripped)
}

/// The nodes an XPath selects from the document's root.
fn nodeset<'d>(
    x: &str,
    context: &Context<'d>,
    doc: &Document<'d>,
    name: &str,
) -> Result<Vec<Node<'d>>, ExtractError> {
    let xp = compile(x).map_err(refused(name, "xpath"))?;
    match xp.evaluate(context, doc.root()) {
        Ok(sxd_xpath::Value::Nodeset(ns)) => Ok(ns.document_order()),
        Ok(_) => Err(ExtractError::NotANodeSet),
        Err(err) => Err(ExtractError::Evaluate {
            name: name.to_string(),
            option: "xpath",
            message: err.to_string(),
        }),
    }
}

struct Run<'c, 'd> {
    context: &'c Context<'d>,
    html: bool,
    output: usize,
    started: Instant,
}

impl<'d> Run<'_, 'd> {
    /// `value` on one node, made JSON as Huginn's `jsonify` does.
    fn value(
        &mut self,
        xp: &XPath,
        node: Node<'d>,
        raw: bool,
        name: &str,
    ) -> Result<Value, ExtractError> {
        if self.started.elapsed() > MAX_TIME {
            return Err(ExtractError::TooSlow);
        }
        let v = xp
            .evaluate(self.context, node)
            .map_err(|e| ExtractError::Evaluate {
                name: name.to_string(),
                option: "value",
                message: e.to_string(),
            })?;
        let out = match v {
            sxd_xpath::Value::Boolean(b) if raw => Value::Bool(b),
            sxd_xpath::Value::Boolean(b) => Value::String(b.to_string()),
            sxd_xpath::Value::Number(n) => number(n, raw),
            sxd_xpath::Value::String(s) => {
                self.spend(s.len())?;
                Value::String(s)
            }
            sxd_xpath::Value::Nodeset(ns) => {
                let parts = ns
                    .document_order()
                    .into_iter()
                    .map(|n| {
                        let mut s = String::new();
                        write_node(n, self.html, &mut s, MAX_OUTPUT - self.output)?;
                        self.spend(s.len())?;
                        Ok(s)
                    })
                    .collect::<Result<Vec<String>, ExtractError>>()?;
                if raw {
                    Value::Array(parts.into_iter().map(Value::String).collect())
                } else {
                    Value::String(parts.concat())
                }
            }
        };
        Ok(out)
    }

    fn spend(&mut self, n: usize) -> Result<(), ExtractError> {
        self.output += n;
        if self.output > MAX_OUTPUT {
            return Err(ExtractError::TooMuchOutput);
        }
        Ok(())
    }
}

/// XPath numbers are floats: a whole one is an integer, as Huginn's `handle_float`.
fn number(n: f64, raw: bool) -> Value {
    let v = if n.is_nan() {
        Value::String("NaN".into())
    } else if n.is_infinite() {
        Value::String(if n > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    };
    match v {
        Value::Number(num) if !raw => Value::String(num.to_string()),
        other => other,
    }
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

fn escape(s: &str, attr: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// A node as Nokogiri's `to_s`: markup for elements and text (escaped), the value of an
/// attribute. Stops with an error past `room` characters.
fn write_node(n: Node<'_>, html: bool, out: &mut String, room: usize) -> Result<(), ExtractError> {
    if out.len() > room {
        return Err(ExtractError::TooMuchOutput);
    }
    match n {
        Node::Root(r) => {
            for c in r.children() {
                let child = match c {
                    ChildOfRoot::Element(e) => Node::Element(e),
                    ChildOfRoot::Comment(c) => Node::Comment(c),
                    ChildOfRoot::ProcessingInstruction(p) => Node::ProcessingInstruction(p),
                };
                write_node(child, html, out, room)?;
            }
        }
        Node::Element(e) => {
            let name = e.name().local_part();
            out.push('<');
            out.push_str(name);
            for a in e.attributes() {
                out.push(' ');
                out.push_str(a.name().local_part());
                out.push_str("=\"");
                escape(a.value(), true, out);
                out.push('"');
            }
            let children = e.children();
            if html && VOID.contains(&name) {
                out.push('>');
                return Ok(());
            }
            if !html && children.is_empty() {
                out.push_str("/>");
                return Ok(());
            }
            out.push('>');
            for c in children {
                write_node(child_node(c), html, out, room)?;
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Node::Attribute(a) => out.push_str(a.value()),
        Node::Text(t) => escape(t.text(), false, out),
        Node::Comment(c) => {
            out.push_str("<!--");
            out.push_str(c.text());
            out.push_str("-->");
        }
        Node::ProcessingInstruction(p) => {
            out.push_str("<?");
            out.push_str(p.target());
            if let Some(v) = p.value() {
                out.push(' ');
                out.push_str(v);
            }
            out.push_str("?>");
        }
        Node::Namespace(ns) => out.push_str(ns.uri()),
    }
    Ok(())
}

fn child_node(c: ChildOfElement<'_>) -> Node<'_> {
    match c {
        ChildOfElement::Element(e) => Node::Element(e),
        ChildOfElement::Text(t) => Node::Text(t),
        ChildOfElement::Comment(c) => Node::Comment(c),
        ChildOfElement::ProcessingInstruction(p) => Node::ProcessingInstruction(p),
    }
}

#[derive(Clone, Copy)]
enum Parent<'d> {
    Root(dom::Root<'d>),
    El(dom::Element<'d>),
}

impl<'d> Parent<'d> {
    fn element(self, e: dom::Element<'d>) {
        match self {
            Parent::Root(r) => r.append_child(e),
            Parent::El(p) => p.append_child(e),
        }
    }
}

/// Copies the parsed HTML into `doc` (iteratively: a deep document cannot overflow the
/// stack) and returns, per CSS selector, the elements it matches in document order.
fn from_html<'d>(
    html: &scraper::Html,
    doc: &Document<'d>,
    css: &[Option<scraper::Selector>],
) -> Result<Vec<Vec<dom::Element<'d>>>, ExtractError> {
    let mut matched = vec![Vec::new(); css.len()];
    let mut stack: Vec<_> = html
        .tree
        .root()
        .children()
        .rev()
        .map(|c| (c, Parent::Root(doc.root()), 1usize))
        .collect();
    while let Some((node, parent, depth)) = stack.pop() {
        match node.value() {
            scraper::Node::Element(el) => {
                if depth > MAX_DEPTH {
                    return Err(ExtractError::TooDeep);
                }
                let e = doc.create_element(el.name());
                for (k, v) in el.attrs() {
                    e.set_attribute_value(k, v);
                }
                parent.element(e);
                if let Some(er) = scraper::ElementRef::wrap(node) {
                    for (i, s) in css.iter().enumerate() {
                        if let Some(s) = s
                            && s.matches(&er)
                            && let Some(m) = matched.get_mut(i)
                        {
                            m.push(e);
                        }
                    }
                }
                stack.extend(node.children().rev().map(|c| (c, Parent::El(e), depth + 1)));
            }
            scraper::Node::Text(t) => {
                if let Parent::El(p) = parent {
                    p.append_child(doc.create_text(t));
                }
            }
            scraper::Node::Comment(c) => {
                let comment = doc.create_comment(c);
                match parent {
                    Parent::Root(r) => r.append_child(comment),
                    Parent::El(p) => p.append_child(comment),
                }
            }
            _ => {}
        }
    }
    Ok(matched)
}

/// Parses XML after checking its nesting depth (the parser recurses per element).
fn parse_xml(body: &str) -> Result<Package, ExtractError> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let bytes = body.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'<' {
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            _ => {}
        }
        if i > 0 && bytes[i - 1] == b'/' {
            depth = depth.saturating_sub(1);
        }
    }
    if deepest > MAX_DEPTH * 2 {
        return Err(ExtractError::TooDeep);
    }
    sxd_document::parser::parse(body.trim_start_matches('\u{feff}'))
        .map_err(|e| ExtractError::NotXml(e.to_string()))
}

/// Nokogiri's `remove_namespaces!`: the same tree with local names only.
fn copy_without_namespaces(from: &Document<'_>, to: &Document<'_>) -> Result<(), ExtractError> {
    let mut stack: Vec<(ChildOfElement<'_>, Parent<'_>, usize)> = Vec::new();
    for c in from.root().children().into_iter().rev() {
        match c {
            ChildOfRoot::Element(e) => {
                stack.push((ChildOfElement::Element(e), Parent::Root(to.root()), 1))
            }
            ChildOfRoot::Comment(_) | ChildOfRoot::ProcessingInstruction(_) => {}
        }
    }
    while let Some((node, parent, depth)) = stack.pop() {
        match node {
            ChildOfElement::Element(src) => {
                if depth > MAX_DEPTH {
                    return Err(ExtractError::TooDeep);
                }
                let e = to.create_element(src.name().local_part());
                for a in src.attributes() {
                    e.set_attribute_value(a.name().local_part(), a.value());
                }
                parent.element(e);
                stack.extend(
                    src.children()
                        .into_iter()
                        .rev()
                        .map(|c| (c, Parent::El(e), depth + 1)),
                );
            }
            ChildOfElement::Text(t) => {
                if let Parent::El(p) = parent {
                    p.append_child(to.create_text(t.text()));
                }
            }
            ChildOfElement::Comment(c) => {
                if let Parent::El(p) = parent {
                    p.append_child(to.create_comment(c.text()));
                }
            }
            ChildOfElement::ProcessingInstruction(_) => {}
        }
    }
    Ok(())
}

/// The prefixes an XPath may use with `use_namespaces`: those the document's elements
/// are written with, and `xmlns` for the root element's default namespace (Nokogiri).
fn register_namespaces(doc: &Document<'_>, context: &mut Context<'_>) {
    let Some(root) = doc.root().children().into_iter().find_map(|c| c.element()) else {
        return;
    };
    if let Some(uri) = root.name().namespace_uri() {
        context.set_namespace("xmlns", uri);
    }
    let mut stack = vec![(root, 0usize)];
    let mut seen = 0usize;
    while let Some((e, depth)) = stack.pop() {
        seen += 1;
        if seen > 100_000 || depth > MAX_DEPTH {
            break;
        }
        if let (Some(uri), Some(prefix)) = (e.name().namespace_uri(), e.preferred_prefix()) {
            context.set_namespace(prefix, uri);
        }
        for ns in e.namespaces_in_scope() {
            context.set_namespace(ns.prefix(), ns.uri());
        }
        stack.extend(
            e.children()
                .into_iter()
                .filter_map(|c| c.element())
                .map(|c| (c, depth + 1)),
        );
    }
}
