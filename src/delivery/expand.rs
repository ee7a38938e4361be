//! `uri_expand`'s network side: HEAD requests through the delivery engine's client, so
//! they get its target guard (no private addresses unless the operator allows them),
//! its connect timeout and its refusal to follow redirects by itself.
//!
//! Renderings are synchronous and run on the hub's threads, which have no reactor to
//! spare; so one thread of its own runs the requests, and a rendering waits for the
//! answer at most what is left of its deadline. A rendering that gives up leaves its
//! request to finish (or time out) on that thread, never on the renderer's.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as async_mpsc;
use url::Url;

use super::client;
use crate::template::liquid::expander::UriExpander;

/// The redirects Huginn's filter follows.
const REDIRECTS: [u16; 4] = [301, 302, 303, 307];

struct Job {
    url: String,
    limit: usize,
    deadline: Instant,
    reply: mpsc::SyncSender<String>,
}

/// Sends jobs to the expander thread.
pub struct Expander {
    jobs: async_mpsc::UnboundedSender<Job>,
}

impl Expander {
    /// Starts the thread; `allow_private` is `delivery.allow_private_targets`.
    pub fn start(allow_private: bool) -> std::io::Result<Expander> {
        let (jobs, mut rx) = async_mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("muninn-uri-expand".into())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    while let Some(job) = rx.recv().await {
                        actix_rt::spawn(async move {
                            let end = follow(job.url, job.limit, job.deadline, allow_private).await;
                            // The renderer may have stopped waiting: nothing to tell then.
                            let _ = job.reply.try_send(end);
                        });
                    }
                });
            })?;
        Ok(Expander { jobs })
    }
}

impl UriExpander for Expander {
    fn expand(&self, url: &str, limit: usize, within: Duration) -> String {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            url: url.to_string(),
            limit,
            deadline: Instant::now() + within,
            reply,
        };
        if self.jobs.send(job).is_err() {
            return url.to_string();
        }
        // The thread answers by the deadline (each request is bounded by what is left);
        // the margin covers its own scheduling.
        answer
            .recv_timeout(within + Duration::from_millis(50))
            .unwrap_or_else(|_| url.to_string())
    }
}

/// Huginn's loop: HEAD the URL; on a redirect with a Location, go there and again, at
/// most `limit` times; anything else (an answer, an error, no time left) ends it where
/// it is.
async fn follow(url: String, limit: usize, deadline: Instant, allow_private: bool) -> String {
    let Ok(mut uri) = Url::parse(&url) else {
        return url;
    };
    for _ in 0..limit {
        if !matches!(uri.scheme(), "http" | "https") || uri.host().is_none() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let sent = client::send("HEAD", uri.as_str(), &[], Vec::new(), left, allow_private).await;
        let location = sent
            .headers
            .iter()
            .find(|(n, _)| n == "location")
            .map(|(_, v)| v.clone());
        match (sent.status, location) {
            (Some(status), Some(loc)) if REDIRECTS.contains(&status) => match uri.join(&loc) {
                Ok(next) => uri = next,
                Err(_) => break,
            },
            _ => break,
        }
    }
    uri.into()
}
