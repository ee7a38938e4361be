//! The rss agent against a local feed: new entries become events once, validators are
//! sent back, and an unreachable feed shows as an error and `working: false`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Local blog</title><link>http://127.0.0.1/</link><description>posts</description>
<item><title>Second post</title><link>http://127.0.0.1/2</link><guid>post-2</guid><pubDate>Sun, 22 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>First post</title><link>http://127.0.0.1/1</link><guid>post-1</guid><pubDate>Sat, 21 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"#;

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

#[actix_rt::test]
async fn new_entries_become_events_once() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = Sink::start();
    sink.set_default(Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/rss+xml".into()),
            ("ETag".into(), "\"v1\"".into()),
        ],
        delay: Duration::ZERO,
        body: FEED.into(),
    });
    let agent = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "Agents::RssAgent", "name": "blog", "options": {"url": format!("{}/feed.xml", sink.url)}}))
        .await;
    assert_eq!(agent["schedule"], "every_1d");
    let id = agent["id"].as_i64().unwrap();
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let mut payloads: Vec<Value> = Vec::new();
    wait_for("two entries", async || {
        payloads = hub.payloads(ADMIN_TOKEN, id).await;
        payloads.len() == 2
    })
    .await;
    assert_eq!(payloads[0]["title"], "First post", "oldest first");
    assert_eq!(payloads[0]["url"], "http://127.0.0.1/1");
    assert_eq!(payloads[1]["id"], "post-2");
    // A second run sends the validator back and finds nothing new.
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    sink.wait_for(2).await;
    assert_eq!(sink.received()[1].header("if-none-match"), Some("\"v1\""));
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.payloads(ADMIN_TOKEN, id).await.len(), 2);
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["working"], true);
    assert_eq!(a["memory"]["seen_ids"], json!(["post-1", "post-2"]));
}

#[actix_rt::test]
async fn an_unreachable_feed_is_an_error_not_a_crash() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let id = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "rss", "name": "gone", "options": {"url": "http://127.0.0.1:9/feed.xml"}}))
        .await["id"]
        .as_i64()
        .unwrap();
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    let mut logs = json!([]);
    wait_for("an error log", async || {
        logs = hub
            .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
            .await
            .json();
        !logs.as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(logs[0]["level"], 4);
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .contains("Could not fetch http://127.0.0.1:9/feed.xml"),
        "{logs}"
    );
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["working"], false);
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "x", "options": {"url": "file:///etc/passwd"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("option \"url\"")
    );
}

/// An RSS feed of `n` entries, `first` being the oldest id, newest listed first.
fn big_feed(first: usize, n: usize) -> String {
    let mut items = String::new();
    for i in (first..first + n).rev() {
        items.push_str(&format!(
            "<item><title>Post {i}</title><guid>p{i}</guid></item>"
        ));
    }
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title><link>http://127.0.0.1/</link><description>d</description>{items}</channel></rss>"#
    )
}

fn serve(sink: &Sink, body: String) {
    sink.set_default(Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/rss+xml".into())],
        delay: Duration::ZERO,
        body,
    });
}

/// Runs the agent and waits until it has logged `logs` lines; returns its event count.
async fn run_and_count(hub: &TestHub, id: i64, logs: usize) -> usize {
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    wait_for("the run's log line", async || {
        let l = hub
            .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
            .await
            .json();
        l.as_array().unwrap().len() >= logs
    })
    .await;
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    a["events_count"].as_u64().unwrap() as usize
}

