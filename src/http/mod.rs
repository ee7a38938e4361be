//! The HTTP face: public routes (Huginn web requests, health) and the `/api`
//! management API. Every route is registered in [`routes`]. Handlers talk to the hub
//! through `Addrs` only.

pub mod access_log;
pub mod api;
mod auth;
pub mod body;
mod error;
mod feed_requests;
mod inbound;
mod metrics;
pub mod openapi;
mod page_requests;
mod query;
mod service_errors;
mod web_requests;

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};

pub use auth::AuthUser;
pub use error::{ApiError, ErrorCode, bodiless_errors};
pub use query::Query;

use crate::config::Config;
use crate::hub::Addrs;

/// What every handler can reach.
pub struct AppState {
    pub addrs: Addrs,
    pub config: Arc<Config>,
    pub started_at: Instant,
}

/// Largest JSON body the management API accepts.
const API_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Registers every route of the hub.
// One idea: the table of every route the hub serves, in one place so a path can be found and
// checked against the OpenAPI document.
pub fn routes(cfg: &mut web::ServiceConfig, config: &Config) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(API_BODY_LIMIT)
            .error_handler(error::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .app_data(web::PathConfig::default().error_handler(error::path_error))
    .route("/healthz", web::get().to(api::status::healthz))
    .route("/worker_status", web::get().to(api::status::worker_status))
    .route("/metrics", web::get().to(metrics::metrics))
    // `/users/{user_id}/web_requests|webhooks/{agent_id}/{secret}`: a static prefix,
    // and the rest split by the handler. Patterns with parameters are matched with a
    // regex, which was a tenth of the HTTP workers' own time on every webhook.
    .service(
        web::scope("/users")
            .app_data(web::PayloadConfig::default().limit(config.server.max_body_bytes))
            .default_service(web::to(web_requests::handle)),
    )
    .configure(inbound_routes)
    .configure(huginn_management_routes)
    .service(
        web::scope("/api")
            .configure(inbound_api_routes)
            .service(
                web::resource("/me")
                    .get(api::users::me)
                    .patch(api::users::update_me),
            )
            .service(
                web::resource("/users")
                    .get(api::users::list)
                    .post(api::users::create),
            )
            .service(
                web::resource("/tokens")
                    .get(api::tokens::list)
                    .post(api::tokens::create),
            )
            .route("/tokens/{id}", web::delete().to(api::tokens::revoke))
            .route("/tokens/{id}/rotate", web::post().to(api::tokens::rotate))
            .configure(credential_routes)
            .service(
                web::resource("/agents")
                    .get(api::agents::list)
                    .post(api::agents::create),
            )
            // Before /agents/{id}, which would take "dry_run" as an id.
            .route("/agents/dry_run", web::post().to(api::agents::dry_run))
            .service(
                web::resource("/agents/{id}")
                    .get(api::agents::get)
                    .put(api::agents::update)
                    .patch(api::agents::update)
                    .delete(api::agents::delete),
            )
            .service(
                web::resource("/agents/{id}/events")
                    .get(api::events::for_agent)
                    .post(api::agents::post_events)
                    .delete(api::agents::delete_events),
            )
            .route("/agents/{id}/logs", web::get().to(api::agents::logs))
            .route("/agents/{id}/run", web::post().to(api::agents::run))
            .route(
                "/agents/{id}/memory",
                web::delete().to(api::agents::clear_memory),
            )
            .route(
                "/agents/{id}/reemit_events",
                web::post().to(api::agents::reemit_events),
            )
            .service(
                web::resource("/links")
                    .get(api::links::list)
                    .post(api::links::create),
            )
            .route("/links/{id}", web::delete().to(api::links::delete))
            .route("/events", web::get().to(api::events::list))
            .route("/events/{id}", web::get().to(api::events::get))
            // Outgoing webhooks (subscriptions) and their deliveries.
            .route(
                "/webhooks/event-types",
                web::get().to(api::subscriptions::event_types),
            )
            .service(
                web::resource("/webhooks/outgoing")
                    .get(api::subscriptions::list)
                    .post(api::subscriptions::create),
            )
            .service(
                web::resource("/webhooks/outgoing/{id}")
                    .get(api::subscriptions::get)
                    .put(api::subscriptions::update)
                    .patch(api::subscriptions::update)
                    .delete(api::subscriptions::delete),
            )
            .route(
                "/webhooks/outgoing/{id}/pause",
                web::post().to(api::subscriptions::pause),
            )
            .route(
                "/webhooks/outgoing/{id}/resume",
                web::post().to(api::subscriptions::resume),
            )
            .route(
                "/webhooks/outgoing/{id}/rotate-secret",
                web::post().to(api::subscriptions::rotate_secret),
            )
            .route(
                "/webhooks/outgoing/{id}/test",
                web::post().to(api::subscriptions::test),
            )
            .route(
                "/webhooks/outgoing/{id}/reset-circuit",
                web::post().to(api::circuit::reset),
            )
            .route(
                "/webhooks/test/{id}",
                web::post().to(api::subscriptions::test),
            )
            .route(
                "/webhooks/outgoing/{id}/replay",
                web::post().to(api::subscriptions::replay),
            )
            .route("/deliveries", web::get().to(api::deliveries::list))
            .route("/deliveries/{id}", web::get().to(api::deliveries::get))
            .route(
                "/deliveries/{id}/retry",
                web::post().to(api::deliveries::retry),
            )
            // Scenarios: Huginn's import/export format.
            .service(
                web::resource("/scenarios")
                    .get(api::scenarios::list)
                    .post(api::scenarios::create),
            )
            .route("/scenarios/import", web::post().to(api::scenarios::import))
            .service(
                web::resource("/scenarios/{id}")
                    .get(api::scenarios::get)
                    .delete(api::scenarios::delete),
            )
            .route(
                "/scenarios/{id}/export",
                web::get().to(api::scenarios::export),
            )
            // The operator console: overview and live stream.
            .route("/summary", web::get().to(api::summary::summary))
            .route("/stream", web::get().to(api::stream::stream))
            // The OpenAPI document of every route above and beside.
            .route("/openapi.json", web::get().to(openapi::document))
            .route("/docs", web::get().to(openapi::docs))
            .default_service(web::to(api_not_found)),
    )
    // The simple registration API: the same subscriptions, a smaller shape.
    .route(
        "/webhooks/register",
        web::post().to(api::register::register),
    )
    .route("/webhooks", web::get().to(api::register::list))
    .route(
        "/webhooks/{id}",
        web::delete().to(api::subscriptions::delete),
    )
    .route(
        "/webhooks/{id}/events",
        web::post().to(api::register::set_events),
    );
}

