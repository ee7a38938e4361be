//! A fetched feed as the rss agent reads it: RSS 0.9x/1.0/2.0, Atom or JSON Feed, parsed
//! by feed-rs, with the raw document beside it ([`super::rss_xml`] for XML, the JSON
//! value for JSON Feed) for the fields feed-rs normalizes away. It keeps every entry's
//! id, oldest first, and builds Huginn's event payload ([`super::rss_entry`]) only for
//! the entries that are emitted, so a feed of 150 000 entries costs 150 000 ids, not
//! 150 000 payloads.

use feed_rs::model::{Feed, FeedType};
use serde_json::Value;

use super::rss_entry::{self, Raw};
use super::rss_xml::{self, Node};

/// The raw document, entry by entry in the order feed-rs lists them.
enum RawDoc {
    Xml {
        channel: Node,
        entries: Vec<Node>,
    },
    Json {
        feed: Value,
    },
    /// The raw reading disagreed with feed-rs (it never should): feed-rs's values only.
    None,
}

pub struct ParsedFeed {
    feed: Feed,
    raw: RawDoc,
    /// (index in the document, entry id), oldest first.
    order: Vec<(usize, String)>,
}

/// A response that is no feed.
#[derive(Debug, thiserror::Error)]
#[error("the response from {url} is neither RSS nor Atom nor JSON Feed ({source})")]
pub struct NotAFeed {
    pub url: String,
    pub source: feed_rs::parser::ParseFeedError,
}

/// Parses `body`, fetched from `url`.
pub fn parse(body: &[u8], url: &str) -> Result<ParsedFeed, NotAFeed> {
    let feed = feed_rs::parser::Builder::new()
        .base_uri(Some(url))
        .build()
        .parse(body)
        .map_err(|source| NotAFeed {
            url: url.to_string(),
            source,
        })?;
    let raw = raw_doc(&feed, body);
    let ids: Vec<String> = feed
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| rss_entry::entry_id(&feed, e, raw_entry(&raw, i)))
        .collect();
    let order = match feed.feed_type {
        FeedType::Atom => {
            let mut keyed: Vec<(Option<chrono::DateTime<chrono::Utc>>, usize, String)> = ids
                .into_iter()
                .enumerate()
                .map(|(i, id)| {
                    let e = &feed.entries[i];
                    (e.published.or(e.updated), i, id)
                })
                .collect();
            // Stable: entries with the same date keep the document's order.
            keyed.sort_by_key(|k| k.0);
            keyed.into_iter().map(|(_, i, id)| (i, id)).collect()
        }
        // RSS and JSON Feed list the newest first.
        _ => ids.into_iter().enumerate().rev().collect(),
    };
    Ok(ParsedFeed { feed, raw, order })
}

fn raw_doc(feed: &Feed, body: &[u8]) -> RawDoc {
    let raw = if feed.feed_type == FeedType::JSON {
        serde_json::from_slice::<Value>(body)
            .ok()
            .filter(|v| v["items"].as_array().map(Vec::len) == Some(feed.entries.len()))
            .map(|feed| RawDoc::Json { feed })
    } else {
        rss_xml::read(body)
            .and_then(rss_xml::split)
            .filter(|(_, entries)| entries.len() == feed.entries.len())
            .map(|(channel, entries)| RawDoc::Xml { channel, entries })
    };
    raw.unwrap_or(RawDoc::None)
}

fn raw_entry(raw: &RawDoc, index: usize) -> Raw<'_> {
    match raw {
        RawDoc::Xml { entries, .. } => entries.get(index).map_or(Raw::None, Raw::Xml),
        RawDoc::Json { feed } => feed["items"].get(index).map_or(Raw::None, Raw::Json),
        RawDoc::None => Raw::None,
    }
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
        self.feed.entries.get(*index).map_or(Value::Null, |e| {
            rss_entry::entry(&self.feed, e, raw_entry(&self.raw, *index), id, clean)
        })
    }

    /// The feed's own fields (`include_feed_info`).
    pub fn info(&self, clean: bool) -> Value {
        let raw = match &self.raw {
            RawDoc::Xml { channel, .. } => Raw::Xml(channel),
            RawDoc::Json { feed } => Raw::Json(feed),
            RawDoc::None => Raw::None,
        };
        super::rss_feed_info::info(&self.feed, raw, clean)
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
                .to_string()
                .contains("neither RSS nor Atom")
        );
    }

    /// The keys of a payload, without the podcast-only `itunes_*` ones.
    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with("itunes_") && *k != "language")
            .cloned()
            .collect();
        k.sort();
        k
    }

    #[test]
    fn every_format_gives_the_same_shape() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/feeds");
        let mut shapes = Vec::new();
        for name in [
            "podcast.rss",
            "onethingwell.rss",
            "github_rss.atom",
            "rss091.xml",
            "slashdot.rdf",
            "jsonfeed11.json",
        ] {
            let body = std::fs::read(dir.join(name)).unwrap();
            let f = parse(&body, "http://x/feed").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!f.is_empty(), "{name}");
            assert!(
                matches!(f.raw, RawDoc::Xml { .. } | RawDoc::Json { .. }),
                "{name}"
            );
            for pos in 0..f.len() {
                let e = f.entry(pos, false);
                assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()), "{name}");
                shapes.push((name, keys(&e), keys(&f.info(false))));
            }
        }
        let (_, entry, info) = &shapes[0];
        for (name, e, i) in &shapes {
            assert_eq!(e, entry, "{name}");
            assert_eq!(i, info, "{name}");
        }
    }
}
