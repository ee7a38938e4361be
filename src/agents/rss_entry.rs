//! One feed entry (and the feed itself, for `include_feed_info`) in the shape Huginn's
//! RssAgent gives it, as Feedjira with Huginn's extensions reads it: `content` is the
//! content or else the summary, `last_updated` the update time or else the publication
//! time, `image` an enclosure's URL when it is an image, `enclosure` {url, type, length},
//! authors as "name <email> (uri)", the podcast (`itunes_*`) fields when present, and
//! timestamps in ISO 8601 with their own offset. `clean` sanitizes `description` and
//! `content` as HTML fragments (unsafe elements go with their content).

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value, json};

/// Loofah's `:prune` as near as the allow-list sanitizer gets: unknown and unsafe
/// elements and attributes go; links keep their own `rel`.
pub fn clean_fragment(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(None)
        .clean(html)
        .to_string()
}

fn cleaned(s: Option<&str>, clean: bool) -> Value {
    match s {
        Some(s) if clean && !s.is_empty() => Value::String(clean_fragment(s)),
        Some(s) => Value::String(s.to_string()),
        None => Value::Null,
    }
}

/// Huginn's lenient date reading (RFC 2822, or ISO 8601 as some feeds write).
fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    crate::feeds::time::parse(s)
}

fn iso(d: &DateTime<FixedOffset>) -> String {
    d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The earliest of `dates` (Huginn keeps the oldest publication time found).
fn earliest<'a>(dates: impl Iterator<Item = &'a str>) -> Option<DateTime<FixedOffset>> {
    dates.filter_map(parse_date).min()
}

