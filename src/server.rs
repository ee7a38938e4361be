//! Starting the hub: open the store, make sure an admin exists, start the actor tree,
//! then serve HTTP on the given listener until shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::Service;
use actix_web::http::ConnectionType;
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::delivery::SubscriptionIndex;
use crate::http::{AppState, access_log, body, routes};
use crate::hub::{self, Registry, Route, Router};
use crate::ops::shutdown::Signals;
use crate::ops::systemd::{self, Notifier};
use crate::secrets::{KEY_ENV, Keyring, RotationLock, SecretError};
use crate::store::{Store, StoreError, api_tokens, files, users};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the admin token to {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error("the HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
    #[error(transparent)]
    Lexicon(#[from] crate::agents::sentiment::lexicon::LexiconError),
}

/// Runs the hub on `listener` until it is told to stop. Must be called inside an actix
/// `System` (the binary's `main` and the test helper both do).
// One idea: the server's start-up and shutdown sequence in order (store, hub, HTTP, signals,
// drain); splitting it would hide the order it depends on.
pub async fn run(config: Config, listener: TcpListener) -> Result<(), RunError> {
    // A lexicon named but unusable stops the start, naming the file and the line.
    if let Some(l) = crate::agents::sentiment::lexicon::shared(&config.sentiment)? {
        tracing::info!(words = l.len(), path = %config.sentiment.lexicon_path, "sentiment lexicon loaded");
    }
    let config = Arc::new(config);
    let notifier = Notifier::from_env();
    notifier.status("opening the database");
    let data_dir = &config.storage.data_dir;
    files::prepare_dir(data_dir, true)?;
    // The marker guards a SQLite file against silent replacement; a PostgreSQL
    // database lives elsewhere.
    let on_pg = config.postgres_url().is_some();
    if !on_pg {
        files::check_marker(data_dir, &config.database_path(), config.init)?;
    }

    // The Router must exist before the Writer, which reports every commit to it.
    let registry = Arc::new(Registry::default());
    let router_ctx = Context::<Router>::new();
    let sink = router_ctx.address();
    // The subscription index writes each event's deliveries inside its transaction.
    let subscriptions = Arc::new(SubscriptionIndex::default());
    // Held until the hub stops, so `muninn secrets rotate-key` cannot run under it.
    let _key_lock = RotationLock::shared(data_dir)?;
    let keys = Keyring::load(data_dir, std::env::var(KEY_ENV).ok().as_deref())?;
    tracing::info!(key_id = keys.current_id(), source = %keys.source(), "secret key loaded");
    let store = Store::open_sealed(
        &config.store_options(),
        Arc::new(keys),
        subscriptions.clone(),
        Box::new(move |committed| sink.do_send(Route(committed))),
    )?;
    let router = router_ctx.run(Router::new(store.clone(), registry.clone()));
    match config.postgres_url() {
        Some(url) => {
            tracing::info!(database = %crate::store::postgres::redact(url), "database open (PostgreSQL)")
        }
        None => {
            files::write_marker(data_dir, &config.database_path())?;
            tracing::info!(database = %config.database_path().display(), synchronous = ?config.storage.synchronous, "database open");
        }
    }

    bootstrap_admin(&config, &store).await?;
    // `uri_expand` in templates follows redirects through the delivery engine's guard.
    let expander = crate::delivery::expand::Expander::start(config.delivery.allow_private_targets)?;
    store.credentials().set_uri_expander(Arc::new(expander));
    notifier.status("starting agents and subscriptions");
    let addrs = hub::start(&config, store, registry, router, subscriptions).await?;
    // Other nodes' events wake this node's agents and subscriptions (PostgreSQL only).
    if let Some(url) = config.postgres_url().filter(|_| !config.safe_mode) {
        let poll_every = Duration::from_millis(config.delivery.poll_interval_ms);
        hub::remote::listen(url, &addrs, poll_every)?;
    }

    let state = web::Data::new(AppState {
        addrs,
        config: config.clone(),
        started_at: Instant::now(),
    });
    let local = listener.local_addr()?;
    let routes_config = config.clone();
    let http_state = state.clone();
    // Set on the first signal: answers then carry `Connection: close`, so clients on
    // keep-alive connections reconnect (and find the listener closed) instead of
    // holding the graceful stop open until the shutdown timeout.
    let stopping = Arc::new(AtomicBool::new(false));
    let closing = stopping.clone();
    // Every route's body: a deadline, and no reading past what the handler read.
    let body_timeout = Duration::from_secs(config.server.body_read_timeout_seconds.max(1));
    let access_log = config.server.access_log;
    let mut server = HttpServer::new(move || {
        let cfg = routes_config.clone();
        let closing = closing.clone();
        App::new()
            .app_data(http_state.clone())
            // Innermost: actix's own bodiless 404/405 get the API's error body.
            .wrap(crate::http::bodiless_errors())
            .wrap_fn(move |mut req, srv| {
                let held = body::guard(&mut req, body_timeout);
                let answer = srv.call(req);
                async move { Ok(body::hold_until_sent(answer.await?, held)) }
            })
            .wrap_fn(move |req, srv| {
                let logged = access_log.then(|| access_log::Started::new(&req));
                let answer = srv.call(req);
                async move {
                    let res = answer.await?;
                    if let Some(started) = logged {
                        started.finish(&res);
                    }
                    Ok(res)
                }
            })
            .wrap_fn(move |req, srv| {
                let answer = srv.call(req);
                let closing = closing.clone();
                async move {
                    let mut res = answer.await?;
                    if closing.load(Ordering::Relaxed) {
                        res.response_mut()
                            .head_mut()
                            .set_connection_type(ConnectionType::Close);
                    }
                    Ok(res)
                }
            })
            .configure(move |c| routes(c, &cfg))
    })
    // Signals are ours (below): the first starts the whole graceful sequence, not just
    // the HTTP part, and a second one exits at once.
    .disable_signals()
    // The head must arrive within 5 s (the body has its own deadline, above); after an
    // answer to a body not read to the end, what the client still sends is discarded for
    // at most 1 s before the connection closes, so the client can read the answer.
    .client_request_timeout(Duration::from_secs(5))
    .client_disconnect_timeout(Duration::from_secs(1))
    .shutdown_timeout(config.server.shutdown_timeout_seconds)
    .listen(listener)?;
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    let mut signals = Signals::install()?;
    let server = server.run();
    tracing::info!(address = %local, "muninn is listening");
    let summary = if config.safe_mode {
        format!("listening on {local}; SAFE MODE: no agents or subscriptions started")
    } else {
        format!(
            "listening on {local}; {} agents, {} subscriptions",
            state.addrs.registry.agent_count(),
            state.addrs.registry.subscription_count()
        )
    };
    notifier.ready(&summary);
    if let Some(every) = systemd::watchdog_interval() {
        actix_rt::spawn(watchdog(state.addrs.store.clone(), notifier.clone(), every));
    }

    let handle = server.handle();
    let on_signal = notifier.clone();
    actix_rt::spawn(async move {
        let name = signals.next().await;
        tracing::info!(
            signal = name,
            "shutting down: no new connections; finishing requests in flight (a second signal exits at once)"
        );
        on_signal.stopping("shutting down: finishing requests in flight");
        stopping.store(true, Ordering::Relaxed);
        actix_rt::spawn(handle.stop(true));
        let name = signals.next().await;
        // Everything acknowledged is already committed (SQLite rolls back what was not),
        // so exiting here loses nothing a client was told was stored.
        tracing::warn!(
            signal = name,
            "second signal: exiting now; unsettled deliveries are sent after the restart"
        );
        std::process::exit(0);
    });
    server.await?;

    let deadline = Duration::from_secs(config.server.shutdown_timeout_seconds);
    notifier.status("shutting down: settling deliveries in flight");
    let unsettled = state.addrs.registry.drain_deliveries(deadline).await;
    if unsettled > 0 {
        tracing::warn!(
            subscriptions = unsettled,
            "deliveries still in flight at the shutdown deadline; they stay due and are sent after the restart"
        );
    }
    // The other nodes take this one's agents and webhooks at their next heartbeat
    // rather than when the leases run out.
    match state.addrs.cluster.leave().await {
        Ok(n) => tracing::info!(leases = n, "leases given up"),
        Err(e) => {
            tracing::warn!(error = %e, "giving the leases up failed; they expire on their own")
        }
    }
    notifier.status("shutting down: flushing the writer");
    state.addrs.store.writer().close().await;
    tracing::info!("muninn stopped cleanly");
    Ok(())
}

/// Sends `WATCHDOG=1` every `every` while the writer and the readers answer within it.
async fn watchdog(store: Store, notifier: Notifier, every: Duration) {
    loop {
        actix_rt::time::sleep(every).await;
        let write = store.writer().write(|_, _| Ok(()));
        let read = store.read(|c| {
            use diesel::RunQueryDsl;
            Ok(diesel::sql_query("SELECT 1").execute(c)?)
        });
        let probe = actix_rt::time::timeout(every, async { (write.await, read.await) }).await;
        match probe {
            Ok((Ok(()), Ok(_))) => notifier.watchdog(),
            Ok((Err(e), _)) | Ok((_, Err(e))) => {
                tracing::warn!(error = %e, "health probe failed; not petting the systemd watchdog")
            }
            Err(_) => tracing::warn!(
                "health probe took longer than the watchdog interval; not petting the systemd watchdog"
            ),
        }
    }
}

/// On an empty database, creates the admin user. Its token is `MUNINN_ADMIN_TOKEN` when
/// set, or a new one written to `<data dir>/admin.token` (mode 0600). The token itself is
/// never logged.
async fn bootstrap_admin(config: &Config, store: &Store) -> Result<(), RunError> {
    let env_token = config.admin_token.clone();
    let generated = api_tokens::generate();
    let new_token = generated.clone();
    let created = store
        .writer()
        .write(move |c, _| {
            if users::count(c)? == 0 {
                let admin = users::insert(c, "admin", true)?;
                api_tokens::insert(c, admin.id, env_token.as_deref().unwrap_or(&new_token))?;
                return Ok(true);
            }
            if let (Some(token), Some(admin)) = (&env_token, users::first_admin(c)?) {
                api_tokens::insert(c, admin.id, token)?;
            }
            Ok(false)
        })
        .await?;
    if config.admin_token.is_some() {
        tracing::info!("admin API token taken from MUNINN_ADMIN_TOKEN");
    } else if created {
        let path = config.admin_token_path();
        files::write_private(&path, &format!("{generated}\n")).map_err(|e| {
            RunError::TokenFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        tracing::info!(path = %path.display(), "admin user created; its API token is in this file (readable by this user only)");
    }
    Ok(())
}
