//! Feeds end to end: a webhook agent feeds a data_output agent; the `.xml` output is
//! parsed back with the `rss` crate's reader and the `.json` output checked field by
//! field against Huginn's shape; caching, conditional GET, ordering, hostile payloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Resp, TestHub};
use serde_json::{Value, json};

struct Feed {
    hub: TestHub,
    hook: i64,
    feed: i64,
}

impl Feed {
    /// A hub with a webhook (secret "in") and a data_output agent reading from it.
    async fn start(options: Value) -> Feed {
        let hub = TestHub::start().await;
        let hook = hub
            .add_agent(
                ADMIN_TOKEN,
                json!({"type": "webhook", "name": "In", "options": {"secret": "in", "payload_path": "items"}}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let feed = hub
            .add_agent(
                ADMIN_TOKEN,
                json!({"type": "data_output", "name": "Out", "source_ids": [hook], "options": options}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        Feed { hub, hook, feed }
    }

    fn url(&self, last: &str) -> String {
        format!("/users/1/web_requests/{}/{last}", self.feed)
    }

    async fn post(&self, items: Value) {
        let r = self
            .hub
            .request(
                "POST",
                &format!("/users/1/web_requests/{}/in", self.hook),
                None,
                &[("content-type", "application/json")],
                Some(json!({ "items": items }).to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }

    async fn get(&self, last: &str, headers: &[(&str, &str)]) -> Resp {
        self.hub
            .request("GET", &self.url(last), None, headers, None)
            .await
    }

    /// GETs until `done` holds (a new event reaches the feed a moment after its 201).
    async fn get_until(&self, last: &str, done: impl Fn(&Resp) -> bool) -> Resp {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get(last, &[]).await;
            if done(&r) || Instant::now() > deadline {
                return r;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn json_items(&self, n: usize) -> Value {
        let r = self
            .get_until("s1.json", |r| {
                r.status == 200 && r.json()["items"].as_array().map(Vec::len) == Some(n)
            })
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    async fn channel(&self, n: usize) -> (Resp, rss::Channel) {
        let r = self
            .get_until("s1.xml", |r| {
                r.status == 200
                    && rss::Channel::read_from(&r.body[..]).is_ok_and(|c| c.items.len() == n)
            })
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let c = rss::Channel::read_from(&r.body[..])
            .unwrap_or_else(|e| panic!("the feed does not parse ({e}):\n{}", r.text()));
        (r, c)
    }
}

fn basic() -> Value {
    json!({
        "secrets": ["s1", "s2"],
        "expected_receive_period_in_days": 2,
        "template": {
            "title": "News ({{ events | size }})",
            "description": "What came in",
            "link": "https://example.org/news",
            "item": {"title": "{{ title }}", "description": "{{ body }}", "link": "{{ url }}"}
        }
    })
}

#[actix_rt::test]
async fn rss_parses_back_with_channel_and_items() {
    let f = Feed::start(basic()).await;
    f.post(json!([
        {"title": "one", "body": "first", "url": "https://example.org/1"},
        {"title": "two", "body": "second", "url": "https://example.org/2"},
        {"title": "three", "body": "third", "url": "https://example.org/3"}
    ]))
    .await;
    let (r, c) = f.channel(3).await;
    assert_eq!(r.header("content-type"), Some("application/rss+xml"));
    assert_eq!(r.header("cache-control"), Some("max-age=3600"));
    assert!(r.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(
        r.header("last-modified")
            .is_some_and(|e| e.ends_with("GMT"))
    );
    assert_eq!(c.title, "News (3)");
    assert_eq!(c.description, "What came in");
    assert_eq!(c.link, "https://example.org/news");
    assert_eq!(c.ttl.as_deref(), Some("60"));
    assert!(c.generator.as_deref().unwrap().starts_with("muninn"));
    let built = c.last_build_date.as_deref().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc2822(built).is_ok(),
        "{built}"
    );
    let atom = &c.extensions["atom"];
    let self_link = &atom["link"][0];
    assert_eq!(self_link.attrs["rel"], "self");
    assert_eq!(self_link.attrs["type"], "application/rss+xml");
    assert!(
        self_link.attrs["href"].ends_with(&format!("/users/1/web_requests/{}/s1.xml", f.feed)),
        "{:?}",
        self_link.attrs
    );
    assert_eq!(
        atom["icon"][0].value.as_deref(),
        Some("https://example.org/news/favicon.ico")
    );
    // Newest first (Huginn's default events_list_order).
    let titles: Vec<&str> = c
        .items
        .iter()
        .map(|i| i.title.as_deref().unwrap())
        .collect();
    assert_eq!(titles, ["three", "two", "one"]);
    let first = &c.items[0];
    assert_eq!(first.description.as_deref(), Some("third"));
    assert_eq!(first.link.as_deref(), Some("https://example.org/3"));
    let guid = first.guid.as_ref().unwrap();
    assert!(!guid.permalink);
    let guids: Vec<i64> = c
        .items
        .iter()
        .map(|i| i.guid.as_ref().unwrap().value.parse().unwrap())
        .collect();
    assert!(guids[0] > guids[1] && guids[1] > guids[2], "{guids:?}");
    let date = first.pub_date.as_deref().unwrap();
    assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
    // The raw text carries isPermaLink="false" as Huginn's does.
    assert!(
        r.text()
            .contains(&format!("<guid isPermaLink=\"false\">{}</guid>", guids[0]))
    );
}

#[actix_rt::test]
async fn json_has_huginns_shape_field_by_field() {
    let mut o = basic();
    o["template"]["item"]["pubDate"] = json!("{{ date | default: '' }}");
    let f = Feed::start(o).await;
    f.post(json!([
        {"title": "one", "body": "b1", "url": "u1", "date": "2014-11-05T16:47:49+05:30"},
        {"title": "two", "body": "b2", "url": "u2"}
    ]))
    .await;
    let j = f.json_items(2).await;
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["description", "items", "pubDate", "title"]);
    assert_eq!(j["title"], "News (2)");
    assert_eq!(j["description"], "What came in");
    let pub_date = j["pubDate"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(pub_date).is_ok(),
        "{pub_date}"
    );
    let items = j["items"].as_array().unwrap();
    let (newest, oldest) = (&items[0], &items[1]);
    assert_eq!(newest.as_object().unwrap().len(), 5, "{newest}");
    assert_eq!(newest["title"], "two");
    assert_eq!(newest["description"], "b2");
    assert_eq!(newest["link"], "u2");
    // guid: {"contents": <numeric event id>, "isPermaLink": "false"}
    assert_eq!(newest["guid"]["isPermaLink"], "false");
    assert_eq!(newest["guid"].as_object().unwrap().len(), 2);
    let id_new = newest["guid"]["contents"]
        .as_i64()
        .expect("contents is the numeric event id");
    let id_old = oldest["guid"]["contents"].as_i64().unwrap();
    assert!(id_new > id_old);
    // pubDate: RFC 2822 from the event's time, or from the template's date.
    assert!(chrono::DateTime::parse_from_rfc2822(newest["pubDate"].as_str().unwrap()).is_ok());
    assert_eq!(oldest["pubDate"], "Wed, 05 Nov 2014 16:47:49 +0530");
    let r = f.get("s2.json", &[]).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

#[actix_rt::test]
async fn hostile_payloads_still_parse() {
    let mut o = basic();
    o["ns_media"] = json!(true);
    o["template"]["title"] = json!("{{ events[2].title }} & {{ events[4].title }}");
    o["template"]["self"] = json!("https://x/?a={{ events[2].title }}");
    o["template"]["item"] = json!({
        "title": "{{ title }}",
        "description": "{{ body }}",
        "author": "{{ title }}",
        "odd key_<name>": "{{ body }}",
        "evil:prefix": "{{ title }}",
        "media:thumbnail": {"_attributes": {"url": "{{ title }}", "xmlns:media": "x"}},
        "enclosure": {"_attributes": {"url": "{{ title }}", "type": "audio/mpeg", "length": "1"}}
    });
    let f = Feed::start(o).await;
    let big = "x<&>\"'".repeat(100 * 1024 / 6);
    let hostile = [
        "<script>alert('x')</script>",
        "]]> <![CDATA[ ]]>",
        "bell\u{7} nul\u{0} esc\u{1b} tab\t nl\n",
        "émoji 😀 中文 \u{FFFE}\u{FFFF}",
        big.as_str(),
    ];
    let items: Vec<Value> = hostile
        .iter()
        .map(|s| json!({"title": s, "body": format!("<p>{s}</p>")}))
        .collect();
    f.post(Value::Array(items)).await;
    let (r, c) = f.channel(hostile.len()).await;
    // What XML cannot carry is removed; the rss reader trims surrounding whitespace.
    let cleaned = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(*c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{FFFE}' | '\u{FFFF}'))
            .collect::<String>()
            .trim()
            .to_string()
    };
    for (item, raw) in c.items.iter().rev().zip(hostile) {
        assert_eq!(item.title.as_deref(), Some(cleaned(raw).as_str()));
        assert_eq!(
            item.description.as_deref(),
            Some(cleaned(&format!("<p>{raw}</p>")).as_str())
        );
        // Parsers normalise tabs and newlines in attribute values to spaces.
        let attr: String = raw
            .chars()
            .filter(|c| !matches!(*c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{FFFE}' | '\u{FFFF}'))
            .map(|c| if c == '\t' || c == '\n' { ' ' } else { c })
            .collect();
        assert_eq!(item.enclosure.as_ref().unwrap().url, attr);
    }
    // Channel parts rendered from payloads are cleaned as well.
    assert_eq!(
        c.title,
        cleaned(&format!("{} & {}", hostile[2], hostile[0]))
    );
    let href = &c.extensions["atom"]["link"][0].attrs["href"];
    assert!(href.starts_with("https://x/?a=bell nul esc tab"), "{href}");
    let text = r.text();
    assert!(
        text.contains("bell nul esc tab\t nl\n</title>"),
        "only forbidden characters go"
    );
    // Text is escaped; descriptions are CDATA, where markup is data.
    assert!(
        text.contains("<title>&lt;script&gt;"),
        "markup in text must be escaped"
    );
    assert!(!text.contains("<title><script>"));
    assert!(
        text.contains("<odd-key--name->"),
        "keys become valid element names"
    );
    assert!(
        text.contains("<evil-prefix>"),
        "unknown prefixes are not used"
    );
    assert!(text.contains("xmlns:media=\"http://search.yahoo.com/mrss/\""));
    assert!(r.body.len() > 100 * 1024);
    // The JSON feed carries the same strings, escaped by JSON.
    let j = f.json_items(hostile.len()).await;
    assert_eq!(j["items"][4]["title"], hostile[0]);
}

#[actix_rt::test]
async fn etag_304_and_a_new_event_changes_the_etag() {
    let f = Feed::start(basic()).await;
    f.post(json!([{"title": "a", "body": "b", "url": "u"}]))
        .await;
    let (first, _) = f.channel(1).await;
    let etag = first.header("etag").unwrap().to_string();
    let last_modified = first.header("last-modified").unwrap().to_string();
    // Cached: the same body and validator again.
    let again = f.get("s1.xml", &[]).await;
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.body, first.body);

    let r = f.get("s1.xml", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("cache-control"), Some("max-age=3600"));
    let r = f
        .get("s1.xml", &[("if-modified-since", &last_modified)])
        .await;
    assert_eq!(r.status, 304);
    let r = f
        .get("s1.xml", &[("if-none-match", "\"something-else\"")])
        .await;
    assert_eq!(r.status, 200);

    // HEAD: the headers of a GET, no body.
    let h = f
        .hub
        .request("HEAD", &f.url("s1.xml"), None, &[], None)
        .await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("etag"), Some(etag.as_str()));

    // Each format (and secret) has its own body and ETag.
    let j = f.get("s1.json", &[]).await;
    assert_ne!(j.header("etag"), Some(etag.as_str()));
    // No render while nothing changed: the JSON's pubDate (the render time, to the
    // millisecond) is the same later on.
    actix_rt::time::sleep(Duration::from_millis(30)).await;
    let j2 = f.get("s1.json", &[]).await;
    assert_eq!(j2.json()["pubDate"], j.json()["pubDate"]);
    assert_eq!(j2.body, j.body);

    f.post(json!([{"title": "new", "body": "b", "url": "u"}]))
        .await;
    let (after, c) = f.channel(2).await;
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert_eq!(c.items[0].title.as_deref(), Some("new"));
    let r = f.get("s1.xml", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 200, "the old ETag no longer matches");
}

#[actix_rt::test]
async fn option_changes_rerender() {
    let f = Feed::start(basic()).await;
    f.post(json!([{"title": "a", "body": "b", "url": "u"}]))
        .await;
    let (before, _) = f.channel(1).await;
    let mut o = basic();
    o["template"]["title"] = json!("Renamed");
    o["ttl"] = json!(5);
    o["rss_content_type"] = json!("text/xml");
    o["response_headers"] = json!({"Access-Control-Allow-Origin": "*"});
    let r = f
        .hub
        .send_json(
            "PUT",
            &format!("/api/agents/{}", f.feed),
            ADMIN_TOKEN,
            &json!({"options": o}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = f.get("s1.xml", &[]).await;
    assert_ne!(r.header("etag"), before.header("etag"));
    assert_eq!(r.header("content-type"), Some("text/xml"));
    assert_eq!(r.header("cache-control"), Some("max-age=300"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let c = rss::Channel::read_from(&r.body[..]).unwrap();
    assert_eq!(c.title, "Renamed");
    assert_eq!(c.ttl.as_deref(), Some("5"));
    let j = f.get("s1.json", &[]).await;
    assert_eq!(j.header("access-control-allow-origin"), Some("*"));
}

#[actix_rt::test]
async fn events_order_picks_the_window_and_list_order_sorts_it() {
    let mut o = basic();
    o["events_to_show"] = json!(2);
    o["events_order"] = json!([["{{ rank }}", "number"]]);
    let f = Feed::start(o).await;
    f.post(json!([
        {"title": "r10", "body": "", "url": "", "rank": 10},
        {"title": "r2", "body": "", "url": "", "rank": "2"},
        {"title": "r30", "body": "", "url": "", "rank": 30},
        {"title": "r5", "body": "", "url": "", "rank": 5}
    ]))
    .await;
    // Window: the last 2 by rank (10, 30); default list order reverses it.
    let j = f
        .get_until("s1.json", |r| r.json()["items"][1]["title"] == "r10")
        .await
        .json();
    let titles: Vec<&str> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["r30", "r10"]);

    let mut o = basic();
    o["events_to_show"] = json!(3);
    o["events_list_order"] = json!(["{{ title }}"]);
    let r = f
        .hub
        .send_json(
            "PUT",
            &format!("/api/agents/{}", f.feed),
            ADMIN_TOKEN,
            &json!({"options": o}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = f.get("s1.json", &[]).await.json();
    let titles: Vec<&str> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    // The newest 3 by id, listed by title.
    assert_eq!(titles, ["r2", "r30", "r5"]);
}

#[actix_rt::test]
async fn enclosures_and_media_become_elements_with_attributes() {
    let mut o = basic();
    o["ns_media"] = json!(true);
    o["ns_itunes"] = json!(true);
    o["template"]["item"] = json!({
        "title": "{{ title }}",
        "enclosure": {"_attributes": {"url": "{{ mp3 }}", "type": "audio/mpeg", "length": "{{ size }}"}},
        "media:thumbnail": {"_attributes": {"url": "{{ img }}", "width": "120"}},
        "category": ["a", "b"],
        "source_site": "{{ site }}"
    });
    let f = Feed::start(o).await;
    f.post(json!([{"title": "ep", "mp3": "https://x/ep.mp3?a=1&b=2", "size": 123, "img": "https://x/t.png", "site": "x"}]))
        .await;
    let (r, c) = f.channel(1).await;
    let item = &c.items[0];
    let enc = item.enclosure.as_ref().unwrap();
    assert_eq!(enc.url, "https://x/ep.mp3?a=1&b=2");
    assert_eq!(enc.mime_type, "audio/mpeg");
    assert_eq!(enc.length, "123");
    let thumb = &item.extensions["media"]["thumbnail"][0];
    assert_eq!(thumb.attrs["url"], "https://x/t.png");
    assert_eq!(thumb.attrs["width"], "120");
    let cats: Vec<&str> = item.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cats, ["a", "b"]);
    let text = r.text();
    assert!(text.contains("<source-site>x</source-site>"), "{text}");
    assert!(text.contains("<itunes:image href=\"https://example.org/news/favicon.ico\""));
    let j = f.json_items(1).await;
    assert_eq!(
        j["items"][0]["enclosure"],
        json!({"url": "https://x/ep.mp3?a=1&b=2", "type": "audio/mpeg", "length": "123"})
    );
    assert_eq!(
        j["items"][0]["media:thumbnail"],
        json!({"url": "https://x/t.png", "width": "120"})
    );
    assert_eq!(j["items"][0]["source_site"], "x");
}

#[actix_rt::test]
async fn bad_options_are_refused_naming_the_option() {
    let hub = TestHub::start().await;
    for (options, option) in [
        (json!({"template": {"item": {"t": "x"}}}), "secrets"),
        (
            json!({"secrets": ["a"], "template": {"title": "x"}}),
            "template.item",
        ),
        (
            json!({"secrets": ["a"], "template": {"item": {"t": "x"}}, "events_to_show": "lots"}),
            "events_to_show",
        ),
        (
            json!({"secrets": ["a"], "template": {"item": {"t": "x"}}, "events_order": [["{{ a }}", "date"]]}),
            "events_order[0]",
        ),
    ] {
        let r = hub
            .post_json(
                "/api/agents",
                ADMIN_TOKEN,
                &json!({"type": "data_output", "name": "x", "options": options}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text());
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.starts_with(&format!("option \"{option}\"")), "{msg}");
    }
    // Huginn's class name works too, and the feed cannot be a source.
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "Agents::DataOutputAgent", "name": "x", "options": {"secrets": ["a"], "template": {"item": {"t": "x"}}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "event_formatting", "name": "y", "source_ids": [id], "options": {"instructions": {}}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

#[actix_rt::test]
async fn an_empty_feed_and_unlinked_feed_still_answer() {
    let f = Feed::start(basic()).await;
    let r = f.get("s1.xml", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = rss::Channel::read_from(&r.body[..]).unwrap();
    assert!(c.items.is_empty());
    assert_eq!(c.title, "News (0)");
    let j = f.get("s1.json", &[]).await.json();
    assert_eq!(j["items"], json!([]));
}

#[actix_rt::test]
async fn the_api_shows_the_feed_url_and_deleting_source_events_empties_the_feed() {
    let f = Feed::start(basic()).await;
    let r = f
        .hub
        .get(&format!("/api/agents/{}", f.feed), ADMIN_TOKEN)
        .await;
    let url = r.json()["web_request_url"].as_str().unwrap().to_string();
    assert!(
        url.ends_with(&format!("/users/1/web_requests/{}/s1.xml", f.feed)),
        "{url}"
    );
    f.post(json!([{"title": "a", "body": "b", "url": "u"}]))
        .await;
    f.channel(1).await;
    let r = f
        .hub
        .delete(&format!("/api/agents/{}/events", f.hook), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, c) = f.channel(0).await;
    assert!(c.items.is_empty());
}

#[actix_rt::test]
async fn metrics_count_feed_requests_and_cache_hits() {
    let f =
        Feed::start(json!({"secrets": ["s"], "template": {"item": {"title": "{{ t }}"}}})).await;
    f.post(json!([{"t": "a"}])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = f.get("s.json", &[]).await;
        if r.json()["items"].as_array().is_some_and(|i| i.len() == 1) {
            break;
        }
        assert!(Instant::now() < deadline);
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(f.get("s.json", &[]).await.status, 200);
    let text = f
        .hub
        .request("GET", "/metrics", None, &[], None)
        .await
        .text();
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        value("muninn_feed_requests_total{status=\"200\"}") >= 2.0,
        "{text}"
    );
    assert!(value("muninn_feed_cache_hits_total") >= 1.0, "{text}");
}

#[actix_rt::test]
async fn templates_read_the_feed_owners_credentials() {
    let mut o = basic();
    o["template"]["title"] = json!("{% credential feed_title %}");
    o["template"]["item"]["link"] = json!("{{ url }}?key={% credential feed_key %}");
    let f = Feed::start(o).await;
    for (name, value) in [("feed_title", "Team news"), ("feed_key", "k-123")] {
        let r = f
            .hub
            .post_json(
                "/api/credentials",
                ADMIN_TOKEN,
                &json!({"credential_name": name, "credential_value": value}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    f.post(json!([{"title": "one", "body": "b1", "url": "https://example.com/1"}]))
        .await;
    let j = f.json_items(1).await;
    assert_eq!(j["title"], "Team news");
    assert_eq!(j["items"][0]["link"], "https://example.com/1?key=k-123");
}
