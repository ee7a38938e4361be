//! The `feed` object of the rss agent's events (`include_feed_info`), as Huginn's
//! `feed_data` builds it: `type` is "atom" for Atom and "rss" for everything else
//! (RSS 0.9x/1.0/2.0 and JSON Feed, as Huginn names every non-Atom feed), the same keys
//! for every format, the iTunes fields for a podcast. Read from feed-rs's feed and the
//! raw channel beside it for what feed-rs normalizes (dates' offsets, iTunes strings,
//! authors as written, the channel image rather than the iTunes one).

use feed_rs::model::{Feed, FeedType};
use serde_json::{Map, Value, json};

use super::rss_entry::{
    Raw, atom_links, atom_url, cleaned, iso, parse_date, person, put, raw_date, rss_person, text,
    utc,
};
use super::rss_xml::Node;

/// The feed's own fields.
pub fn info(feed: &Feed, raw: Raw<'_>, clean: bool) -> Value {
    match feed.feed_type {
        FeedType::Atom => atom_info(feed, raw.xml()),
        FeedType::JSON => json_info(feed, raw),
        _ => rss_info(feed, raw.xml(), clean),
    }
}

fn people(feed: &Feed) -> Vec<String> {
    feed.authors
        .iter()
        .filter_map(|p| person(p.name.as_deref(), p.email.as_deref(), p.uri.as_deref()))
        .collect()
}

fn rss_info(feed: &Feed, raw: Option<&Node>, clean: bool) -> Value {
    let link = match raw {
        Some(c) => c.text_of("link").map(str::to_string),
        None => feed.links.first().map(|l| l.href.clone()),
    };
    let (authors, published, updated, icon) = match raw {
        Some(c) => {
            let authors: Vec<String> = c
                .all("itunes:author")
                .chain(c.all("dc:creator"))
                .chain(c.all("managingEditor"))
                .filter_map(|a| rss_person(&a.text))
                .collect();
            let published = c
                .text_of("pubDate")
                .or_else(|| c.text_of("dc:date"))
                .and_then(parse_date);
            let updated = c.text_of("lastBuildDate").and_then(parse_date);
            let icon = c
                .all("image")
                .find_map(|i| i.text_of("url"))
                .map(str::to_string);
            (authors, published, updated, icon)
        }
        None => (
            people(feed),
            utc(feed.published),
            utc(feed.updated),
            feed.logo.as_ref().map(|l| l.uri.clone()),
        ),
    };
    let updated = updated.or(published);
    let mut m = Map::new();
    m.insert("id".into(), Value::Null);
    m.insert("type".into(), json!("rss"));
    m.insert("url".into(), json!(link));
    let links: Vec<Value> = link.iter().map(|l| json!({ "href": l })).collect();
    m.insert("links".into(), json!(links));
    m.insert(
        "title".into(),
        json!(text(feed.title.as_ref()).unwrap_or_default()),
    );
    m.insert(
        "description".into(),
        json!(text(feed.description.as_ref()).unwrap_or_default()),
    );
    m.insert("copyright".into(), json!(text(feed.rights.as_ref())));
    m.insert(
        "generator".into(),
        json!(feed.generator.as_ref().map(|g| &g.content)),
    );
    m.insert("icon".into(), json!(icon));
    m.insert("authors".into(), json!(authors));
    m.insert("date_published".into(), json!(published.as_ref().map(iso)));
    m.insert("last_updated".into(), json!(updated.as_ref().map(iso)));
    if let Some(c) = raw.filter(|c| c.has_prefixed("itunes:")) {
        itunes(&mut m, c, clean);
    }
    Value::Object(m)
}

/// Huginn's `itunes_feed_data` (with the channel's language beside it, as before).
fn itunes(m: &mut Map<String, Value>, c: &Node, clean: bool) {
    put(m, "itunes_block", c.text_of("itunes:block"));
    let mut cats = Vec::new();
    // Categories nest one level (a category and its subcategories); both are listed.
    for cat in c.all("itunes:category") {
        let mut next = Some(cat);
        while let Some(n) = next {
            if let Some(t) = n.attr("text") {
                cats.push(t.to_string());
            }
            next = n.child("itunes:category");
        }
    }
    if !cats.is_empty() {
        m.insert("itunes_categories".into(), json!(cats));
    }
    put(m, "itunes_complete", c.text_of("itunes:complete"));
    put(m, "itunes_explicit", c.text_of("itunes:explicit"));
    put(
        m,
        "itunes_image",
        c.child("itunes:image").and_then(|i| i.attr("href")),
    );
    put(m, "itunes_new_feed_url", c.text_of("itunes:new-feed-url"));
    if let Some(o) = c
        .child("itunes:owner")
        .and_then(|o| person(o.text_of("itunes:name"), o.text_of("itunes:email"), None))
    {
        m.insert("itunes_owners".into(), json!([o]));
    }
    put(m, "itunes_subtitle", c.text_of("itunes:subtitle"));
    if let Some(s) = c.text_of("itunes:summary") {
        m.insert("itunes_summary".into(), cleaned(Some(s), clean));
    }
    put(m, "language", c.text_of("language"));
}

fn atom_info(feed: &Feed, raw: Option<&Node>) -> Value {
    let links = atom_links(raw, &feed.links);
    let updated = raw_date(raw, "atom:updated").or(utc(feed.updated));
    let icon = match raw {
        Some(f) => f.text_of("atom:icon").map(str::to_string),
        None => feed.icon.as_ref().map(|i| i.uri.clone()),
    };
    json!({
        "id": feed.id,
        "type": "atom",
        "url": atom_url(&links),
        "links": links,
        "title": text(feed.title.as_ref()).unwrap_or_default(),
        "description": text(feed.description.as_ref()),
        "copyright": text(feed.rights.as_ref()),
        "generator": feed.generator.as_ref().map(|g| &g.content),
        "icon": icon,
        "authors": people(feed),
        "date_published": Value::Null,
        "last_updated": updated.as_ref().map(iso),
    })
}

/// JSON Feed's top level: `home_page_url` is the url, `feed_url` a "self" link.
fn json_info(feed: &Feed, raw: Raw<'_>) -> Value {
    let url = raw.json_str("home_page_url");
    let mut links: Vec<Value> = url.iter().map(|u| json!({ "href": u })).collect();
    if let Some(f) = raw.json_str("feed_url") {
        links.push(json!({"href": f, "rel": "self", "type": "application/feed+json"}));
    }
    json!({
        "id": Value::Null,
        "type": "rss",
        "url": url,
        "links": links,
        "title": text(feed.title.as_ref()).unwrap_or_default(),
        "description": text(feed.description.as_ref()),
        "copyright": Value::Null,
        "generator": Value::Null,
        "icon": raw.json_str("icon").or_else(|| raw.json_str("favicon")),
        "authors": people(feed),
        "date_published": Value::Null,
        "last_updated": Value::Null,
    })
}
