//! One feed entry in the shape Huginn's RssAgent gives it, as Feedjira with Huginn's
//! extensions reads it, from feed-rs's entry and the raw document beside it
//! ([`Raw`]): `content` is the content or else the summary, `last_updated` the update
//! time or else the publication time, `image` an enclosure's URL when it is an image,
//! `enclosure` {url, type, length}, authors as "name <email> (uri)", the podcast
//! (`itunes_*`) fields when present, and timestamps in ISO 8601 with their own offset.
//! RSS 0.9x/1.0/2.0, Atom and JSON Feed entries all have the same keys. `clean`
//! sanitizes `description` and `content` as HTML fragments (unsafe elements go with
//! their content). The feed's own fields are [`super::rss_feed_info`].

use chrono::{DateTime, FixedOffset, Utc};
use feed_rs::model::{Entry, Feed, FeedType, Link};
use serde_json::{Map, Value, json};

use super::rss_xml::Node;

/// The raw reading of one entry (or of the channel), for what feed-rs normalizes.
#[derive(Clone, Copy)]
pub enum Raw<'a> {
    Xml(&'a Node),
    Json(&'a Value),
    None,
}

impl<'a> Raw<'a> {
    pub fn xml(self) -> Option<&'a Node> {
        match self {
            Raw::Xml(n) => Some(n),
            _ => None,
        }
    }

    /// A string member of a JSON Feed object, trimmed, when not empty.
    pub fn json_str(self, key: &str) -> Option<&'a str> {
        match self {
            Raw::Json(v) => v
                .get(key)?
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty()),
            _ => None,
        }
    }
}

/// Loofah's `:prune` as near as the allow-list sanitizer gets: unknown and unsafe
/// elements and attributes go; links keep their own `rel`.
pub fn clean_fragment(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(None)
        .clean(html)
        .to_string()
}

pub(super) fn cleaned(s: Option<&str>, clean: bool) -> Value {
    match s {
        Some(s) if clean && !s.is_empty() => Value::String(clean_fragment(s)),
        Some(s) => Value::String(s.to_string()),
        None => Value::Null,
    }
}

/// Huginn's lenient date reading (RFC 2822, or ISO 8601 as some feeds write).
pub(super) fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    crate::feeds::time::parse(s)
}

pub(super) fn iso(d: &DateTime<FixedOffset>) -> String {
    d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The earliest of `dates` (Huginn keeps the oldest publication time found).
pub(super) fn earliest<'a>(dates: impl Iterator<Item = &'a str>) -> Option<DateTime<FixedOffset>> {
    dates.filter_map(parse_date).min()
}

