//! The HTTP face: public routes (Huginn web requests, health) and the `/api`
//! management API. Every route is registered in [`routes`]. Handlers talk to the hub
//! through `Addrs` only.

pub mod api;
mod auth;
mod error;
mod metrics;
mod web_requests;

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};

pub use auth::AuthUser;
pub use error::ApiError;

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
    .service(
        web::resource([
            "/users/{user_id}/web_requests/{agent_id}/{secret}",
            "/users/{user_id}/webhooks/{agent_id}/{secret}",
        ])
        .app_data(web::PayloadConfig::default().limit(config.server.max_body_bytes))
        .route(web::route().to(web_requests::handle)),
    )
    .service(
        web::scope("/api")
            .route("/me", web::get().to(api::users::me))
            .service(
                web::resource("/users")
                    .get(api::users::list)
                    .post(api::users::create),
            )
            .service(
                web::resource("/agents")
                    .get(api::agents::list)
                    .post(api::agents::create),
            )
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
                    .delete(api::agents::delete_events),
            )
            .route("/agents/{id}/logs", web::get().to(api::agents::logs))
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
                "/webhooks/outgoing/{id}/replay",
                web::post().to(api::subscriptions::replay),
            )
            .route(
                "/webhooks/{id}/logs",
                web::get().to(api::webhook_logs::logs),
            )
            .route(
                "/webhooks/{id}/statistics",
                web::get().to(api::webhook_logs::statistics),
            )
            .route("/deliveries", web::get().to(api::deliveries::list))
            .route("/deliveries/{id}", web::get().to(api::deliveries::get))
            .route(
                "/deliveries/{id}/retry",
                web::post().to(api::deliveries::retry),
            )
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

async fn api_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no API route for {} {}",
        req.method(),
        req.path()
    )))
}