/// Public inbound route: `/webhook/{token}` (every verb reaches the endpoint, which
/// answers 405 with `Allow` for all but POST and the OPTIONS preflight).
fn inbound_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhook/{token}", web::route().to(inbound::webhook));
}

/// Huginn's agent-management paths, as its integration guide prints them, beside
/// muninn's `/api` ones: the same handlers, token-authenticated like the rest of the API.
fn huginn_management_routes(cfg: &mut web::ServiceConfig) {
    use api::{agents, events, scenarios};
    cfg.route("/agents.json", web::get().to(agents::list))
        .route("/agents/{id:\\d+}.json", web::get().to(agents::get))
        .route("/agents/{id}/run", web::post().to(agents::run))
        .route("/agents/{id}/events.json", web::get().to(events::for_agent))
        .route(
            "/agents/{id}/reemit_events",
            web::post().to(agents::reemit_events),
        )
        .route(
            "/agents/{id}/remove_events",
            web::delete().to(agents::delete_events),
        )
        .route("/scenarios/{id}/export", web::get().to(scenarios::export));
}

/// `/api/credentials`: users' credentials (Huginn's user credentials).
fn credential_routes(cfg: &mut web::ServiceConfig) {
    use api::credentials;
    cfg.service(
        web::resource("/credentials")
            .get(credentials::list)
            .post(credentials::create),
    )
    .service(
        web::resource("/credentials/{id}")
            .get(credentials::get)
            .put(credentials::update)
            .patch(credentials::update)
            .delete(credentials::delete),
    );
}

/// `/api/webhooks/incoming...` and the inbound logs and statistics.
fn inbound_api_routes(cfg: &mut web::ServiceConfig) {
    use api::{incoming_webhooks as incoming, webhook_logs};
    cfg.service(
        web::resource("/webhooks/incoming")
            .get(incoming::list)
            .post(incoming::create),
    )
    .service(
        web::resource("/webhooks/incoming/{id}")
            .get(incoming::get)
            .put(incoming::update)
            .patch(incoming::update)
            .delete(incoming::delete),
    )
    .route(
        "/webhooks/incoming/{id}/rotate",
        web::post().to(incoming::rotate),
    )
    .route("/webhooks/{id}/logs", web::get().to(webhook_logs::logs))
    .route(
        "/webhooks/{id}/statistics",
        web::get().to(webhook_logs::statistics),
    );
}

async fn api_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(error::no_route(&req))
}