/// "name <email> (uri)", each part only when present; `None` when all are empty.
pub(super) fn person(name: Option<&str>, email: Option<&str>, uri: Option<&str>) -> Option<String> {
    fn present(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    let parts: Vec<String> = [
        present(name).map(str::to_string),
        present(email).map(|e| format!("<{e}>")),
        present(uri).map(|u| format!("({u})")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// An RSS author element read as a mail address, as Huginn's RssAuthor does:
/// `Name <email>`, `email (Name)`, a single word as an address, else a name.
pub(super) fn rss_person(content: &str) -> Option<String> {
    let c = content.trim();
    if let (Some(lt), Some(gt)) = (c.find('<'), c.rfind('>'))
        && lt < gt
    {
        let name = c[..lt].trim().trim_matches('"');
        return person(Some(name), Some(&c[lt + 1..gt]), None);
    }
    if let Some(open) = c.find('(')
        && c.ends_with(')')
        && c[..open].trim().contains('@')
    {
        return person(
            Some(&c[open + 1..c.len() - 1]),
            Some(c[..open].trim()),
            None,
        );
    }
    if !c.is_empty() && !c.contains(char::is_whitespace) {
        return person(None, Some(c), None);
    }
    person(Some(c), None, None)
}

/// Inserts `value` under `key` when it is a non-empty string.
pub(super) fn put(m: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        m.insert(key.into(), Value::String(v.to_string()));
    }
}

/// feed-rs's time (UTC) where the raw text was not readable.
pub(super) fn utc(d: Option<DateTime<Utc>>) -> Option<DateTime<FixedOffset>> {
    d.map(|d| d.fixed_offset())
}

pub(super) fn text(t: Option<&feed_rs::model::Text>) -> Option<&str> {
    t.map(|t| t.content.as_str())
}

/// The entry's id as the agent tracks it (Huginn's: the guid, else the link, else the
/// title, for RSS; the id for Atom and JSON Feed).
pub fn entry_id(feed: &Feed, e: &Entry, raw: Raw<'_>) -> String {
    match (feed.feed_type == FeedType::Atom, raw) {
        (false, Raw::Xml(n)) => n
            .text_of("guid")
            .or_else(|| n.text_of("link"))
            .or_else(|| n.text_of("title"))
            .unwrap_or_default()
            .to_string(),
        (_, Raw::Json(_)) if e.id.is_empty() => raw
            .json_str("url")
            .or_else(|| text(e.title.as_ref()))
            .unwrap_or_default()
            .to_string(),
        _ => e.id.clone(),
    }
}

/// The event payload of `e`; `id` is the entry's id as the agent tracks it.
pub fn entry(feed: &Feed, e: &Entry, raw: Raw<'_>, id: &str, clean: bool) -> Value {
    match feed.feed_type {
        FeedType::Atom => atom_entry(e, raw.xml(), id, clean),
        FeedType::JSON => json_entry(e, raw, id, clean),
        _ => rss_item(e, raw.xml(), id, clean),
    }
}

/// The keys every entry has, whatever its format.
struct Common<'a> {
    id: &'a str,
    url: Option<String>,
    urls: Vec<String>,
    links: Vec<Value>,
    enclosure: Option<Value>,
    image: Option<String>,
    authors: Vec<String>,
    published: Option<DateTime<FixedOffset>>,
    updated: Option<DateTime<FixedOffset>>,
    /// Categories beside feed-rs's (RSS 1.0's `dc:subject`, which feed-rs does not read).
    more_categories: Vec<String>,
}

impl Common<'_> {
    fn into_value(self, e: &Entry, clean: bool) -> Map<String, Value> {
        let summary = text(e.summary.as_ref());
        let content = e.content.as_ref().and_then(|c| c.body.as_deref());
        let categories: Vec<&str> = e
            .categories
            .iter()
            .map(|c| c.term.as_str())
            .chain(self.more_categories.iter().map(String::as_str))
            .collect();
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("url".into(), json!(self.url));
        m.insert("urls".into(), json!(self.urls));
        m.insert("links".into(), json!(self.links));
        m.insert("title".into(), json!(text(e.title.as_ref())));
        m.insert("description".into(), cleaned(summary, clean));
        m.insert("content".into(), cleaned(content.or(summary), clean));
        m.insert("image".into(), json!(self.image));
        m.insert("enclosure".into(), json!(self.enclosure));
        m.insert("authors".into(), json!(self.authors));
        m.insert("categories".into(), json!(categories));
        let published = self.published.as_ref().map(iso);
        let updated = self.updated.as_ref().map(iso).or(published.clone());
        m.insert("date_published".into(), json!(published));
        m.insert("last_updated".into(), json!(updated));
        m
    }
}

/// `url` first, then the others not already there.
fn url_list(url: Option<&String>, others: impl Iterator<Item = String>) -> Vec<String> {
    let mut urls: Vec<String> = url.cloned().into_iter().collect();
    for u in others {
        if !urls.contains(&u) {
            urls.push(u);
        }
    }
    urls
}

fn people(e: &Entry) -> Vec<String> {
    e.authors
        .iter()
        .filter_map(|p| person(p.name.as_deref(), p.email.as_deref(), p.uri.as_deref()))
        .collect()
}

/// The first enclosure feed-rs found: {url, type, length}.
fn media_enclosure(e: &Entry) -> Option<Value> {
    let c = e
        .media
        .iter()
        .flat_map(|m| &m.content)
        .find(|c| c.url.is_some())?;
    let mut m = Map::new();
    put(&mut m, "url", c.url.as_ref().map(|u| u.as_str()));
    let mime = c.content_type.as_ref().map(|t| t.to_string());
    put(&mut m, "type", mime.as_deref());
    put(&mut m, "length", c.size.map(|s| s.to_string()).as_deref());
    Some(Value::Object(m))
}

fn image_of(enclosure: Option<&Value>) -> Option<String> {
    let e = enclosure?;
    e["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("image/"))
        .then(|| e["url"].as_str().map(str::to_string))
        .flatten()
}

/// An RSS 0.9x/1.0/2.0 item.
fn rss_item(e: &Entry, raw: Option<&Node>, id: &str, clean: bool) -> Value {
    let link = match raw {
        Some(n) => n.text_of("link").map(str::to_string),
        None => e.links.first().map(|l| l.href.clone()),
    };
    let guid_url = raw
        .and_then(|n| n.child("guid"))
        .filter(|g| g.attr("isPermaLink").is_none_or(|p| p.trim() != "false"))
        .map(|g| g.text.trim())
        .filter(|g| !g.is_empty());
    let url = link.clone().or(guid_url.map(str::to_string));
    let urls = url_list(url.as_ref(), link.clone().into_iter());
    let links: Vec<Value> = link.iter().map(|l| json!({ "href": l })).collect();
    let (authors, published) = match raw {
        Some(n) => {
            let authors = n
                .all("itunes:author")
                .chain(n.all("dc:creator"))
                .chain(n.all("author"))
                .filter_map(|a| rss_person(&a.text))
                .collect();
            let dates = n.all("pubDate").chain(n.all("dc:date"));
            (authors, earliest(dates.map(|d| d.text.as_str())))
        }
        None => (people(e), None),
    };
    let published = published.or(utc(e.published));
    let enclosure = match raw.and_then(|n| n.child("enclosure")) {
        Some(enc) => {
            let mut m = Map::new();
            put(&mut m, "url", enc.attr("url"));
            put(&mut m, "type", enc.attr("type"));
            put(&mut m, "length", enc.attr("length"));
            Some(Value::Object(m))
        }
        None if raw.is_none() => media_enclosure(e),
        None => None,
    };
    let mut m = Common {
        id,
        url,
        urls,
        links,
        image: image_of(enclosure.as_ref()),
        enclosure,
        authors,
        published,
        updated: published,
        more_categories: raw
            .map(|n| {
                n.all("dc:subject")
                    .map(|s| s.text.trim())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
    .into_value(e, clean);
    if let Some(n) = raw {
        for (key, name) in [
            ("itunes_block", "itunes:block"),
            ("itunes_closed_captioned", "itunes:isClosedCaptioned"),
            ("itunes_duration", "itunes:duration"),
            ("itunes_explicit", "itunes:explicit"),
            ("itunes_order", "itunes:order"),
            ("itunes_subtitle", "itunes:subtitle"),
            ("itunes_summary", "itunes:summary"),
        ] {
            put(&mut m, key, n.text_of(name));
        }
        put(
            &mut m,
            "itunes_image",
            n.child("itunes:image").and_then(|i| i.attr("href")),
        );
    }
    Value::Object(m)
}

/// An Atom link as Huginn lists it (`rel` is "alternate" when not given).
pub(super) fn atom_link(
    href: &str,
    rel: Option<&str>,
    attr: impl Fn(&str) -> Option<String>,
) -> Value {
    let mut m = Map::new();
    put(&mut m, "href", Some(href));
    put(&mut m, "rel", Some(rel.unwrap_or("alternate")));
    for (key, name) in [
        ("type", "type"),
        ("hreflang", "hreflang"),
        ("title", "title"),
        ("length", "length"),
    ] {
        put(&mut m, key, attr(name).as_deref());
    }
    Value::Object(m)
}

/// The Atom links of an entry or feed: the raw elements, else feed-rs's.
pub(super) fn atom_links(raw: Option<&Node>, links: &[Link]) -> Vec<Value> {
    match raw {
        Some(n) => n
            .all("atom:link")
            .filter_map(|l| {
                let href = l.attr("href").map(str::trim).filter(|h| !h.is_empty())?;
                Some(atom_link(href, l.attr("rel"), |a| {
                    l.attr(a).map(str::to_string)
                }))
            })
            .collect(),
        None => links
            .iter()
            .filter(|l| !l.href.is_empty())
            .map(|l| {
                atom_link(&l.href, l.rel.as_deref(), |a| match a {
                    "type" => l.media_type.clone(),
                    "hreflang" => l.href_lang.clone(),
                    "title" => l.title.clone(),
                    _ => l.length.map(|n| n.to_string()),
                })
            })
            .collect(),
    }
}

/// Huginn's url of an Atom entry or feed: the alternate HTML link, else the first.
pub(super) fn atom_url(links: &[Value]) -> Option<String> {
    links
        .iter()
        .find(|l| l["rel"] == "alternate" && l["type"].as_str().is_none_or(|t| t == "text/html"))
        .or_else(|| links.first())
        .and_then(|l| l["href"].as_str())
        .map(str::to_string)
}

/// A date element of a raw Atom entry or feed, with its own offset.
pub(super) fn raw_date(raw: Option<&Node>, name: &str) -> Option<DateTime<FixedOffset>> {
    raw.and_then(|n| n.text_of(name)).and_then(parse_date)
}

/// An Atom entry.
fn atom_entry(e: &Entry, raw: Option<&Node>, id: &str, clean: bool) -> Value {
    let links = atom_links(raw, &e.links);
    let url = atom_url(&links);
    let urls = url_list(
        url.as_ref(),
        links
            .iter()
            .filter_map(|l| l["href"].as_str().map(str::to_string)),
    );
    let published = raw_date(raw, "atom:published").or(utc(e.published));
    let updated = raw_date(raw, "atom:updated").or(utc(e.updated));
    let mut m = Common {
        id,
        url,
        urls,
        links,
        enclosure: None,
        image: None,
        authors: people(e),
        published,
        updated,
        more_categories: Vec::new(),
    }
    .into_value(e, clean);
    if m["title"].is_null() {
        m.insert("title".into(), json!(""));
    }
    Value::Object(m)
}

/// A JSON Feed item: `url`, `external_url` (rel "related") and the attachments
/// (rel "enclosure", the first one also `enclosure`) are its links.
fn json_entry(e: &Entry, raw: Raw<'_>, id: &str, clean: bool) -> Value {
    let url = raw.json_str("url").map(str::to_string);
    let external = raw.json_str("external_url").map(str::to_string);
    let mut links: Vec<Value> = url.iter().map(|u| json!({ "href": u })).collect();
    links.extend(
        external
            .iter()
            .map(|u| json!({"href": u, "rel": "related"})),
    );
    let mut enclosure = None;
    if let Raw::Json(item) = raw {
        for a in item["attachments"].as_array().into_iter().flatten() {
            let Some(href) = a["url"].as_str().filter(|h| !h.trim().is_empty()) else {
                continue;
            };
            let length = a["size_in_bytes"].as_u64().map(|n| n.to_string());
            let link = atom_link(href, Some("enclosure"), |k| match k {
                "type" => a["mime_type"].as_str().map(str::to_string),
                "title" => a["title"].as_str().map(str::to_string),
                "length" => length.clone(),
                _ => None,
            });
            if enclosure.is_none() {
                let mut m = Map::new();
                put(&mut m, "url", Some(href));
                put(&mut m, "type", a["mime_type"].as_str());
                put(&mut m, "length", length.as_deref());
                enclosure = Some(Value::Object(m));
            }
            links.push(link);
        }
    }
    let url = url
        .or(external.clone())
        .or_else(|| e.links.first().map(|l| l.href.clone()));
    let urls = url_list(url.as_ref(), external.into_iter());
    let image = raw
        .json_str("image")
        .map(str::to_string)
        .or_else(|| image_of(enclosure.as_ref()));
    let published = raw
        .json_str("date_published")
        .and_then(parse_date)
        .or(utc(e.published));
    let updated = raw
        .json_str("date_modified")
        .and_then(parse_date)
        .or(utc(e.updated));
    Value::Object(
        Common {
            id,
            url,
            urls,
            links,
            enclosure,
            image,
            authors: people(e),
            published,
            updated,
            more_categories: Vec::new(),
        }
        .into_value(e, clean),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_read_as_huginn_reads_them() {
        assert_eq!(rss_person("Jane Doe").as_deref(), Some("Jane Doe"));
        assert_eq!(rss_person("Various").as_deref(), Some("<Various>"));
        assert_eq!(
            rss_person("jd@example.com (John Doe)").as_deref(),
            Some("John Doe <jd@example.com>")
        );
        assert_eq!(
            rss_person("\"John Doe\" <jd@example.com>").as_deref(),
            Some("John Doe <jd@example.com>")
        );
        assert_eq!(rss_person("  "), None);
        assert_eq!(
            person(Some("cantino"), None, Some("https://github.com/cantino")).as_deref(),
            Some("cantino (https://github.com/cantino)")
        );
    }

    #[test]
    fn clean_prunes_unsafe_html() {
        assert_eq!(
            clean_fragment(
                r#"<a href="http://x/" onclick="evil()">X</a><script>alert(1)</script><p>ok</p>"#
            ),
            r#"<a href="http://x/">X</a><p>ok</p>"#
        );
    }
}
