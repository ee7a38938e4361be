//! A small load generator for the binary-driven tests: `concurrency` tasks POST
//! `{"n": n}` for n in 0..total to one URL and record which n got a 2xx. A task stops
//! at its first connection error (the server went away).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::process::client;

#[derive(Clone, Default)]
pub struct Load {
    pub acked: Arc<Mutex<BTreeSet<u64>>>,
    pub refused: Arc<AtomicU64>,
    pub other: Arc<Mutex<Vec<u16>>>,
    next: Arc<AtomicU64>,
}

impl Load {
    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    pub fn acked(&self) -> BTreeSet<u64> {
        self.acked.lock().unwrap().clone()
    }

    /// Starts the tasks on the current (actix) runtime; await the handles to finish.
    pub fn start(
        &self,
        url: &str,
        total: u64,
        concurrency: usize,
    ) -> Vec<actix_rt::task::JoinHandle<()>> {
        (0..concurrency)
            .map(|_| {
                let (me, url) = (self.clone(), url.to_string());
                actix_rt::spawn(async move {
                    let c = client();
                    loop {
                        let n = me.next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            break;
                        }
                        match c.post(&url).send_json(&json!({ "n": n })).await {
                            Ok(mut r) => {
                                let _ = r.body().await;
                                if r.status().is_success() {
                                    me.acked.lock().unwrap().insert(n);
                                } else {
                                    me.other.lock().unwrap().push(r.status().as_u16());
                                }
                            }
                            Err(_) => {
                                me.refused.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                })
            })
            .collect()
    }

    /// Waits (bounded) until at least `n` requests were acknowledged.
    pub async fn wait_acked(&self, n: usize, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.acked_count() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} requests acknowledged after {within:?}",
                self.acked_count()
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Every event in the database, read through the API by cursor: id -> payload.
pub async fn all_events(base: &str, token: &str) -> HashMap<i64, Value> {
    let c = client();
    let mut out = HashMap::new();
    let mut after = 0i64;
    loop {
        let mut r = c
            .get(format!("{base}/api/events?after={after}&limit=1000"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let page: Vec<Value> = r.json().limit(64 * 1024 * 1024).await.unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        after = last["id"].as_i64().unwrap();
        for e in page {
            out.insert(e["id"].as_i64().unwrap(), e["payload"].clone());
        }
    }
}

/// The `n` values carried by events (their payload `{"n": n}`).
pub fn ns(events: &HashMap<i64, Value>) -> HashSet<u64> {
    events.values().filter_map(|p| p["n"].as_u64()).collect()
}
