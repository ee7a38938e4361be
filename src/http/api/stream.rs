//! `GET /api/stream`: Server-Sent Events of committed events (`event: event`) and
//! delivery outcomes (`event: delivery`), as they happen. A user sees its own; an
//! admin sees all. Each client reads from a bounded broadcast buffer: a client that
//! falls `STREAM_BUFFER` items behind skips them and gets `event: lagged` with the
//! number skipped, so a slow client never grows the hub's memory.
//!
//! A stream ends when the process is told to stop (SIGTERM, SIGINT): otherwise the
//! graceful shutdown would wait for every open stream until its timeout.

use std::time::Duration;

use actix_rt::signal::unix::{Signal, SignalKind, signal};
use actix_web::{HttpResponse, web};
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use crate::http::{ApiError, AppState, AuthUser};
use crate::telemetry::stats::StreamItem;

/// A comment line this often keeps proxies and clients from timing the stream out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event of the stream as a client's SSE parser reads it (the keep-alive comment
/// lines are not events).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Frame {
    pub event: FrameKind,
    /// JSON text: `{"user_id", "is_admin"}` for `hello`, the event or delivery outcome,
    /// `{"skipped": n}` for `lagged`.
    pub data: String,
}

#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// First, once: who the stream is for.
    Hello,
    /// A committed event.
    Event,
    /// A delivery outcome.
    Delivery,
    /// The client fell behind: `skipped` items were left out.
    Lagged,
}

impl FrameKind {
    fn as_str(self) -> &'static str {
        match self {
            FrameKind::Hello => "hello",
            FrameKind::Event => "event",
            FrameKind::Delivery => "delivery",
            FrameKind::Lagged => "lagged",
        }
    }
}

fn frame(event: FrameKind, data: String) -> web::Bytes {
    let f = Frame { event, data };
    web::Bytes::from(format!("event: {}\ndata: {}\n\n", f.event.as_str(), f.data))
}

/// SIGTERM and SIGINT, as seen by one stream (tokio delivers a signal to every listener).
struct Stop(Option<Signal>, Option<Signal>);

impl Stop {
    fn new() -> Stop {
        Stop(
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    }

    async fn wait(&mut self) {
        async fn one(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = one(&mut self.0) => {}
            _ = one(&mut self.1) => {}
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/stream",
    operation_id = "stream_stream",
    tag = "stream",
    responses(
        (status = 200, description = "Server-Sent Events: `hello`, then `event`, `delivery` and `lagged` frames", content_type = "text/event-stream", body = Frame)
    )
)]
pub async fn stream(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    // The receiver hands on only what this user may see.
    let rx = state.addrs.registry.stats.subscribe(user.scope());
    let stop = Stop::new();
    let hello = frame(
        FrameKind::Hello,
        serde_json::json!({"user_id": user.id, "is_admin": user.is_admin}).to_string(),
    );
    let body = stream::unfold(
        (rx, stop, Some(hello)),
        |(mut rx, mut stop, first)| async move {
            if let Some(f) = first {
                return Some((Ok::<_, actix_web::Error>(f), (rx, stop, None)));
            }
            let next = tokio::select! {
                n = tokio::time::timeout(KEEP_ALIVE, rx.recv()) => n,
                _ = stop.wait() => return None,
            };
            let out = match next {
                Err(_) => web::Bytes::from_static(b": keep-alive\n\n"),
                Ok(Ok(item)) => {
                    let kind = match *item {
                        StreamItem::Event { .. } => FrameKind::Event,
                        StreamItem::Delivery { .. } => FrameKind::Delivery,
                    };
                    frame(kind, serde_json::to_string(&*item).unwrap_or_default())
                }
                Ok(Err(RecvError::Lagged(n))) => frame(
                    FrameKind::Lagged,
                    serde_json::json!({"skipped": n}).to_string(),
                ),
                // The hub is shutting down.
                Ok(Err(RecvError::Closed)) => return None,
            };
            Some((Ok(out), (rx, stop, None)))
        },
    );
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "text/event-stream"))
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
