//! A client's life cycle: `PATCH`/`DELETE /api/v1/clients/{client}`, `POST …/disable`,
//! `…/enable`, `…/rotate-secret`, `PUT …/policy`, and `GET …/logout-deliveries` (system
//! administrators). Registering and reading clients
//! are in [`super::system`].

use super::{ApiResult, Body, Caller, ErrorBody};
use crate::admin::ops::{
    self, ClientPolicyBody, ClientUpdateBody, ClientView, DeletedClientView, LogoutDeliveryView,
    RotateSecretBody, RotatedSecretView,
};
use crate::http::State;
use actix_web::{delete, get, patch, post, put, web};
use latchkey_core::names::ClientId;

/// Edit a client's name and redirect URIs; fields left out stay as they are.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    request_body = ClientUpdateBody,
    responses(
        (status = 200, body = ClientView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[patch("/api/v1/clients/{client}")]
pub async fn update_client(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
    body: Body<ClientUpdateBody>,
) -> ApiResult<ClientView> {
    Ok(web::Json(
        ops::update_client(&state, &a, &client, body.0).await?,
    ))
}

/// Delete a client: its grants, refresh tokens and consents end at once, and its access
/// tokens are inactive at introspection and userinfo. Built-in clients are refused (409).
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = DeletedClientView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[delete("/api/v1/clients/{client}")]
pub async fn delete_client(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
) -> ApiResult<DeletedClientView> {
    Ok(web::Json(ops::delete_client(&state, &a, &client).await?))
}

/// Disable a client: it cannot authenticate, and its tokens are inactive, until enabled.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ClientView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/clients/{client}/disable")]
pub async fn disable_client(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
) -> ApiResult<ClientView> {
    Ok(web::Json(
        ops::set_client_disabled(&state, &a, &client, true).await?,
    ))
}

/// Enable a disabled client again.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ClientView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/clients/{client}/enable")]
pub async fn enable_client(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
) -> ApiResult<ClientView> {
    Ok(web::Json(
        ops::set_client_disabled(&state, &a, &client, false).await?,
    ))
}

/// Give a confidential client a new secret (in this response only); the old one keeps
/// working for `overlap` (default `1h`, `0` stops it at once).
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    request_body = RotateSecretBody,
    responses(
        (status = 200, body = RotatedSecretView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/clients/{client}/rotate-secret")]
pub async fn rotate_secret(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
    body: Body<RotateSecretBody>,
) -> ApiResult<RotatedSecretView> {
    Ok(web::Json(
        ops::rotate_client_secret(&state, &a, &client, body.0).await?,
    ))
}

/// Set the weakest authentication the client accepts (`min_acr` `pwd`, `mfa` or `phr`; null
/// removes it). Applies at the next sign-in and refresh of its users.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    request_body = ClientPolicyBody,
    responses(
        (status = 200, body = ClientView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/clients/{client}/policy")]
pub async fn put_client_policy(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
    body: Body<ClientPolicyBody>,
) -> ApiResult<ClientView> {
    Ok(web::Json(
        ops::set_client_min_acr(&state, &a, &client, body.0.min_acr.as_deref()).await?,
    ))
}

/// The client's newest 50 back-channel logout deliveries (OpenID Connect Back-Channel Logout
/// 1.0), newest first: each ended session's logout token, where it went and how it went.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = Vec<LogoutDeliveryView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/clients/{client}/logout-deliveries")]
pub async fn logout_deliveries(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
) -> ApiResult<Vec<LogoutDeliveryView>> {
    Ok(web::Json(
        ops::client_logout_deliveries(&state, &a, &client).await?,
    ))
}
