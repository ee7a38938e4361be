//! The RSS 2.0 feed, built with the `rss` crate (which escapes text and attribute
//! values, and splits `]]>` across CDATA sections).
//!
//! What the crate cannot know is done here, so that no payload can make the feed
//! malformed: characters XML 1.0 forbids (control characters other than tab, newline
//! and carriage return; U+FFFE/U+FFFF) are removed from every text and attribute, and
//! element and attribute names made from template keys are turned into valid XML
//! names (Huginn's dasherizing: `media_url` -> `media-url`). A prefix such as `media:`
//! is kept, and its namespace declared, only for the well-known namespaces; any other
//! `a:b` becomes `a-b`, so a feed never uses an undeclared prefix.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Enclosure, Guid, Item};
use serde_json::Value;

use super::FeedDoc;
use super::item::Node;
use super::spec::FeedSpec;

/// Namespaces a feed may use, by their conventional prefix.
const KNOWN_NAMESPACES: &[(&str, &str)] = &[
    ("atom", "http://www.w3.org/2005/Atom"),
    ("content", "http://purl.org/rss/1.0/modules/content/"),
    ("dc", "http://purl.org/dc/elements/1.1/"),
    ("dcterms", "http://purl.org/dc/terms/"),
    ("georss", "http://www.georss.org/georss"),
    ("itunes", "http://www.itunes.com/dtds/podcast-1.0.dtd"),
    ("media", "http://search.yahoo.com/mrss/"),
    ("slash", "http://purl.org/rss/1.0/modules/slash/"),
    ("sy", "http://purl.org/rss/1.0/modules/syndication/"),
];

type Namespaces = BTreeMap<String, String>;

fn declare(ns: &mut Namespaces, prefix: &str) -> bool {
    match KNOWN_NAMESPACES.iter().find(|(p, _)| *p == prefix) {
        Some((p, url)) => {
            ns.insert((*p).to_string(), (*url).to_string());
            true
        }
        None => false,
    }
}

/// Is `c` allowed in an XML 1.0 document at all?
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Removes the characters XML 1.0 cannot carry (escaping cannot help: `&#1;` is not
/// allowed either).
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|c| is_xml_char(*c)).collect())
    }
}

fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// ActiveSupport's key renaming: underscores and spaces inside become dashes, leading
/// and trailing underscores stay.
fn dasherize(key: &str) -> String {
    let key = key.trim();
    let left = key.len() - key.trim_start_matches('_').len();
    let right = key.len() - key.trim_end_matches('_').len();
    if left == key.len() {
        return key.to_string();
    }
    let middle = &key[left..key.len() - right];
    format!(
        "{}{}{}",
        &key[..left],
        middle.replace(['_', ' '], "-"),
        &key[key.len() - right..]
    )
}

/// A valid XML name (no colon) from any text.
fn ncname(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        out.push(if is_name_char(c) { c } else { '-' });
    }
    match out.chars().next() {
        Some(c) if is_name_start(c) => out,
        _ => format!("_{out}"),
    }
}

/// The element or attribute name for a template key.
fn xml_name(raw: &str, rename: bool, ns: &mut Namespaces) -> String {
    let raw = raw.trim();
    if let Some((prefix, local)) = raw.split_once(':')
        && !local.is_empty()
        && !local.contains(':')
        && declare(ns, prefix)
    {
        let local = if rename {
            dasherize(local)
        } else {
            local.to_string()
        };
        return format!("{prefix}:{}", ncname(&local));
    }
    let name = if rename {
        dasherize(raw)
    } else {
        raw.to_string()
    };
    ncname(&name)
}

fn attr_name(raw: &str, ns: &mut Namespaces) -> String {
    let raw = raw.trim();
    if let Some(local) = raw.strip_prefix("xml:")
        && !local.is_empty()
    {
        // The `xml` prefix is always bound (xml:lang, xml:base).
        return format!("xml:{}", ncname(local));
    }
    if raw == "xmlns" || raw.starts_with("xmlns:") {
        // Declaring namespaces from a payload would let it rebind prefixes.
        return ncname(&raw.replace(':', "-")).replacen("xmlns", "_xmlns", 1);
    }
    xml_name(raw, false, ns)
}

