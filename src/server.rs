//! Starting the hub: open the store, make sure an admin exists, start the actor tree,
//! then serve HTTP on the given listener until shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::delivery::SubscriptionIndex;
use crate::http::{AppState, routes};
use crate::hub::{self, Registry, Route, Router};
use crate::store::{Store, StoreError, api_tokens, users};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("cannot write the admin token to {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error("the HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// Runs the hub on `listener` until it is told to stop. Must be called inside an actix
/// `System` (the binary's `main` and the test helper both do).
pub async fn run(config: Config, listener: TcpListener) -> Result<(), RunError> {
    let config = Arc::new(config);
    let data_dir = &config.storage.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|e| RunError::DataDir {
        path: data_dir.display().to_string(),
        reason: e.to_string(),
    })?;

    // The Router must exist before the Writer, which reports every commit to it.
    let registry = Arc::new(Registry::default());
    let router_ctx = Context::<Router>::new();
    let sink = router_ctx.address();
    // The subscription index writes each event's deliveries inside its transaction.
    let subscriptions = Arc::new(SubscriptionIndex::default());
    let store = Store::open(
        &config.store_options(),
        subscriptions.clone(),
        Box::new(move |committed| sink.do_send(Route(committed))),
    )?;
    let router = router_ctx.run(Router::new(store.clone(), registry.clone()));
    tracing::info!(database = %config.database_path().display(), synchronous = ?config.storage.synchronous, "database open");

    bootstrap_admin(&config, &store).await?;
    let addrs = hub::start(&config, store, registry, router, subscriptions).await?;

    let state = web::Data::new(AppState {
        addrs,
        config: config.clone(),
        started_at: Instant::now(),
    });
    let local = listener.local_addr()?;
    let routes_config = config.clone();
    let mut server = HttpServer::new(move || {
        let cfg = routes_config.clone();
        App::new()
            .app_data(state.clone())
            .configure(move |c| routes(c, &cfg))
    })
    .listen(listener)?;
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    tracing::info!(address = %local, "muninn is listening");
    server.run().await?;
    Ok(())
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
        write_private(&path, &generated).map_err(|e| RunError::TokenFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        tracing::info!(path = %path.display(), "admin user created; its API token is in this file (readable by this user only)");
    }
    Ok(())
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
