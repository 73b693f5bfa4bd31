//! `/api/v1/labs/{lab}/roles` and `/policy`: what each role gives, and the lab's MFA policy
//! with its adoption.

use super::{ApiError, ApiResult, Body, Caller, ErrorBody, no_content};
use crate::admin::ops::{self, Adoption, PolicyView, RoleBody, RoleView};
use crate::http::State;
use actix_web::{HttpResponse, delete, get, put, web};
use latchkey_core::names::LabId;

/// The lab's roles with their features and minimum levels.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "roles",
    params(("lab" = String, Path, description = "Lab id")),
    responses(
        (status = 200, body = Vec<RoleView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/roles")]
pub async fn list_roles(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
) -> ApiResult<Vec<RoleView>> {
    Ok(web::Json(ops::list_roles(&state, &a, &lab).await?))
}

/// The features the lab's services declare: what may be granted in the lab. Empty when none
/// declares any (then any well-formed feature name may be granted).
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "roles",
    params(("lab" = String, Path, description = "Lab id")),
    responses(
        (status = 200, body = Vec<String>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/features")]
pub async fn list_features(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
) -> ApiResult<Vec<String>> {
    Ok(web::Json(ops::lab_features(&state, &a, &lab).await?))
}

/// Create or replace a role: exactly these features, and this minimum level.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "roles",
    params(("lab" = String, Path, description = "Lab id"), ("role" = String, Path, description = "Role name")),
    request_body = RoleBody,
    responses(
        (status = 200, body = RoleView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/labs/{lab}/roles/{role}")]
pub async fn put_role(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, String)>,
    body: Body<RoleBody>,
) -> ApiResult<RoleView> {
    let (lab, role) = path.into_inner();
    let role = ops::role_name("name", &role)?;
    Ok(web::Json(
        ops::put_role(&state, &a, &lab, &role, body.0).await?,
    ))
}

/// Delete a role; its holders lose it.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "roles",
    params(("lab" = String, Path, description = "Lab id"), ("role" = String, Path, description = "Role name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[delete("/api/v1/labs/{lab}/roles/{role}")]
pub async fn delete_role(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, String)>,
) -> Result<HttpResponse, ApiError> {
    let (lab, role) = path.into_inner();
    let role = ops::role_name("name", &role)?;
    ops::delete_role(&state, &a, &lab, &role).await?;
    Ok(no_content())
}

/// The lab's MFA policy.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "policy",
    params(("lab" = String, Path, description = "Lab id")),
    responses(
        (status = 200, body = PolicyView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/policy")]
pub async fn get_policy(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
) -> ApiResult<PolicyView> {
    Ok(web::Json(ops::get_policy(&state, &a, &lab).await?))
}

/// Set the lab's MFA policy (`min_acr` null removes it). Applies at members' next sign-in
/// and next refresh.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "policy",
    params(("lab" = String, Path, description = "Lab id")),
    request_body = PolicyView,
    responses(
        (status = 200, body = PolicyView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/labs/{lab}/policy")]
pub async fn put_policy(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
    body: Body<PolicyView>,
) -> ApiResult<PolicyView> {
    Ok(web::Json(ops::put_policy(&state, &a, &lab, body.0).await?))
}

/// How many members already meet the policy, and the strongest level each can reach.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "policy",
    params(("lab" = String, Path, description = "Lab id")),
    responses(
        (status = 200, body = Adoption),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/policy/adoption")]
pub async fn get_adoption(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
) -> ApiResult<Adoption> {
    Ok(web::Json(ops::adoption(&state, &a, &lab).await?))
}