fn text_of(node: &Node) -> Option<String> {
    match node {
        Node::Scalar(Value::Null) => None,
        Node::Scalar(_) => node.scalar_text().map(|s| clean(&s).into_owned()),
        // Lists and objects as attribute values or text: their JSON.
        other => serde_json::to_string(other)
            .ok()
            .map(|s| clean(&s).into_owned()),
    }
}

fn markers(fields: &[(String, Node)]) -> bool {
    fields
        .iter()
        .any(|(k, _)| k == "_attributes" || k == "_contents")
}

/// Children keyed by position, so they are written in the template's order.
fn ordered(children: Vec<Extension>) -> BTreeMap<String, Vec<Extension>> {
    children
        .into_iter()
        .enumerate()
        .map(|(i, e)| (format!("{i:05}"), vec![e]))
        .collect()
}

/// Huginn's `to_xml` of one item field: scalars are text, arrays repeat the element,
/// objects nest, `{_attributes, _contents}` gives an element with attributes.
/// Elements that would be empty and carry no attributes are left out.
fn elements(key: &str, node: &Node, ns: &mut Namespaces) -> Vec<Extension> {
    match node {
        Node::Scalar(Value::Null) => Vec::new(),
        Node::Scalar(_) => vec![Extension {
            name: xml_name(key, true, ns),
            value: text_of(node),
            ..Extension::default()
        }],
        Node::Array(items) => items.iter().flat_map(|n| elements(key, n, ns)).collect(),
        Node::Object(fields) if markers(fields) => {
            let mut ext = Extension {
                // Huginn does not rename the tag of an `_attributes` node.
                name: xml_name(key, false, ns),
                ..Extension::default()
            };
            if let Some(Node::Object(attrs)) = Node::get(fields, "_attributes") {
                for (k, v) in attrs {
                    if let Some(text) = text_of(v) {
                        ext.attrs.insert(attr_name(k, ns), text);
                    }
                }
            }
            match Node::get(fields, "_contents") {
                Some(Node::Object(children)) => {
                    let kids = children
                        .iter()
                        .flat_map(|(k, v)| elements(k, v, ns))
                        .collect();
                    ext.children = ordered(kids);
                }
                Some(other) => ext.value = text_of(other),
                None => {}
            }
            vec![ext]
        }
        Node::Object(fields) => {
            let kids: Vec<Extension> = fields
                .iter()
                .flat_map(|(k, v)| elements(k, v, ns))
                .collect();
            if kids.is_empty() {
                return Vec::new();
            }
            vec![Extension {
                name: xml_name(key, true, ns),
                children: ordered(kids),
                ..Extension::default()
            }]
        }
    }
    .into_iter()
    .filter(|e| e.value.is_some() || !e.attrs.is_empty() || !e.children.is_empty())
    .collect()
}

fn scalar(node: &Node) -> Option<String> {
    match node {
        Node::Scalar(Value::Null) => None,
        Node::Scalar(_) => text_of(node),
        _ => None,
    }
}

/// `{_attributes: {...}, _contents: x}` as (attributes, contents), when it is one.
type Fields = [(String, Node)];

fn marked(node: &Node) -> Option<(&Fields, Option<&Node>)> {
    match node {
        Node::Object(fields) if markers(fields) => {
            let attrs = match Node::get(fields, "_attributes") {
                Some(Node::Object(a)) => a.as_slice(),
                _ => &[],
            };
            Some((attrs, Node::get(fields, "_contents")))
        }
        _ => None,
    }
}

fn attr<'a>(attrs: &'a [(String, Node)], name: &str) -> Option<&'a Node> {
    Node::get(attrs, name)
}