#[actix_rt::test]
async fn a_huge_feed_is_bounded_per_run_and_never_emitted_twice() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = Sink::start();
    serve(&sink, big_feed(1, 3000));
    // remembered_id_count is far below the feed's size: every id of the feed is
    // remembered all the same.
    let id = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "rss", "name": "big", "options": {"url": format!("{}/feed.xml", sink.url), "remembered_id_count": 10}}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(run_and_count(&hub, id, 1).await, 500, "the default bound");
    let logs = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .json();
    assert!(
        logs[0]["message"].as_str().unwrap().contains(
            "3000 new entries; emitted the newest 500, skipped 2500 older ones (max_events_per_run = 500)"
        ),
        "{logs}"
    );
    let events = hub.payloads(ADMIN_TOKEN, id).await;
    assert_eq!(events.len(), 500);
    assert_eq!(events[0]["id"], "p2501", "the newest 500, oldest first");
    assert_eq!(events[499]["id"], "p3000");
    // The same feed again: nothing new.
    assert_eq!(run_and_count(&hub, id, 2).await, 500);
    // Five new entries on top (the oldest five drop off the feed): exactly those five.
    serve(&sink, big_feed(6, 3000));
    assert_eq!(run_and_count(&hub, id, 3).await, 505);
    let events = hub.payloads(ADMIN_TOKEN, id).await;
    assert_eq!(events[500]["id"], "p3001");
    assert_eq!(events[504]["id"], "p3005");
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["memory"]["seen_ids"].as_array().unwrap().len(), 3000);

    // The bound is the agent's to raise, up to 10 000.
    let id = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "rss", "name": "all", "options": {"url": format!("{}/feed.xml", sink.url), "max_events_per_run": 5000}}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(run_and_count(&hub, id, 1).await, 3000);
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "x", "options": {"url": format!("{}/feed.xml", sink.url), "max_events_per_run": 20000}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["error"]["message"],
        "option \"max_events_per_run\" must be at most 10000 (got 20000)"
    );
}

/// Serves the feed fixture `name` on a sink of its own.
fn feed_sink(name: &str) -> Sink {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/feeds")
        .join(name);
    let sink = Sink::start();
    serve(&sink, std::fs::read_to_string(path).unwrap());
    sink
}

/// Creates an rss agent reading `sink` with `options`, runs it, waits for `n` events.
async fn read_feed(hub: &TestHub, sink: &Sink, options: Value, n: usize) -> Vec<Value> {
    let mut options = options;
    options["url"] = json!(format!("{}/feed", sink.url));
    let id = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "rss", "name": "feed", "options": options}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    let mut payloads = Vec::new();
    wait_for("the feed's events", async || {
        payloads = hub.payloads(ADMIN_TOKEN, id).await;
        payloads.len() == n
    })
    .await;
    payloads
}

fn by_id<'a>(payloads: &'a [Value], id: &str) -> &'a Value {
    payloads
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no entry {id}"))
}

#[actix_rt::test]
async fn a_podcast_reads_as_huginn_reads_it() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = feed_sink("podcast.rss");
    let payloads = read_feed(&hub, &sink, json!({"include_feed_info": true}), 4).await;
    // Huginn's own expectation for this feed (spec/models/agents/rss_agent_spec.rb).
    let feed_info = json!({
        "id": null, "type": "rss",
        "url": "http://www.example.com/podcasts/everything/index.html",
        "links": [{"href": "http://www.example.com/podcasts/everything/index.html"}],
        "title": "All About Everything",
        "description": "All About Everything is a show about everything. Each week we dive into any subject known to man and talk about it as much as we can. Look for our podcast in the Podcasts app or in the iTunes Store",
        "copyright": "℗ & © 2014 John Doe & Family",
        "generator": null, "icon": null, "authors": ["John Doe"],
        "date_published": null, "last_updated": null,
        "itunes_categories": ["Technology", "Gadgets", "TV & Film", "Arts", "Food"],
        "itunes_complete": "yes", "itunes_explicit": "no",
        "itunes_image": "http://example.com/podcasts/everything/AllAboutEverything.jpg",
        "itunes_owners": ["John Doe <john.doe@example.com>"],
        "itunes_subtitle": "A show about everything",
        "itunes_summary": "All About Everything is a show about everything. Each week we dive into any subject known to man and talk about it as much as we can. Look for our podcast in the Podcasts app or in the iTunes Store",
        "language": "en-us"
    });
    assert_eq!(
        by_id(
            &payloads,
            "http://example.com/podcasts/archive/aae20140697.m4v"
        ),
        &json!({
            "feed": feed_info,
            "id": "http://example.com/podcasts/archive/aae20140697.m4v",
            "url": "http://example.com/podcasts/archive/aae20140697.m4v",
            "urls": ["http://example.com/podcasts/archive/aae20140697.m4v"],
            "links": [],
            "title": "The Best Chili",
            "description": null, "content": null, "image": null,
            "enclosure": {"url": "http://example.com/podcasts/everything/AllAboutEverythingEpisode2.m4v", "type": "video/x-m4v", "length": "5650889"},
            "authors": ["Jane Doe"], "categories": [],
            "date_published": "2016-03-10T02:00:00-07:00",
            "last_updated": "2016-03-10T02:00:00-07:00",
            "itunes_closed_captioned": "Yes", "itunes_duration": "04:34", "itunes_explicit": "no",
            "itunes_image": "http://example.com/podcasts/everything/AllAboutEverything/Episode3.jpg",
            "itunes_subtitle": "Jane and Eric",
            "itunes_summary": "This week we talk about the best Chili in the world. Which chili is better?"
        })
    );
    let various = by_id(
        &payloads,
        "http://example.com/podcasts/archive/aae20140601.mp3",
    );
    assert_eq!(various["authors"], json!(["<Various>"]));
    // Ordered by date (Huginn's default events_order), oldest first.
    let spices = by_id(
        &payloads,
        "http://example.com/podcasts/archive/aae20140615.m4a",
    );
    assert_eq!(spices["date_published"], "2016-03-08T12:00:00+00:00");
    let pos = |id: &str| payloads.iter().position(|p| p["id"] == id).unwrap();
    assert!(
        pos("http://example.com/podcasts/archive/aae20140615.m4a")
            < pos("http://example.com/podcasts/archive/aae20140608.mp4")
    );
    assert!(
        pos("http://example.com/podcasts/archive/aae20140608.mp4")
            < pos("http://example.com/podcasts/archive/aae20140697.m4v")
    );
}

