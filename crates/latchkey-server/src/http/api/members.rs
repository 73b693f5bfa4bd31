//! `/api/v1/labs/{lab}/members` and `/invitations`: who belongs to a lab, their roles, their
//! own feature allows and denies, and invitations to join.

use super::{ApiError, ApiResult, Body, Caller, ErrorBody, no_content};
use crate::admin::ops::{self, InvitationView, MemberView, NewInvitation, NewMember};
use crate::http::State;
use actix_web::{HttpResponse, delete, get, post, put, web};
use latchkey_core::names::{LabId, UserId};
use serde::Deserialize;
use utoipa::ToSchema;

/// The lab's members with their roles, overrides, effective features and factors.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(("lab" = String, Path, description = "Lab id")),
    responses(
        (status = 200, body = Vec<MemberView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/members")]
pub async fn list_members(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
) -> ApiResult<Vec<MemberView>> {
    Ok(web::Json(ops::list_members(&state, &a, &lab).await?))
}

/// Add a member: an existing account by email, or a new account (with a password, or
/// without one until it is set).
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(("lab" = String, Path, description = "Lab id")),
    request_body = NewMember,
    responses(
        (status = 200, body = MemberView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/labs/{lab}/members")]
pub async fn add_member(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
    body: Body<NewMember>,
) -> ApiResult<MemberView> {
    Ok(web::Json(ops::add_member(&state, &a, &lab, body.0).await?))
}

/// One member.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(("lab" = String, Path, description = "Lab id"), ("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = MemberView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/members/{user}")]
pub async fn get_member(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, UserId)>,
) -> ApiResult<MemberView> {
    let (lab, user) = path.into_inner();
    Ok(web::Json(ops::get_member(&state, &a, &lab, &user).await?))
}

/// Remove a member from the lab: their roles and overrides there go, their sessions end and
/// the lab's refresh tokens are revoked at once.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(("lab" = String, Path, description = "Lab id"), ("user" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Removed"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[delete("/api/v1/labs/{lab}/members/{user}")]
pub async fn remove_member(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, UserId)>,
) -> Result<HttpResponse, ApiError> {
    let (lab, user) = path.into_inner();
    ops::remove_member(&state, &a, &lab, &user).await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    /// Exactly the roles the member holds afterwards; each must exist in the lab.
    pub roles: Vec<String>,
}

/// Set a member's roles.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(("lab" = String, Path, description = "Lab id"), ("user" = String, Path, description = "User id")),
    request_body = RolesBody,
    responses(
        (status = 200, body = MemberView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/labs/{lab}/members/{user}/roles")]
pub async fn set_member_roles(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, UserId)>,
    body: Body<RolesBody>,
) -> ApiResult<MemberView> {
    let (lab, user) = path.into_inner();
    Ok(web::Json(
        ops::set_member_roles(&state, &a, &lab, &user, body.0.roles).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminBody {
    pub admin: bool,
}

/// Make a member a lab administrator, or not.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(("lab" = String, Path, description = "Lab id"), ("user" = String, Path, description = "User id")),
    request_body = AdminBody,
    responses(
        (status = 200, body = MemberView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/labs/{lab}/members/{user}/admin")]
pub async fn set_member_admin(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, UserId)>,
    body: Body<AdminBody>,
) -> ApiResult<MemberView> {
    let (lab, user) = path.into_inner();
    Ok(web::Json(
        ops::set_member_admin(&state, &a, &lab, &user, body.0.admin).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowBody {
    /// true: allow the feature to this member whatever their roles; false: deny it (a deny
    /// wins over every role).
    pub allow: bool,
}

/// Allow or deny one feature to one member.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(
        ("lab" = String, Path, description = "Lab id"),
        ("user" = String, Path, description = "User id"),
        ("feature" = String, Path, description = "Feature, e.g. `orders:read`"),
    ),
    request_body = AllowBody,
    responses(
        (status = 200, body = MemberView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[put("/api/v1/labs/{lab}/members/{user}/features/{feature}")]
pub async fn allow_or_deny_feature(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, UserId, String)>,
    body: Body<AllowBody>,
) -> ApiResult<MemberView> {
    let (lab, user, feature) = path.into_inner();
    let feature = ops::feature_name("feature", &feature)?;
    Ok(web::Json(
        ops::set_member_feature(&state, &a, &lab, &user, &feature, Some(body.0.allow)).await?,
    ))
}

/// Clear a member's own allow or deny of a feature (their roles decide again).
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "members",
    params(
        ("lab" = String, Path, description = "Lab id"),
        ("user" = String, Path, description = "User id"),
        ("feature" = String, Path, description = "Feature"),
    ),
    responses(
        (status = 200, body = MemberView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[delete("/api/v1/labs/{lab}/members/{user}/features/{feature}")]
pub async fn clear_feature(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, UserId, String)>,
) -> ApiResult<MemberView> {
    let (lab, user, feature) = path.into_inner();
    let feature = ops::feature_name("feature", &feature)?;
    Ok(web::Json(
        ops::set_member_feature(&state, &a, &lab, &user, &feature, None).await?,
    ))
}

/// The lab's open invitations.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "invitations",
    params(("lab" = String, Path, description = "Lab id")),
    responses(
        (status = 200, body = Vec<InvitationView>),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[get("/api/v1/labs/{lab}/invitations")]
pub async fn list_invitations(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
) -> ApiResult<Vec<InvitationView>> {
    Ok(web::Json(ops::list_invitations(&state, &a, &lab).await?))
}

/// Invite an email address into the lab with some roles; the person chooses a password at the
/// link. Only a system administrator's response carries the link (shown only here), to send
/// to that address; a lab administrator's invitation is recorded without one, and its link is
/// issued at system level (`latchkey invitation link`). A lab administrator gets the same
/// answer whether or not the address has an account.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "invitations",
    params(("lab" = String, Path, description = "Lab id")),
    request_body = NewInvitation,
    responses(
        (status = 200, body = InvitationView),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[post("/api/v1/labs/{lab}/invitations")]
pub async fn create_invitation(
    state: State,
    Caller(a): Caller,
    lab: web::Path<LabId>,
    body: Body<NewInvitation>,
) -> ApiResult<InvitationView> {
    Ok(web::Json(
        ops::create_invitation(&state, &a, &lab, body.0).await?,
    ))
}

/// Withdraw an open invitation.
#[utoipa::path(
    security(("bearer" = ["lab"])),
    tag = "invitations",
    params(("lab" = String, Path, description = "Lab id"), ("invitation" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = "4XX", body = ErrorBody, description = "Refused; `error` says why"),
    ),
)]
#[delete("/api/v1/labs/{lab}/invitations/{invitation}")]
pub async fn delete_invitation(
    state: State,
    Caller(a): Caller,
    path: web::Path<(LabId, String)>,
) -> Result<HttpResponse, ApiError> {
    let (lab, id) = path.into_inner();
    ops::delete_invitation(&state, &a, &lab, &id).await?;
    Ok(no_content())
}
