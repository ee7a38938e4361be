//! Request bodies on every inbound route, as a raw TCP client sees them: a chunked body
//! over the route's limit gets 413 and the connection is closed before the client has
//! sent it all; a body that trickles gets 408 at `server.body_read_timeout_seconds`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

/// What the raw client saw.
struct Seen {
    status: u16,
    head: String,
    body: String,
    /// The server closed the connection after its answer.
    closed: bool,
    /// The client got its whole body out (the server kept reading to the end).
    sent_all: bool,
}

/// Sends `head` and `first`, then `rest` one piece every `gap` from another thread
/// while reading the answer here.
fn exchange(base: &str, head: String, first: Vec<u8>, rest: Vec<Vec<u8>>, gap: Duration) -> Seen {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&first).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        for piece in rest {
            std::thread::sleep(gap);
            if writer.write_all(&piece).is_err() {
                return false;
            }
        }
        true
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset after the answer is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
        assert!(got.len() < 1 << 20, "answer too long");
    };
    let sent_all = sending.join().unwrap();
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer; got {text:?}"));
    Seen {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
        closed,
        sent_all,
    }
}

fn request_head(path: &str, headers: &[&str]) -> String {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

fn chunk(size: usize) -> Vec<u8> {
    let mut c = format!("{size:x}\r\n").into_bytes();
    c.extend(std::iter::repeat_n(b'a', size));
    c.extend_from_slice(b"\r\n");
    c
}

/// A chunked body of `first` bytes at once, then 1 KiB every 50 ms for 10 s.
fn oversized_chunked(base: &str, path: &str, headers: &[&str], first: usize) -> Seen {
    let mut h = headers.to_vec();
    h.push("Transfer-Encoding: chunked");
    exchange(
        base,
        request_head(path, &h),
        chunk(first),
        (0..200).map(|_| chunk(1024)).collect(),
        Duration::from_millis(50),
    )
}

/// Declares 100 bytes and sends one every 100 ms (10 s for all of them).
fn trickle(base: &str, path: &str, headers: &[&str]) -> Seen {
    let mut h = headers.to_vec();
    h.push("Content-Length: 100");
    exchange(
        base,
        request_head(path, &h),
        b"{".to_vec(),
        (0..99).map(|_| b" ".to_vec()).collect(),
        Duration::from_millis(100),
    )
}

#[actix_rt::test]
async fn bodies_stop_at_the_limit_and_the_deadline_on_every_route() {
    let hub = TestHub::start_with(|c| {
        c.server.body_read_timeout_seconds = 1;
        c.server.max_body_bytes = 1024;
    })
    .await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let receiver = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "r", "options": {"instructions": {"seen": "yes"}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            ADMIN_TOKEN,
            &json!({"name": "small", "agent_id": receiver, "max_body_bytes": 1024}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let json_type = "Content-Type: application/json";
    let routes: [(&str, String, Vec<&str>, usize); 3] = [
        (
            "incoming webhook",
            format!("/webhook/{token}"),
            vec!["Content-Type: text/plain"],
            2048,
        ),
        (
            "web request",
            format!("/users/1/web_requests/{hook}/s"),
            vec!["Content-Type: text/plain"],
            2048,
        ),
        (
            "API",
            "/api/agents".to_string(),
            vec![auth.as_str(), json_type],
            5 * 1024 * 1024,
        ),
    ];
    for (name, path, headers, first) in &routes {
        let base = hub.base.clone();
        let (path, headers, first) = (path.clone(), headers.clone(), *first);
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let seen = actix_rt::task::spawn_blocking(move || {
            let h: Vec<&str> = headers.iter().map(String::as_str).collect();
            oversized_chunked(&base, &path, &h, first)
        })
        .await
        .unwrap();
        assert_eq!(seen.status, 413, "{name}: {} {}", seen.head, seen.body);
        assert!(
            seen.head.contains("connection: close"),
            "{name}: {}",
            seen.head
        );
        assert!(seen.closed, "{name}: the connection stayed open");
        assert!(!seen.sent_all, "{name}: the server read the whole body");
    }
    for (name, path, headers, _) in &routes {
        let base = hub.base.clone();
        let path = path.clone();
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let seen = actix_rt::task::spawn_blocking(move || {
            let h: Vec<&str> = headers.iter().map(String::as_str).collect();
            trickle(&base, &path, &h)
        })
        .await
        .unwrap();
        assert_eq!(seen.status, 408, "{name}: {} {}", seen.head, seen.body);
        assert!(
            seen.body.contains("did not arrive within 1 s"),
            "{name}: {}",
            seen.body
        );
        assert!(seen.closed, "{name}: the connection stayed open");
        assert!(
            !seen.sent_all,
            "{name}: the server waited for the whole body"
        );
    }
    // The hub still answers, and a body sent at once still works.
    let r = hub
        .request(
            "POST",
            &format!("/webhook/{token}"),
            None,
            &[("content-type", "application/json")],
            Some(br#"{"ok": 1}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