#[actix_rt::test]
async fn a_blog_feed_is_cleaned_dated_and_numbered() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = feed_sink("onethingwell.rss");
    let payloads = read_feed(
        &hub,
        &sink,
        json!({"clean": true, "include_sort_info": true}),
        20,
    )
    .await;
    let csv = by_id(&payloads, "http://onethingwell.org/post/127163643556");
    assert_eq!(csv["date_published"], "2015-08-20T17:00:10+01:00");
    assert_eq!(
        csv["last_updated"], "2015-08-20T17:00:10+01:00",
        "updated || published"
    );
    assert_eq!(
        csv["categories"],
        json!(["csv", "crossplatform", "utilities"])
    );
    assert_eq!(
        csv["authors"],
        json!([]),
        "an empty dc:creator is no author"
    );
    assert_eq!(csv["content"], csv["description"], "content || summary");
    let itsy = by_id(&payloads, "http://onethingwell.org/post/127083371981");
    assert_eq!(
        itsy["enclosure"],
        json!({"url": "http://c.1tw.org/images/2015/itsy.png", "type": "image/png", "length": "48249"})
    );
    assert_eq!(itsy["image"], "http://c.1tw.org/images/2015/itsy.png");
    // Huginn's expectation for `clean`: the handler attribute and the script are gone.
    let cleaned = r#"<a href="http://showgoers.tv/">Showgoers</a>: <blockquote> <p>Showgoers is a Chrome browser extension to synchronize your Netflix player with someone else so that you can co-watch the same movie on different computers with no hassle. Syncing up your player is as easy as sharing a URL.</p> </blockquote>"#;
    let show = by_id(&payloads, "http://onethingwell.org/post/125509667816");
    assert_eq!(show["content"], cleaned);
    assert_eq!(show["description"], cleaned);
    // Oldest first by date; sort_info numbers the run's events.
    assert_eq!(
        payloads[0]["id"],
        "http://onethingwell.org/post/125509667816"
    );
    assert_eq!(
        payloads[0]["sort_info"],
        json!({"position": 1, "count": 20})
    );
    assert_eq!(
        payloads[19]["sort_info"],
        json!({"position": 20, "count": 20})
    );
    let dates: Vec<&str> = payloads
        .iter()
        .map(|p| p["date_published"].as_str().unwrap())
        .collect();
    let mut parsed: Vec<chrono::DateTime<chrono::FixedOffset>> = dates
        .iter()
        .map(|d| chrono::DateTime::parse_from_rfc3339(d).unwrap())
        .collect();
    let in_order = parsed.clone();
    parsed.sort();
    assert_eq!(in_order, parsed);
}