fn guid_of(node: &Node) -> Option<Guid> {
    let (attrs, contents) = marked(node)?;
    let value = scalar(contents?)?;
    if attrs.iter().any(|(k, _)| k != "isPermaLink") {
        return None;
    }
    let permalink = attr(attrs, "isPermaLink")
        .and_then(scalar)
        .is_none_or(|v| v != "false");
    Some(Guid { value, permalink })
}

fn enclosure_of(node: &Node) -> Option<Enclosure> {
    let (attrs, contents) = marked(node)?;
    if contents.is_some()
        || attrs
            .iter()
            .any(|(k, _)| !matches!(k.as_str(), "url" | "type" | "length"))
    {
        return None;
    }
    Some(Enclosure {
        url: attr(attrs, "url").and_then(scalar)?,
        length: attr(attrs, "length")
            .and_then(scalar)
            .unwrap_or_else(|| "0".into()),
        mime_type: attr(attrs, "type").and_then(scalar).unwrap_or_default(),
    })
}

fn category_of(node: &Node) -> Option<Category> {
    if let Some(name) = scalar(node) {
        return Some(Category { name, domain: None });
    }
    let (attrs, contents) = marked(node)?;
    if attrs.iter().any(|(k, _)| k != "domain") {
        return None;
    }
    Some(Category {
        name: scalar(contents?)?,
        domain: attr(attrs, "domain").and_then(scalar),
    })
}

/// One item: RSS's own fields through the crate's typed `Item` where the value fits
/// them, every other field as an element in the template's order.
fn item(fields: &[(String, Node)], ns: &mut Namespaces) -> Item {
    let mut it = Item::default();
    let mut extra: Vec<Extension> = Vec::new();
    for (key, value) in fields {
        let handled = match key.as_str() {
            "title" => scalar(value).map(|v| it.title = Some(v)).is_some(),
            "link" => scalar(value).map(|v| it.link = Some(v)).is_some(),
            "description" => scalar(value).map(|v| it.description = Some(v)).is_some(),
            "author" => scalar(value).map(|v| it.author = Some(v)).is_some(),
            "comments" => scalar(value).map(|v| it.comments = Some(v)).is_some(),
            "pubDate" => scalar(value).map(|v| it.pub_date = Some(v)).is_some(),
            "guid" => guid_of(value).map(|g| it.guid = Some(g)).is_some(),
            "enclosure" => enclosure_of(value)
                .map(|e| it.enclosure = Some(e))
                .is_some(),
            "category" => {
                let list: Option<Vec<Category>> = match value {
                    Node::Array(items) => items.iter().map(category_of).collect(),
                    one => category_of(one).map(|c| vec![c]),
                };
                list.map(|l| it.categories.extend(l)).is_some()
            }
            _ => false,
        };
        if !handled {
            extra.extend(elements(key, value, ns));
        }
    }
    // The map's keys only order the elements; the names written are the extensions'.
    let mut map = ExtensionMap::new();
    map.insert(String::new(), ordered(extra));
    it.extensions = map;
    it
}

fn channel_extension(ns: &mut Namespaces, prefix: &str, ext: Extension) -> (String, Extension) {
    declare(ns, prefix);
    (prefix.to_string(), ext)
}

