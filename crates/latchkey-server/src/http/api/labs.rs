//! `/api/v1/labs`: the labs, and each lab's part of the audit log.

use super::{ApiResult, Body, Caller, ErrorBody};
use crate::admin::ops::{self, AuditEntryView, AuditFilter, LabView, NewLab};
use crate::http::State;
use actix_web::{get, post, web};
use latchkey_core::names::LabId;

/// The labs the caller administers (every lab for a system administrator).
#[utoipa::path(
    security(("bearer" = ["admin"])),
    tag = "labs",
    responses(
        (status = 200, body = Vec<LabView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs")]
pub async fn list_labs(state: State, Caller(a): Caller) -> ApiResult<Vec<LabView>> {
    Ok(web::Json(ops::list_labs(&state, &a).await?))
}

/// Create a lab (system administrators).
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "labs",
    request_body = NewLab,
    responses(
        (status = 200, body = LabView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/labs")]
pub async fn create_lab(state: State, Caller(a): Caller, body: Body<NewLab>) -> ApiResult<LabView> {
    Ok(web::Json(ops::create_lab(&state, &a, body.0).await?))
}

/// One lab.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "labs",
    params(("lab" = String, Path, description = "Lab id")),
    responses(
        (status = 200, body = LabView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}")]
pub async fn get_lab(state: State, Caller(a): Caller, lab: web::Path<LabId>) -> ApiResult<LabView> {
    Ok(web::Json(ops::get_lab(&state, &a, &lab).await?))
}

/// The lab's part of the audit log, newest first: changes made in the lab, the lab's
/// creation, its current members' own security events and account actions on them; nothing
/// naming another lab or a person outside it (docs/administration.md states the rule).
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "audit",
    params(("lab" = String, Path, description = "Lab id"), AuditFilter),
    responses(
        (status = 200, body = Vec<AuditEntryView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/audit")]
pub async fn lab_audit(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
    filter: web::Query<AuditFilter>,
) -> ApiResult<Vec<AuditEntryView>> {
    Ok(web::Json(
        ops::lab_audit_log(&state, &a, &lab, filter.into_inner()).await?,
    ))
}