#[actix_rt::test]
async fn an_atom_feed_follows_events_order() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = feed_sink("github_rss.atom");
    let payloads = read_feed(
        &hub,
        &sink,
        json!({"include_feed_info": true, "include_sort_info": true,
               "events_order": [["{{title}}", "string", true]]}),
        20,
    )
    .await;
    let titles: Vec<String> = payloads
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = titles.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(titles, sorted, "titles descending");
    assert_ne!(titles.first(), titles.last());
    assert_eq!(
        payloads[19]["sort_info"],
        json!({"position": 20, "count": 20})
    );
    let first = by_id(
        &payloads,
        "tag:github.com,2008:Grit::Commit/d0a844662846cf3c83b94c637c1803f03db5a5b0",
    );
    let url = "https://github.com/cantino/huginn/commit/d0a844662846cf3c83b94c637c1803f03db5a5b0";
    assert_eq!(first["url"], url);
    assert_eq!(first["urls"], json!([url]));
    assert_eq!(
        first["links"],
        json!([{"href": url, "rel": "alternate", "type": "text/html"}])
    );
    assert_eq!(
        first["authors"],
        json!(["cantino (https://github.com/cantino)"])
    );
    assert_eq!(first["date_published"], Value::Null);
    assert_eq!(first["last_updated"], "2014-07-16T22:26:22-07:00");
    assert!(
        first["content"]
            .as_str()
            .unwrap()
            .contains("safer-liquid-migration")
    );
    let feed = &first["feed"];
    assert_eq!(feed["type"], "atom");
    assert_eq!(feed["title"], "Recent Commits to huginn:master");
    assert_eq!(
        feed["url"],
        "https://github.com/cantino/huginn/commits/master"
    );
    assert_eq!(
        feed["links"],
        json!([
            {"type": "text/html", "rel": "alternate", "href": "https://github.com/cantino/huginn/commits/master"},
            {"type": "application/atom+xml", "rel": "self", "href": "https://github.com/cantino/huginn/commits/master.atom"}
        ])
    );
}

#[actix_rt::test]
async fn headers_user_agent_and_basic_auth_are_sent() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = feed_sink("podcast.rss");
    read_feed(
        &hub,
        &sink,
        json!({"headers": {"X-Feed-Key": "k-{{ 'abc' }}"}, "user_agent": "huginn-bot/1",
               "basic_auth": ["reader", "pw"]}),
        4,
    )
    .await;
    let got = &sink.received()[0];
    assert_eq!(got.header("x-feed-key"), Some("k-abc"));
    assert_eq!(got.header("user-agent"), Some("huginn-bot/1"));
    assert_eq!(got.header("authorization"), Some("Basic cmVhZGVyOnB3"));
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "x", "options": {"url": format!("{}/f", sink.url), "headers": "X-A: b"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["error"]["message"],
        "option \"headers\" must be an object of header names to values"
    );
}

#[actix_rt::test]
async fn an_rss_091_feed_reads_like_rss_2() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = feed_sink("rss091.xml");
    let payloads = read_feed(&hub, &sink, json!({"include_feed_info": true}), 2).await;
    // No dates: the feed's own order, oldest (last listed) first; the link is the id.
    assert_eq!(payloads[0]["id"], "http://news.example.org/issues/1");
    assert_eq!(
        payloads[1],
        json!({
            "id": "http://news.example.org/issues/2",
            "url": "http://news.example.org/issues/2",
            "urls": ["http://news.example.org/issues/2"],
            "links": [{"href": "http://news.example.org/issues/2"}],
            "title": "Second issue: feeds",
            "description": "All about <b>feeds</b>.", "content": "All about <b>feeds</b>.",
            "image": null, "enclosure": null, "authors": [], "categories": [],
            "date_published": null, "last_updated": null,
            "feed": {
                "id": null, "type": "rss",
                "url": "http://news.example.org/",
                "links": [{"href": "http://news.example.org/"}],
                "title": "Muninn Weekly", "description": "Notes from the hub, every week.",
                "copyright": "Copyright 2026, Example Org", "generator": null,
                "icon": "http://news.example.org/logo.gif",
                "authors": ["Ed Itor <editor@example.org>"],
                "date_published": "2026-12-07T09:00:00+01:00",
                "last_updated": "2026-12-07T10:30:00+01:00"
            }
        })
    );
}