/// "name <email> (uri)", each part only when present; `None` when all are empty.
fn person(name: Option<&str>, email: Option<&str>, uri: Option<&str>) -> Option<String> {
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
fn rss_person(content: &str) -> Option<String> {
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
fn put(m: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        m.insert(key.into(), Value::String(v.to_string()));
    }
}

/// An RSS 2.0 item; `id` is the entry's id as the agent tracks it.
pub fn rss_item(i: &rss::Item, id: &str, clean: bool) -> Value {
    let guid_url = i
        .guid()
        .filter(|g| g.is_permalink() && !g.value().is_empty())
        .map(|g| g.value());
    let link = i.link().map(str::trim).filter(|l| !l.is_empty());
    let url = link.or(guid_url);
    let links: Vec<Value> = link.map(|l| json!({ "href": l })).into_iter().collect();
    let mut urls: Vec<&str> = url.into_iter().collect();
    if let Some(l) = link
        && !urls.contains(&l)
    {
        urls.push(l);
    }
    let itunes = i.itunes_ext();
    let dc = i.dublin_core_ext();
    let authors: Vec<String> = itunes
        .and_then(|x| x.author())
        .into_iter()
        .chain(
            dc.map(|d| d.creators())
                .unwrap_or_default()
                .iter()
                .map(String::as_str),
        )
        .chain(i.author())
        .filter_map(rss_person)
        .collect();
    let published = earliest(
        i.pub_date().into_iter().chain(
            dc.map(|d| d.dates())
                .unwrap_or_default()
                .iter()
                .map(String::as_str),
        ),
    );
    let enclosure = i.enclosure().map(|e| {
        let mut m = Map::new();
        put(&mut m, "url", Some(e.url()));
        put(&mut m, "type", Some(e.mime_type()));
        put(&mut m, "length", Some(e.length()));
        Value::Object(m)
    });
    let image = i
        .enclosure()
        .filter(|e| e.mime_type().starts_with("image/"))
        .map(|e| e.url());
    let summary = i.description();
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("url".into(), json!(url));
    m.insert("urls".into(), json!(urls));
    m.insert("links".into(), json!(links));
    m.insert("title".into(), json!(i.title()));
    m.insert("description".into(), cleaned(summary, clean));
    m.insert("content".into(), cleaned(i.content().or(summary), clean));
    m.insert("image".into(), json!(image));
    m.insert("enclosure".into(), json!(enclosure));
    m.insert("authors".into(), json!(authors));
    let categories: Vec<&str> = i.categories().iter().map(|c| c.name()).collect();
    m.insert("categories".into(), json!(categories));
    m.insert("date_published".into(), json!(published.as_ref().map(iso)));
    m.insert("last_updated".into(), json!(published.as_ref().map(iso)));
    if let Some(x) = itunes {
        put(&mut m, "itunes_block", x.block());
        put(&mut m, "itunes_closed_captioned", x.closed_captioned());
        put(&mut m, "itunes_duration", x.duration());
        put(&mut m, "itunes_explicit", x.explicit());
        put(&mut m, "itunes_image", x.image());
        put(&mut m, "itunes_order", x.order());
        put(&mut m, "itunes_subtitle", x.subtitle());
        put(&mut m, "itunes_summary", x.summary());
    }
    Value::Object(m)
}

fn atom_link(l: &atom_syndication::Link) -> Value {
    let mut m = Map::new();
    put(&mut m, "href", Some(l.href()));
    put(&mut m, "rel", Some(l.rel()));
    put(&mut m, "type", l.mime_type());
    put(&mut m, "hreflang", l.hreflang());
    put(&mut m, "title", l.title());
    put(&mut m, "length", l.length());
    Value::Object(m)
}

/// Huginn's url of an Atom entry or feed: the alternate HTML link, else the first.
fn atom_url(links: &[atom_syndication::Link]) -> Option<&str> {
    links
        .iter()
        .filter(|l| !l.href().is_empty())
        .find(|l| l.rel() == "alternate" && l.mime_type().is_none_or(|t| t == "text/html"))
        .or_else(|| links.iter().find(|l| !l.href().is_empty()))
        .map(|l| l.href())
}

fn atom_people(people: &[atom_syndication::Person]) -> Vec<String> {
    people
        .iter()
        .filter_map(|p| person(Some(p.name()), p.email(), p.uri()))
        .collect()
}

/// An Atom entry; `id` is the entry's id as the agent tracks it.
pub fn atom_entry(e: &atom_syndication::Entry, id: &str, clean: bool) -> Value {
    let links: Vec<&atom_syndication::Link> =
        e.links().iter().filter(|l| !l.href().is_empty()).collect();
    let url = atom_url(e.links());
    let mut urls: Vec<&str> = url.into_iter().collect();
    for l in &links {
        if !urls.contains(&l.href()) {
            urls.push(l.href());
        }
    }
    let summary = e.summary().map(|s| s.as_str());
    let content = e.content().and_then(|c| c.value());
    let published = e.published().map(iso);
    json!({
        "id": id,
        "url": url,
        "urls": urls,
        "links": links.iter().map(|l| atom_link(l)).collect::<Vec<_>>(),
        "title": e.title().as_str(),
        "description": cleaned(summary, clean),
        "content": cleaned(content.or(summary), clean),
        "image": Value::Null,
        "enclosure": Value::Null,
        "authors": atom_people(e.authors()),
        "categories": e.categories().iter().map(|c| c.term()).collect::<Vec<_>>(),
        "date_published": published,
        "last_updated": iso(e.updated()),
    })
}

/// The `feed` of an RSS channel (`include_feed_info`).
pub fn rss_feed_info(c: &rss::Channel, clean: bool) -> Value {
    let link = Some(c.link().trim()).filter(|l| !l.is_empty());
    let itunes = c.itunes_ext();
    let authors: Vec<String> = itunes
        .and_then(|x| x.author())
        .into_iter()
        .chain(
            c.dublin_core_ext()
                .map(|d| d.creators())
                .unwrap_or_default()
                .iter()
                .map(String::as_str),
        )
        .chain(c.managing_editor())
        .filter_map(rss_person)
        .collect();
    let published = c.pub_date().and_then(parse_date);
    let updated = c.last_build_date().and_then(parse_date).or(published);
    let mut m = Map::new();
    m.insert("id".into(), Value::Null);
    m.insert("type".into(), json!("rss"));
    m.insert("url".into(), json!(link));
    let links: Vec<Value> = link.map(|l| json!({ "href": l })).into_iter().collect();
    m.insert("links".into(), json!(links));
    m.insert("title".into(), json!(c.title()));
    m.insert("description".into(), json!(c.description()));
    m.insert("copyright".into(), json!(c.copyright()));
    m.insert("generator".into(), json!(c.generator()));
    m.insert("icon".into(), json!(c.image().map(|i| i.url())));
    m.insert("authors".into(), json!(authors));
    m.insert("date_published".into(), json!(published.as_ref().map(iso)));
    m.insert("last_updated".into(), json!(updated.as_ref().map(iso)));
    if let Some(x) = itunes {
        put(&mut m, "itunes_block", x.block());
        let mut cats = Vec::new();
        for cat in x.categories() {
            let mut next = Some(cat);
            while let Some(c) = next {
                cats.push(c.text().to_string());
                next = c.subcategory();
            }
        }
        if !cats.is_empty() {
            m.insert("itunes_categories".into(), json!(cats));
        }
        put(&mut m, "itunes_complete", x.complete());
        put(&mut m, "itunes_explicit", x.explicit());
        put(&mut m, "itunes_image", x.image());
        put(&mut m, "itunes_new_feed_url", x.new_feed_url());
        if let Some(o) = x.owner().and_then(|o| person(o.name(), o.email(), None)) {
            m.insert("itunes_owners".into(), json!([o]));
        }
        put(&mut m, "itunes_subtitle", x.subtitle());
        if let Some(s) = x.summary().filter(|s| !s.trim().is_empty()) {
            m.insert("itunes_summary".into(), cleaned(Some(s), clean));
        }
        put(&mut m, "language", c.language());
    }
    Value::Object(m)
}

/// The `feed` of an Atom document (`include_feed_info`).
pub fn atom_feed_info(f: &atom_syndication::Feed) -> Value {
    let links: Vec<Value> = f
        .links()
        .iter()
        .filter(|l| !l.href().is_empty())
        .map(atom_link)
        .collect();
    json!({
        "id": f.id(),
        "type": "atom",
        "url": atom_url(f.links()),
        "links": links,
        "title": f.title().as_str(),
        "description": f.subtitle().map(|s| s.as_str()),
        "copyright": f.rights().map(|s| s.as_str()),
        "generator": f.generator().map(|g| g.value()),
        "icon": f.icon(),
        "authors": atom_people(f.authors()),
        "date_published": Value::Null,
        "last_updated": iso(f.updated()),
    })
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
