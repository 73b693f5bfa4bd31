//! System administration: `/api/v1/clients`, `/api/v1/keys`, `/api/v1/audit`,
//! `/api/v1/security/alerts`.

use super::{ApiResult, Body, Caller, ErrorBody};
use crate::admin::ops::{
    self, AlertView, AuditEntryView, AuditFilter, ClientView, CreatedClientView, KeyView,
    NewClientBody,
};
use crate::http::State;
use actix_web::{get, post, web};
use latchkey_core::names::ClientId;

/// Every registered client.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    responses(
        (status = 200, body = Vec<ClientView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/clients")]
pub async fn list_clients(state: State, Caller(a): Caller) -> ApiResult<Vec<ClientView>> {
    Ok(web::Json(ops::list_clients(&state, &a).await?))
}

/// Register a client; a confidential client's secret is in this response only.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    request_body = NewClientBody,
    responses(
        (status = 200, body = CreatedClientView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/clients")]
pub async fn create_client(
    state: State,
    Caller(a): Caller,
    body: Body<NewClientBody>,
) -> ApiResult<CreatedClientView> {
    Ok(web::Json(ops::create_client(&state, &a, body.0).await?))
}

/// One client.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "clients",
    params(("client" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ClientView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/clients/{client}")]
pub async fn get_client(
    state: State,
    Caller(a): Caller,
    client: web::Path<ClientId>,
) -> ApiResult<ClientView> {
    Ok(web::Json(ops::get_client(&state, &a, &client).await?))
}

/// The published signing keys.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "keys",
    responses(
        (status = 200, body = Vec<KeyView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/keys")]
pub async fn list_keys(state: State, Caller(a): Caller) -> ApiResult<Vec<KeyView>> {
    Ok(web::Json(ops::list_keys(&state, &a).await?))
}

/// Stage successors for every algorithm now (they sign after the staged lead time).
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "keys",
    responses(
        (status = 200, body = Vec<KeyView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/keys/rotate")]
pub async fn rotate_keys(state: State, Caller(a): Caller) -> ApiResult<Vec<KeyView>> {
    Ok(web::Json(ops::rotate_keys(&state, &a).await?))
}

/// Emergency: unpublish a key at once; a successor signs in its place.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "keys",
    params(("kid" = String, Path, description = "Key id")),
    responses(
        (status = 200, body = Vec<KeyView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/keys/{kid}/revoke")]
pub async fn revoke_key(
    state: State,
    Caller(a): Caller,
    kid: web::Path<String>,
) -> ApiResult<Vec<KeyView>> {
    Ok(web::Json(ops::revoke_key(&state, &a, &kid).await?))
}

/// The whole audit log, newest first, with filters.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "audit",
    params(AuditFilter),
    responses(
        (status = 200, body = Vec<AuditEntryView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/audit")]
pub async fn audit_log(
    state: State,
    Caller(a): Caller,
    filter: web::Query<AuditFilter>,
) -> ApiResult<Vec<AuditEntryView>> {
    Ok(web::Json(
        ops::audit_log(&state, &a, filter.into_inner()).await?,
    ))
}

/// The 50 newest intrusion alerts, with each webhook delivery's status.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "audit",
    responses(
        (status = 200, body = Vec<AlertView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/security/alerts")]
pub async fn security_alerts(state: State, Caller(a): Caller) -> ApiResult<Vec<AlertView>> {
    Ok(web::Json(ops::list_alerts(&state, &a).await?))
}

/// The 100 newest e-mail messages, newest first: state (`queued`, `sending`, `sent`,
/// `failed`), attempts and the last error. Bodies are never shown.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "audit",
    responses(
        (status = 200, body = Vec<crate::store::outbox::OutboxEntry>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/mail")]
pub async fn mail_outbox(
    state: State,
    Caller(a): Caller,
) -> ApiResult<Vec<crate::store::outbox::OutboxEntry>> {
    Ok(web::Json(ops::list_outbox(&state, &a).await?))
}
