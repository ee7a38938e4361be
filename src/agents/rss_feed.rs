//! A fetched RSS 2.0 (the `rss` crate) or Atom (`atom_syndication`) document as the rss
//! agent reads it: every entry's id, oldest first, and Huginn's event payload
//! ([`super::rss_entry`]) built only for the entries that are emitted, so a feed of
//! 150 000 entries costs 150 000 ids, not 150 000 payloads.

use serde_json::Value;

use super::rss_entry;

enum Doc {
    Rss(Box<rss::Channel>),
    Atom(Box<atom_syndication::Feed>),
}

pub struct ParsedFeed {
    doc: Doc,
    /// (index in the document, entry id), oldest first.
    order: Vec<(usize, String)>,
}

/// Parses `body`, fetched from `url`.
pub fn parse(body: &[u8], url: &str) -> Result<ParsedFeed, String> {
    if let Ok(channel) = rss::Channel::read_from(body) {
        let mut order: Vec<(usize, String)> = channel
            .items()
            .iter()
            .enumerate()
            .map(|(i, item)| (i, rss_id(item)))
            .collect();
        // RSS lists the newest first.
        order.reverse();
        return Ok(ParsedFeed {
            doc: Doc::Rss(Box::new(channel)),
            order,
        });
    }
    match atom_syndication::Feed::read_from(body) {
        Ok(f) => {
            let mut keyed: Vec<(String, usize, String)> = f
                .entries()
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let key = e.published().unwrap_or(e.updated()).to_rfc3339();
                    (key, i, e.id().to_string())
                })
                .collect();
            // Stable: entries with the same date keep the document's order.
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(ParsedFeed {
                doc: Doc::Atom(Box::new(f)),
                order: keyed.into_iter().map(|(_, i, id)| (i, id)).collect(),
            })
        }
        Err(e) => Err(format!(
            "the response from {url} is neither RSS nor Atom ({e})"
        )),
    }
}

fn rss_id(i: &rss::Item) -> String {
    let link = i.link().unwrap_or_default();
    i.guid()
        .map(|g| g.value().to_string())
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| {
            if link.is_empty() {
                i.title().unwrap_or_default().to_string()
            } else {
                link.to_string()
            }
        })
}

impl ParsedFeed {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Entry ids, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|(_, id)| id.as_str())
    }

    /// The event payload of the entry at `pos` (oldest first); `Null` past the end.
    /// `clean` sanitizes its HTML (the agent's `clean` option).
    pub fn entry(&self, pos: usize, clean: bool) -> Value {
        let Some((index, id)) = self.order.get(pos) else {
            return Value::Null;
        };
        match &self.doc {
            Doc::Rss(c) => c
                .items()
                .get(*index)
                .map_or(Value::Null, |i| rss_entry::rss_item(i, id, clean)),
            Doc::Atom(f) => f
                .entries()
                .get(*index)
                .map_or(Value::Null, |e| rss_entry::atom_entry(e, id, clean)),
        }
    }

    /// The feed's own fields (`include_feed_info`).
    pub fn info(&self, clean: bool) -> Value {
        match &self.doc {
            Doc::Rss(c) => rss_entry::rss_feed_info(c, clean),
            Doc::Atom(f) => rss_entry::atom_feed_info(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://x</link><description>d</description>
        <item><title>Two</title><link>http://x/2</link><guid>2</guid></item>
        <item><title>One</title><link>http://x/1</link><guid>1</guid></item></channel></rss>"#;
    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id><updated>2026-11-01T00:00:00Z</updated>
        <entry><title>E</title><id>urn:e</id><updated>2026-11-01T00:00:00Z</updated><link href="http://a/e"/></entry></feed>"#;

    #[test]
    fn parses_both_formats_oldest_first() {
        let f = parse(RSS.as_bytes(), "http://x/feed").unwrap();
        assert_eq!(f.ids().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(f.entry(0, false)["title"], "One");
        assert_eq!(f.entry(1, false)["url"], "http://x/2");
        assert_eq!(f.entry(2, false), Value::Null);
        assert_eq!(f.info(false)["title"], "T");
        let f = parse(ATOM.as_bytes(), "http://a").unwrap();
        assert_eq!(f.entry(0, false)["url"], "http://a/e");
        assert_eq!(f.entry(0, false)["id"], "urn:e");
        assert!(
            parse(b"<html/>", "http://h")
                .err()
                .unwrap()
                .contains("neither RSS nor Atom")
        );
    }
}