#[actix_rt::test]
async fn an_rss_1_rdf_feed_reads_like_rss_2() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = feed_sink("slashdot.rdf");
    let payloads = read_feed(
        &hub,
        &sink,
        json!({"include_feed_info": true, "clean": true}),
        2,
    )
    .await;
    let url = "https://news.example.net/story/26/12/07/0415210/rust-feeds";
    assert_eq!(
        payloads[0]["id"], "https://news.example.net/story/26/12/06/2229215/sqlite-turns-26",
        "oldest first by dc:date"
    );
    assert_eq!(
        payloads[1],
        json!({
            "id": url, "url": url, "urls": [url], "links": [{"href": url}],
            "title": "Rust Feed Parsers Grow Up",
            "description": "An anonymous reader writes: one crate now reads <i>every</i> feed format.",
            "content": "An anonymous reader writes: one crate now reads <i>every</i> feed format.",
            "image": null, "enclosure": null,
            // One word reads as an address, as Huginn reads an RSS author.
            "authors": ["<msmash>"],
            "categories": ["programming"],
            "date_published": "2026-12-07T04:15:00-05:00",
            "last_updated": "2026-12-07T04:15:00-05:00",
            "feed": {
                "id": null, "type": "rss",
                "url": "https://news.example.net/",
                "links": [{"href": "https://news.example.net/"}],
                "title": "Example Dot", "description": "News for nerds, stuff that matters",
                "copyright": "Copyright 1997-2026, Example Media. All Rights Reserved.",
                "generator": null,
                "icon": "https://news.example.net/topics/topicslashdot.gif",
                "authors": ["<help@example.net>"],
                "date_published": "2026-12-07T08:15:00+00:00",
                "last_updated": "2026-12-07T08:15:00+00:00"
            }
        })
    );
}

#[actix_rt::test]
async fn a_json_feed_reads_like_rss_2() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = feed_sink("jsonfeed11.json");
    let payloads = read_feed(&hub, &sink, json!({"include_feed_info": true}), 2).await;
    let feed = json!({
        "id": null, "type": "rss",
        "url": "https://blog.example.com/",
        "links": [
            {"href": "https://blog.example.com/"},
            {"href": "https://blog.example.com/feed.json", "rel": "self", "type": "application/feed+json"}
        ],
        "title": "Huginn and Muninn", "description": "Two ravens, one blog.",
        "copyright": null, "generator": null,
        "icon": "https://blog.example.com/icon-512.png",
        "authors": ["Odin (https://blog.example.com/about)"],
        "date_published": null, "last_updated": null
    });
    let ep2 = "https://blog.example.com/2026/12/episode-2";
    let mp3 = "https://cdn.example.com/ep2.mp3";
    assert_eq!(
        payloads[1],
        json!({
            "id": ep2, "url": ep2, "urls": [ep2],
            "links": [
                {"href": ep2},
                {"href": mp3, "rel": "enclosure", "type": "audio/mpeg", "length": "34512345"}
            ],
            "title": "Episode 2: memory",
            "description": "What the ravens remember.",
            "content": "<p>What the ravens <em>remember</em>.</p><script>alert(1)</script>",
            "image": "https://blog.example.com/img/ep2.jpg",
            "enclosure": {"url": mp3, "type": "audio/mpeg", "length": "34512345"},
            "authors": ["Odin (https://blog.example.com/about)"],
            "categories": ["podcast", "memory"],
            "date_published": "2026-12-06T18:30:00-08:00",
            "last_updated": "2026-12-07T09:00:00+01:00",
            "feed": feed
        })
    );
    let hello = "https://blog.example.com/2026/11/hello";
    let external = "https://elsewhere.example.org/hello";
    assert_eq!(
        payloads[0],
        json!({
            "id": "2", "url": hello, "urls": [hello, external],
            "links": [{"href": hello}, {"href": external, "rel": "related"}],
            "title": "Hello, world",
            "description": null, "content": "The first post.",
            "image": null, "enclosure": null,
            "authors": ["Huginn"], "categories": [],
            "date_published": "2026-11-30T12:00:00+00:00",
            "last_updated": "2026-11-30T12:00:00+00:00",
            "feed": feed
        })
    );
}
