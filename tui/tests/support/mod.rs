//! What the render tests share: fixtures, apps filled from them, and drawing on
//! ratatui's TestBackend compared with insta snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use muninn_console::api::{Agent, Failure, IncomingWebhook, StreamItem, Summary};
use muninn_console::app::App;
use muninn_console::ui;
use muninn_console::worker::{Connection, Update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

pub const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

pub fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn empty_app() -> App {
    let mut app = App::new("http://127.0.0.1:3000", true, Duration::from_secs(1));
    app.now = now();
    app.apply_update(Update::Connection(Connection::Connected));
    app
}

pub fn empty_hub_app() -> App {
    let mut app = empty_app();
    app.apply_update(Update::Summary(Summary {
        version: "0.1.0".into(),
        uptime_seconds: 5,
        database_bytes: Some(4096),
        rates: muninn_console::api::Rates {
            bucket_seconds: 10,
            events: vec![0; 60],
            delivered: vec![0; 60],
            failed: vec![0; 60],
            ..Default::default()
        },
        ..Default::default()
    }));
    app
}

pub fn full_app() -> App {
    let mut app = empty_app();
    app.apply_update(Update::Summary(fixture::<Summary>("summary")));
    app.apply_update(Update::Failures(fixture::<Vec<Failure>>("failures")));
    app.apply_update(Update::Agents(fixture::<Vec<Agent>>("agents")));
    app.apply_update(Update::Incoming(fixture::<Vec<IncomingWebhook>>(
        "incoming",
    )));
    app.apply_update(Update::Scenarios(fixture("scenarios")));
    for e in fixture::<Vec<StreamItem>>("events") {
        app.apply_update(Update::Stream(e));
    }
    app
}

pub fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn render(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| ui::draw(f, app)).unwrap();
    term.backend().buffer().clone()
}

pub fn snap(name: &str, app: &mut App) {
    for (w, h) in SIZES {
        let buf = render(app, w, h);
        // One snapshot folder for every render test file, named after the file.
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(
                format!("{}__{name}_{w}x{h}", env!("CARGO_CRATE_NAME")),
                text(&buf)
            );
        });
    }
}