/// The whole feed as an XML document.
pub fn render(doc: &FeedDoc, spec: &FeedSpec) -> Result<String, rss::Error> {
    let mut ns = Namespaces::new();
    declare(&mut ns, "atom");
    if spec.ns_dc {
        declare(&mut ns, "dc");
    }
    if spec.ns_media {
        declare(&mut ns, "media");
    }
    if spec.ns_itunes {
        declare(&mut ns, "itunes");
    }
    let items: Vec<Item> = doc.items.iter().map(|f| item(f, &mut ns)).collect();
    let mut self_link = Extension {
        name: "atom:link".into(),
        ..Extension::default()
    };
    self_link
        .attrs
        .insert("href".into(), clean(&doc.self_url).into_owned());
    self_link.attrs.insert("rel".into(), "self".into());
    self_link
        .attrs
        .insert("type".into(), "application/rss+xml".into());
    let icon = Extension {
        name: "atom:icon".into(),
        value: Some(clean(&doc.icon).into_owned()),
        ..Extension::default()
    };
    let mut channel_ext: Vec<(String, Extension)> = vec![
        channel_extension(&mut ns, "atom", self_link),
        channel_extension(&mut ns, "atom", icon),
    ];
    if spec.ns_itunes {
        let mut image = Extension {
            name: "itunes:image".into(),
            ..Extension::default()
        };
        image
            .attrs
            .insert("href".into(), clean(&doc.icon).into_owned());
        channel_ext.push(channel_extension(&mut ns, "itunes", image));
    }
    let mut extensions = ExtensionMap::new();
    for (i, (prefix, ext)) in channel_ext.into_iter().enumerate() {
        extensions
            .entry(prefix)
            .or_default()
            .insert(format!("{i:02}"), vec![ext]);
    }
    let built = super::time::rfc2822(&doc.built_at.fixed_offset());
    let channel = Channel {
        title: clean(&doc.title).into_owned(),
        link: clean(&doc.link).into_owned(),
        description: clean(&doc.description).into_owned(),
        last_build_date: Some(built.clone()),
        pub_date: Some(built),
        ttl: Some(spec.ttl_minutes.to_string()),
        generator: Some(concat!("muninn ", env!("CARGO_PKG_VERSION")).to_string()),
        items,
        extensions,
        namespaces: ns,
        ..Channel::default()
    };
    let bytes = channel.write_to(Vec::new())?;
    // The crate writes UTF-8 from `&str`s only.
    String::from_utf8(bytes).map_err(|e| rss::Error::Utf8(e.utf8_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_valid_and_dasherized() {
        let mut ns = Namespaces::new();
        assert_eq!(xml_name("media_url", true, &mut ns), "media-url");
        assert_eq!(xml_name("_private_", true, &mut ns), "_private_");
        assert_eq!(xml_name("my key", true, &mut ns), "my-key");
        assert_eq!(xml_name("1st", true, &mut ns), "_1st");
        assert_eq!(xml_name("<x>", true, &mut ns), "_-x-");
        assert_eq!(xml_name("", true, &mut ns), "_");
        assert_eq!(
            xml_name("media:thumb_nail", true, &mut ns),
            "media:thumb-nail"
        );
        assert_eq!(xml_name("evil:thing", true, &mut ns), "evil-thing");
        assert_eq!(xml_name("ünï_cödé", true, &mut ns), "ünï-cödé");
        assert!(ns.contains_key("media") && !ns.contains_key("evil"));
        assert_eq!(attr_name("xmlns:media", &mut ns), "_xmlns-media");
        assert_eq!(attr_name("xml:lang", &mut ns), "xml:lang");
    }

    #[test]
    fn clean_drops_only_what_xml_forbids() {
        assert_eq!(clean("a\u{0}b\u{1b}c\td\ne\r\u{FFFE}😀é"), "abc\td\ne\r😀é");
        assert!(matches!(clean("plain <&>"), Cow::Borrowed(_)));
    }

    #[test]
    fn elements_follow_huginns_rules() {
        let mut ns = Namespaces::new();
        let node = Node::from_value(
            &json!({"_attributes": {"url": "u", "n": 3}, "_contents": {"media:title": "t", "sub_key": ["a", "b"], "gone": []}}),
        );
        let out = elements("media:content", &node, &mut ns);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "media:content");
        assert_eq!(out[0].attrs.get("n").map(String::as_str), Some("3"));
        let names: Vec<&str> = out[0]
            .children
            .values()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["media:title", "sub-key", "sub-key"]);
        assert!(elements("x", &Node::Object(vec![]), &mut ns).is_empty());
        assert!(elements("x", &Node::Array(vec![]), &mut ns).is_empty());
    }
}
