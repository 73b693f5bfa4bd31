//! `/api/v1/users`: actions on a user as a whole. A lab administrator may take them only for
//! users all of whose labs they administer; system administrators for anyone.

use super::{ApiError, Body, no_content};
use super::{ApiResult, Caller, ErrorBody};
use crate::admin::ops::{self, Count, UserView};
use crate::http::State;
use crate::store::admin::UserInfo;
use actix_web::{HttpResponse, delete, get, post, put, web};
use latchkey_core::names::UserId;
use serde::Deserialize;
use utoipa::ToSchema;

/// Every user (system administrators).
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "users",
    responses(
        (status = 200, body = Vec<UserInfo>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/users")]
pub async fn list_users(state: State, Caller(a): Caller) -> ApiResult<Vec<UserInfo>> {
    Ok(web::Json(ops::list_users(&state, &a).await?))
}

/// One user, their labs and factors.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/users/{user}")]
pub async fn get_user(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<UserView> {
    Ok(web::Json(ops::get_user(&state, &a, &user).await?))
}

/// Disable a user: their sessions and refresh tokens end at once and they cannot sign in.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/users/{user}/disable")]
pub async fn disable_user(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<UserView> {
    Ok(web::Json(ops::set_disabled(&state, &a, &user, true).await?))
}

/// Enable a disabled user.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/users/{user}/enable")]
pub async fn enable_user(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<UserView> {
    Ok(web::Json(
        ops::set_disabled(&state, &a, &user, false).await?,
    ))
}

/// Remove every second factor (TOTP, passkeys, security keys, recovery codes) and end the
/// user's sessions: they enrol again at their next sign-in.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = Count, description = "How many factors were removed"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/users/{user}/reset-factors")]
pub async fn reset_factors(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<Count> {
    Ok(web::Json(ops::reset_factors(&state, &a, &user).await?))
}

/// Clear the user's sign-in attempts: their account's password budgets (every source and
/// browser) and their count of wrong second-factor codes, so they can try again at once.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = Count, description = "How many counters were cleared"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/users/{user}/reset-attempts")]
pub async fn reset_attempts(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<Count> {
    Ok(web::Json(ops::reset_attempts(&state, &a, &user).await?))
}

/// Mail the user a password-reset link (single use, `mail.reset_link_minutes`), instead of
/// setting a password for them. Using it ends every session; a second factor is still asked
/// at the next sign-in.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = ops::ResetSent, description = "The link is queued for the user's address"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/users/{user}/password-reset")]
pub async fn password_reset(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<ops::ResetSent> {
    Ok(web::Json(
        ops::send_password_reset(&state, &a, &user).await?,
    ))
}

/// Change the user's e-mail address (for someone who lost the old mailbox; system
/// administrators only). The new address
/// is unconfirmed (`email_verified: false`) until the user opens the link mailed to it; the
/// old address is told.
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    request_body = ops::NewEmail,
    responses(
        (status = 200, body = ops::EmailSet, description = "Changed; a confirmation link is on its way"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/users/{user}/email")]
pub async fn set_email(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
    body: Body<ops::NewEmail>,
) -> ApiResult<ops::EmailSet> {
    Ok(web::Json(
        ops::set_email(&state, &a, &user, &body.0.email).await?,
    ))
}

/// End every session of the user and revoke their refresh tokens.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = Count, description = "How many sessions ended"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/users/{user}/end-sessions")]
pub async fn end_sessions(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<Count> {
    Ok(web::Json(ops::end_sessions(&state, &a, &user).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemAdminBody {
    pub admin: bool,
}

/// Make a user a system administrator, or not (system administrators).
#[utoipa::path(
    security(("bearer" = ["system"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    request_body = SystemAdminBody,
    responses(
        (status = 200, body = UserView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/users/{user}/system-admin")]
pub async fn set_system_admin(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
    body: Body<SystemAdminBody>,
) -> ApiResult<UserView> {
    Ok(web::Json(
        ops::set_system_admin(&state, &a, &user, body.0.admin).await?,
    ))
}

/// Everything Latchkey holds about the person, as JSON (no secrets: factor metadata only).
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = Object, description = "The person's data"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/users/{user}/export")]
pub async fn export_user(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> ApiResult<serde_json::Value> {
    Ok(web::Json(ops::export_user(&state, &a, &user).await?))
}

/// Erase the person: factors, sessions, grants, memberships go; email and name are replaced;
/// the audit log keeps only their opaque id and stays verifiable.
#[utoipa::path(
    security(("bearer" = ["user"])),
    tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Erased"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[delete("/api/v1/users/{user}")]
pub async fn erase_user(
    state: State,
    Caller(a): Caller,
    user: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    ops::erase_user(&state, &a, &user).await?;
    Ok(no_content())
}
