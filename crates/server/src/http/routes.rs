//! The route table. Each endpoint is declared once, by `#[utoipa::path]` on its handler (method,
//! path, security, body and answers): the router mounts it from that declaration and
//! `/openapi.json` is generated from the same one, so neither can drift. The routes that change
//! state answer each request once (the idempotency layer).

use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    account_requests, deep_links, idempotency, inbound, introspect, oauth, openapi, ops, protocol,
    resources,
};
use crate::{state::AppState, web};

/// The schemas every operation may refer to, whether or not one names them.
#[derive(OpenApi)]
#[openapi(components(schemas(provisio_protocol::FlatError, openapi::Acknowledged,)))]
struct Shared;

pub fn table() -> OpenApiRouter<AppState> {
    let answered_once = OpenApiRouter::new()
        .routes(routes!(account_requests::create))
        .routes(routes!(resources::create))
        .routes(routes!(resources::update_service))
        .routes(routes!(resources::rotate_credentials))
        .routes(routes!(resources::remove))
        .routes(routes!(deep_links::create))
        .route_layer(axum::middleware::from_fn(idempotency::answer_once));
    OpenApiRouter::with_openapi(Shared::openapi())
        .routes(routes!(protocol::health))
        .routes(routes!(protocol::services))
        .routes(routes!(oauth::token))
        .routes(routes!(resources::get))
        .routes(routes!(oauth::metadata))
        .routes(routes!(introspect::introspect))
        .routes(routes!(inbound::revoke_user))
        .routes(routes!(inbound::project_removed))
        .routes(routes!(inbound::erase_user))
        .routes(routes!(web::login))
        .routes(routes!(web::home))
        .routes(routes!(web::project))
        .routes(routes!(web::logout))
        .routes(routes!(web::consent::show))
        .routes(routes!(web::consent::send_link))
        .routes(routes!(web::consent::verify))
        .routes(routes!(web::consent::choose))
        .routes(routes!(web::consent::confirm))
        .routes(routes!(web::consent::decline))
        .routes(routes!(ops::llm_context))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::openapi))
        .merge(answered_once)
}

/// The OpenAPI 3.1 document of the route table.
pub fn openapi() -> serde_json::Value {
    openapi::complete(table().into_openapi())
}
