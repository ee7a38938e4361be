//! The raw element tree of an XML feed, read beside feed-rs for the fields feed-rs
//! normalizes away and Huginn emits as written: dates with their own UTC offset
//! (feed-rs keeps only UTC), the iTunes strings (`itunes_explicit: "no"`,
//! `itunes_duration: "04:34"`), RSS authors as written (Huginn reads them as mail
//! addresses), `guid isPermaLink`, links and enclosure attributes unnormalized.
//! Names carry a fixed prefix for the namespaces the agent reads (`itunes:`, `dc:`,
//! `content:`, `atom:`, `rdf:`); RSS's own elements (any RSS version) have none.
//! Elements nested deeper than [`MAX_DEPTH`] are skipped, so a hostile document costs
//! no more than its (size-capped) bytes.

use quick_xml::NsReader;
use quick_xml::encoding::DecodingReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Levels of elements kept: rss > channel > item > itunes:category > itunes:category
/// needs five; a little room beyond for feeds that wrap things.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child called `name`, trimmed; `None` when absent or empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any child is in the namespace `prefix` (e.g. `"itunes:"`).
    pub fn has_prefixed(&self, prefix: &str) -> bool {
        self.children.iter().any(|c| c.name.starts_with(prefix))
    }
}

fn prefix(namespace: &str) -> &'static str {
    match namespace.trim_end_matches('/') {
        "http://www.itunes.com/dtds/podcast-1.0.dtd" => "itunes:",
        "http://purl.org/dc/elements/1.1" => "dc:",
        "http://purl.org/rss/1.0/modules/content" => "content:",
        "http://www.w3.org/2005/Atom" | "http://purl.org/atom/ns#" => "atom:",
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#" => "rdf:",
        // RSS 1.0, RSS 0.90 and the RSS 2.0 namespace some feeds declare.
        "http://purl.org/rss/1.0"
        | "http://my.netscape.com/rdf/simple/0.9"
        | "http://backend.userland.com/rss2" => "",
        _ => "?:",
    }
}

fn node(resolved: &ResolveResult<'_>, e: &quick_xml::events::BytesStart<'_>) -> Node {
    let ns = match resolved {
        ResolveResult::Bound(ns) => prefix(ns.as_ref()),
        ResolveResult::Unbound => "",
        ResolveResult::Unknown(_) => "?:",
    };
    let attrs = e
        .attributes()
        .flatten()
        .map(|a| {
            let value = quick_xml::escape::unescape(&a.value)
                .map_or_else(|_| a.value.to_string(), |v| v.to_string());
            (a.key.as_ref().to_string(), value)
        })
        .collect();
    Node {
        name: format!("{ns}{}", e.local_name().as_ref()),
        attrs,
        text: String::new(),
        children: Vec::new(),
    }
}

/// The document's root element, or `None` when `body` is not well-formed XML. The
/// text is decoded as the document declares (a BOM, or `encoding=` as feed-rs reads it).
pub fn read(body: &[u8]) -> Option<Node> {
    let mut reader = NsReader::from_reader(DecodingReader::new(body));
    let mut buf = Vec::new();
    // Open elements; `skipped` counts those below MAX_DEPTH that are not kept.
    let mut stack: Vec<Node> = Vec::new();
    let mut skipped = 0usize;
    loop {
        buf.clear();
        let (resolved, event) = reader.read_resolved_event_into(&mut buf).ok()?;
        match event {
            Event::Decl(d) => {
                if let Some(encoding) = d.encoder() {
                    reader.get_mut().set_encoding(encoding);
                }
            }
            Event::Start(e) => {
                if skipped > 0 || stack.len() >= MAX_DEPTH {
                    skipped += 1;
                } else {
                    stack.push(node(&resolved, &e));
                }
            }
            Event::Empty(e) if skipped == 0 && stack.len() < MAX_DEPTH => {
                let n = node(&resolved, &e);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(n),
                    None => return Some(n),
                }
            }
            Event::End(_) => {
                if skipped > 0 {
                    skipped -= 1;
                    continue;
                }
                let done = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Some(done),
                }
            }
            Event::Text(t) if skipped == 0 => push_text(&mut stack, &t),
            Event::CData(t) if skipped == 0 => push_text(&mut stack, &t),
            Event::GeneralRef(r) if skipped == 0 => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&r)
                        .map_or_else(|| format!("&{};", &*r), str::to_string),
                };
                push_text(&mut stack, &resolved);
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

fn push_text(stack: &mut [Node], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

/// The channel (or Atom feed) element and the entries, in document order, as feed-rs
/// finds them: RSS 0.9x/2.0 items in `channel`, RSS 1.0 items beside it, Atom entries.
pub fn split(mut root: Node) -> Option<(Node, Vec<Node>)> {
    match root.name.as_str() {
        "rss" => {
            let pos = root.children.iter().position(|c| c.name == "channel")?;
            let mut channel = root.children.swap_remove(pos);
            let entries = take(&mut channel, "item");
            Some((channel, entries))
        }
        "rdf:RDF" => {
            let entries = take(&mut root, "item");
            let images = take(&mut root, "image");
            let pos = root.children.iter().position(|c| c.name == "channel")?;
            let mut channel = root.children.swap_remove(pos);
            // RSS 1.0's channel points at its image (`rdf:resource`); the image is beside it.
            channel.children.extend(images);
            Some((channel, entries))
        }
        "atom:feed" => {
            let entries = take(&mut root, "atom:entry");
            Some((root, entries))
        }
        _ => None,
    }
}

fn take(parent: &mut Node, name: &str) -> Vec<Node> {
    let (taken, kept) = std::mem::take(&mut parent.children)
        .into_iter()
        .partition(|c| c.name == name);
    parent.children = kept;
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_namespace_prefixes_and_text_is_unescaped() {
        let root = read(br#"<?xml version="1.0"?><rss xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><item><dc:creator>A &amp; B</dc:creator><itunes:image href="http://i/x.jpg"/><pubDate><![CDATA[Sun, 22 Nov 2026 10:00:00 -0700]]></pubDate></item></channel></rss>"#).unwrap();
        let (channel, items) = split(root).unwrap();
        assert!(channel.children.is_empty());
        assert_eq!(items[0].text_of("dc:creator"), Some("A & B"));
        assert_eq!(
            items[0].child("itunes:image").unwrap().attr("href"),
            Some("http://i/x.jpg")
        );
        assert_eq!(
            items[0].text_of("pubDate"),
            Some("Sun, 22 Nov 2026 10:00:00 -0700")
        );
    }

    #[test]
    fn the_declared_encoding_is_read() {
        let mut body =
            br#"<?xml version="1.0" encoding="ISO-8859-1"?><rss><channel><item><author>Bj"#
                .to_vec();
        body.push(0xF6); // ö in Latin-1
        body.extend_from_slice(b"rn Ek</author></item></channel></rss>");
        let (_, items) = split(read(&body).unwrap()).unwrap();
        assert_eq!(items[0].text_of("author"), Some("Bj\u{f6}rn Ek"));
    }

    #[test]
    fn deep_nesting_is_skipped_not_kept() {
        let deep = format!(
            "<rss>{}{}</rss>",
            "<a>".repeat(10_000),
            "</a>".repeat(10_000)
        );
        let root = read(deep.as_bytes()).unwrap();
        let mut depth = 0;
        let mut n = &root;
        while let Some(c) = n.children.first() {
            depth += 1;
            n = c;
        }
        assert_eq!(depth, MAX_DEPTH - 1);
        assert!(read(b"<rss><a></rss>").is_none());
    }
}
