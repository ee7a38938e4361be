//! Scenarios of the wild corpus (fixtures/scenarios/wild/) run end to end, as their
//! authors wrote them, against local fakes of the sites they fetch and post to: the
//! file is imported through the API with only its URLs pointed at 127.0.0.1, its
//! agents are run, and the test checks what the far end received (mails in an SMTP
//! sink, requests in an HTTP sink, a feed) — once per new item, and nothing when the
//! same page is fetched again. (The fashion-report scenario runs in
//! tests/website_agent.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::sink::{Reply, Sink};
use common::smtp::{Mail, SmtpSink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// A hub that may fetch from 127.0.0.1, propagates every second (agents imported with
/// `propagate_immediately: false` get their events then) and mails through `smtp`.
async fn hub(smtp: &SmtpSink) -> TestHub {
    let port = smtp.port;
    TestHub::start_with(move |c| {
        c.delivery.allow_private_targets = true;
        c.agents.propagation_interval_seconds = 1;
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.tls = muninn::config::SmtpTls::None;
        c.smtp.from = "Huginn <hub@example.com>".into();
    })
    .await
}

/// A user with a mail address (where agents without `recipients` mail to), and its token.
async fn user_with_mail(hub: &TestHub) -> String {
    let r = hub
        .post_json(
            "/api/users",
            ADMIN_TOKEN,
            &json!({"name": "reader", "email": "reader@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_string()
}

fn serve(sink: &Sink, content_type: &str, body: impl Into<String>) {
    sink.set_default(Reply {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        delay: Duration::ZERO,
        body: body.into(),
    });
}

/// Reads a corpus file and lets `point` rewrite each agent (by type) before import.
fn corpus_file(name: &str, point: impl Fn(&str, &mut Value)) -> Value {
    let path = format!(
        "{}/fixtures/scenarios/wild/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for agent in file["agents"].as_array_mut().unwrap() {
        let kind = agent["type"].as_str().unwrap().to_string();
        point(&kind, &mut agent["options"]);
    }
    file
}

/// Imports `file` as `token`'s; every agent of it must be created. Answers name → id.
async fn import(hub: &TestHub, token: &str, file: &Value) -> BTreeMap<String, i64> {
    let r = hub.post_json("/api/scenarios/import", token, file).await;
    assert!(r.status < 300, "{}", r.text());
    let report = r.json();
    assert_eq!(report["complete"], true, "{report}");
    report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn run(hub: &TestHub, token: &str, id: i64) {
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), token, &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Gives the graph time to move anything still in flight (two propagation ticks), so
/// a test can then assert that nothing more arrived.
async fn settle() {
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
}

fn subjects(mails: &[Mail]) -> Vec<String> {
    mails
        .iter()
        .map(|m| m.header("Subject").unwrap_or_default())
        .collect()
}

/// albertsun's "Timeswire Politics Story Email": the NYT Newswire API (JSON) →
/// a regex trigger on the story URL → an email per politics story.
#[actix_rt::test]
async fn newswire_politics_stories_are_mailed_once_each() {
    let smtp = SmtpSink::start();
    let hub = hub(&smtp).await;
    let token = user_with_mail(&hub).await;
    let api = Sink::start();
    let story = |section: &str, n: u32| {
        json!({"url": format!("https://www.nytimes.com/2026/12/07/{section}/story-{n}.html"),
               "title": format!("{section} story {n}"), "abstract": format!("About {section} {n}.")})
    };
    let page = |stories: Vec<Value>| json!({"status": "OK", "results": stories}).to_string();
    serve(
        &api,
        "application/json",
        page(vec![story("us/politics", 1), story("sports", 2)]),
    );
    let file = corpus_file(
        "albertsun__huginn-newsroom-scenarios__timeswire-story-filter-email.json",
        |kind, o| {
            if kind == "Agents::WebsiteAgent" {
                o["url"] = json!(api.url);
            }
        },
    );
    let ids = import(&hub, &token, &file).await;
    let wire = ids["Timeswire API"];
    run(&hub, &token, wire).await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(subjects(&mails), ["New Times Politics Story"]);
    assert_eq!(mails[0].to, ["YOUR_EMAIL@example.com"]);
    let body = mails[0].decoded();
    assert!(body.contains("Your stories:"), "{body}");
    assert!(body.contains("us/politics story 1"), "{body}");
    assert!(!body.contains("sports story 2"), "{body}");

    // The same listing again: nothing new, no mail.
    run(&hub, &token, wire).await;
    hub.wait_log(&token, wire, "0 new", 1).await;
    settle().await;
    assert_eq!(smtp.mails().len(), 1);

    // A new politics story and a new sports story: one more mail.
    serve(
        &api,
        "application/json",
        page(vec![
            story("us/politics", 3),
            story("us/politics", 1),
            story("sports", 4),
        ]),
    );
    run(&hub, &token, wire).await;
    let mails = smtp.wait_for(2).await;
    assert!(mails[1].decoded().contains("us/politics story 3"));
    settle().await;
    assert_eq!(smtp.mails().len(), 2);
}

/// albertsun's "Website Email Notifier": a page section scraped on change → an email
/// to the user's own address (the file names no recipients).
#[actix_rt::test]
async fn a_changed_page_section_is_mailed_to_the_owner() {
    let smtp = SmtpSink::start();
    let hub = hub(&smtp).await;
    let token = user_with_mail(&hub).await;
    let site = Sink::start();
    let page = |text: &str| {
        format!(
            "<html><body><article class=\"press_item entry\">\n  {text}\n</article></body></html>"
        )
    };
    serve(&site, "text/html", page("Pay for   the wall: version one."));
    let file = corpus_file(
        "albertsun__huginn-newsroom-scenarios__website-email-notifier.json",
        |kind, o| {
            if kind == "Agents::WebsiteAgent" {
                o["url"] = json!(site.url);
            }
        },
    );
    let ids = import(&hub, &token, &file).await;
    let wall = ids["Donald Trump Wall"];
    run(&hub, &token, wall).await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(subjects(&mails), ["Donald Trump's Website Changed"]);
    assert_eq!(mails[0].to, ["reader@example.com"]);
    let body = mails[0].decoded();
    assert!(body.contains("Your notification:"), "{body}");
    // normalize-space(.) collapsed the runs of blanks.
    assert!(body.contains("Pay for the wall: version one."), "{body}");

    run(&hub, &token, wall).await;
    hub.wait_log(&token, wall, "0 new", 1).await;
    settle().await;
    assert_eq!(smtp.mails().len(), 1);

    serve(&site, "text/html", page("Pay for the wall: version two."));
    run(&hub, &token, wall).await;
    let mails = smtp.wait_for(2).await;
    assert!(mails[1].decoded().contains("version two."));
}

/// albertsun's "Author Filter Morning Email": a tag page scraped into stories → a
/// field==value trigger on the byline → an email digest of the matches when it runs.
#[actix_rt::test]
async fn a_morning_digest_mails_one_authors_new_stories_together() {
    let smtp = SmtpSink::start();
    let hub = hub(&smtp).await;
    let token = user_with_mail(&hub).await;
    let site = Sink::start();
    let item = |n: u32, author: &str| {
        format!(
            "<li class=\"p-basic-article-list__node\"><h3><a href=\"https://www.theverge.com/s/{n}\">Story {n}</a></h3>\
             <p class=\"blurb\">Blurb   {n}</p><p class=\"byline\">By <a href=\"/u\">{author}</a></p></li>"
        )
    };
    serve(
        &site,
        "text/html",
        format!(
            "<html><body><ul>{}{}{}</ul></body></html>",
            item(1, "Lauren Goode"),
            item(2, "Someone Else"),
            item(3, "Lauren Goode")
        ),
    );
    let file = corpus_file(
        "albertsun__huginn-newsroom-scenarios__author-filter-morning-email.json",
        |kind, o| {
            if kind == "Agents::WebsiteAgent" {
                o["url"] = json!(site.url);
            }
        },
    );
    let ids = import(&hub, &token, &file).await;
    let verge = ids["The Verge | Fitness"];
    let filter = ids["By Lauren Goode Filter"];
    let digest = ids["New Verge Fitness Story"];
    run(&hub, &token, verge).await;
    let want = 2;
    let deadline = Instant::now() + Duration::from_secs(15);
    while hub.payloads(&token, filter).await.len() < want {
        assert!(Instant::now() < deadline, "the trigger did not fire twice");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let matched = hub.payloads(&token, filter).await;
    assert!(
        matched.iter().all(|p| p["message"] == "New story by !"),
        "{matched:?}"
    );
    // `{{value}}` names a key the payload does not have: Huginn's trigger renders the
    // message with the event's payload only, so the author wrote an empty name here.
    // The digest agent gets the trigger's events at the next propagation (it is
    // imported with propagate_immediately false), then mails them in one message.
    settle().await;
    run(&hub, &token, digest).await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(subjects(&mails), ["New Verge Fitness Story"]);
    let body = mails[0].decoded();
    assert!(body.contains("Stories:"), "{body}");
    assert!(
        body.contains("Story 1") && body.contains("Story 3"),
        "{body}"
    );
    assert!(!body.contains("Story 2"), "{body}");

    // Nothing new on the page, nothing collected: the next digest run sends nothing.
    run(&hub, &token, verge).await;
    hub.wait_log(&token, verge, "0 new", 1).await;
    settle().await;
    run(&hub, &token, digest).await;
    settle().await;
    assert_eq!(smtp.mails().len(), 1);
}

/// jasonbraganza's "Create RSS feed: France Pittoresque": the newest article scraped
/// with XPath → a data_output agent that publishes it as an RSS feed.
#[actix_rt::test]
async fn a_scraped_article_is_published_in_the_feed_once() {
    let smtp = SmtpSink::start();
    let hub = hub(&smtp).await;
    let site = Sink::start();
    // The file reads the description at //div[8]//div[3]//div[5]: the 5th div in the
    // 3rd div in the 8th div of the site's layout (the links' div is the first).
    let page = |href: &str, title: &str| {
        let nth =
            |n: usize, inner: &str| format!("{}<div>{inner}</div>", "<div></div>".repeat(n - 1));
        let description = nth(7, &nth(3, &nth(5, "Un article du jour.")));
        format!(
            "<html><body><div><a class=\"pittochro\" href=\"{href}\"> {title} </a>\
             <a class=\"pittochro\" href=\"old.html\">Older</a></div>{description}</body></html>"
        )
    };
    serve(
        &site,
        "text/html",
        page("article-1.html", "Le   Mont-Saint-Michel"),
    );
    let file = corpus_file(
        "jasonbraganza__huginn-scenarios__create-rss-feed-france-pittoresque.json",
        |kind, o| {
            if kind == "Agents::WebsiteAgent" {
                o["url"] = json!(site.url);
            }
        },
    );
    let ids = import(&hub, ADMIN_TOKEN, &file).await;
    let scrape = ids["France Pittoresque - 1 - Scrape FP Website"];
    let feed = ids["France Pittoresque - 2 - Create RSS feed"];
    let me = hub.get("/api/me", ADMIN_TOKEN).await.json();
    let feed_path = format!("/users/{}/web_requests/{feed}/some-text.xml", me["id"]);

    run(&hub, ADMIN_TOKEN, scrape).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let xml = loop {
        let r = hub.get(&feed_path, "").await;
        assert_eq!(r.status, 200, "{}", r.text());
        if r.text().contains("<item>") {
            break r.text();
        }
        if Instant::now() > deadline {
            let logs = hub
                .get(&format!("/api/agents/{scrape}/logs"), ADMIN_TOKEN)
                .await;
            let events = hub.payloads(ADMIN_TOKEN, scrape).await;
            panic!(
                "the feed stayed empty: {}\n{}\n{events:?}",
                r.text(),
                logs.text()
            );
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        xml.contains("<title>France Pittoresque as a feed</title>"),
        "{xml}"
    );
    assert!(xml.contains("<title>Le Mont-Saint-Michel</title>"), "{xml}");
    assert!(
        xml.contains("https://www.france-pittoresque.com/article-1.html"),
        "{xml}"
    );
    assert!(xml.contains("Un article du jour."), "{xml}");

    // The same page again: the feed keeps one item.
    run(&hub, ADMIN_TOKEN, scrape).await;
    hub.wait_log(ADMIN_TOKEN, scrape, "0 new", 1).await;
    settle().await;
    let xml = hub.get(&feed_path, "").await.text();
    assert_eq!(xml.matches("<item>").count(), 1, "{xml}");
}

/// haxwithaxe's "ntfy example": a manual event → a post agent that builds ntfy's JSON
/// (numbers and lists through `as_object`, `default('')`) with a credential in basic auth.
#[actix_rt::test]
async fn a_manual_alert_reaches_ntfy_as_the_file_builds_it() {
    let smtp = SmtpSink::start();
    let hub = hub(&smtp).await;
    let ntfy = Sink::start();
    let r = hub
        .post_json(
            "/api/credentials",
            ADMIN_TOKEN,
            &json!({"credential_name": "ntfy_token", "credential_value": "tk_secret"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let file = corpus_file(
        "haxwithaxe__huginn-scenarios__ntfy-example.json",
        |kind, o| {
            if kind == "Agents::PostAgent" {
                o["post_url"] = json!(ntfy.url);
            }
        },
    );
    let ids = import(&hub, ADMIN_TOKEN, &file).await;
    let source = ids["Ntfy Alert Test Source"];
    // The payload the file's manual event agent was written to send.
    let payload = file["agents"][1]["options"]["payload"].clone();
    let r = hub
        .post_json(
            &format!("/api/agents/{source}/events"),
            ADMIN_TOKEN,
            &payload,
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let got = ntfy.wait_for(1).await;
    assert_eq!(
        got[0].json(),
        json!({"topic": "huginn-alerts", "message": "test message", "title": "test title",
               "tags": ["warning"], "click": "https://huginn.example.com", "priority": 4})
    );
    // basic_auth ":{% credential ntfy_token %}": an empty user and the token.
    assert_eq!(
        got[0].header("authorization"),
        Some("Basic OnRrX3NlY3JldA==")
    );

    // A second alert without optional fields: the defaults of the file apply. Ruby's
    // lax Liquid reads `default([])` as `default` with no argument (its default is ''),
    // so Huginn sends `"tags": ""` here, not a list; muninn does the same.
    let r = hub
        .post_json(
            &format!("/api/agents/{source}/events"),
            ADMIN_TOKEN,
            &json!({"topic": "huginn-alerts"}),
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let got = ntfy.wait_for(2).await;
    assert_eq!(
        got[1].json(),
        json!({"topic": "huginn-alerts", "message": "", "title": "", "tags": "",
               "click": "", "priority": 3})
    );
}

/// virtadpt's "Tripwire": the FBI's Ten Most Wanted RSS feed → a change detector on
/// `last_updated` → a message written by event formatting → de-duplication → one mail.
#[actix_rt::test]
async fn tripwire_mails_when_a_watched_feed_changes() {
    let smtp = SmtpSink::start();
    let hub = hub(&smtp).await;
    let token = user_with_mail(&hub).await;
    let fbi = Sink::start();
    let feed = |date: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Ten Most Wanted</title><link>https://www.fbi.gov/wanted/topten</link>
<description>FBI</description>
<item><title>Fugitive A</title><link>https://www.fbi.gov/wanted/topten/a</link><guid>https://www.fbi.gov/wanted/topten/a</guid><pubDate>{date}</pubDate></item>
</channel></rss>"#
        )
    };
    serve(
        &fbi,
        "application/rss+xml",
        feed("Mon, 07 Dec 2026 08:00:00 +0000"),
    );
    let file = corpus_file("virtadpt__exocortex-agents__tripwire.json", |kind, o| {
        if kind == "Agents::RssAgent" {
            o["url"] = json!(fbi.url);
        }
    });
    let ids = import(&hub, &token, &file).await;
    let topten = ids["Tripwire - Monitor the FBI's Ten Most Wanted List"];
    run(&hub, &token, topten).await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(
        subjects(&mails),
        ["One of the FBI's Wanted Lists has changed!"]
    );
    assert_eq!(mails[0].to, ["reader@example.com"]);
    let body = mails[0].decoded();
    assert!(
        body.contains("The FBI's Ten Most Wanted List changed on"),
        "{body}"
    );

    // The same feed again: the rss agent emits nothing new, no mail.
    run(&hub, &token, topten).await;
    hub.wait_log(&token, topten, ": 0 new entries", 1).await;
    settle().await;
    assert_eq!(smtp.mails().len(), 1);
}
