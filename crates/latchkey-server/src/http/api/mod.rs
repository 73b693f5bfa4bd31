//! The admin API: JSON over HTTP under `/api/v1`, described by an OpenAPI 3.1 document served
//! at `/api/v1/openapi.json` and generated from the handlers' annotations below.
//!
//! **The route table** is the one list in [`routes!`]'s invocation: it registers every handler
//! with actix-web *and* names it in the OpenAPI document, so a route cannot exist without being
//! documented (and therefore without being exercised by the authorisation-matrix test, which
//! walks the document).
//!
//! Every handler takes a [`Caller`] (a verified bearer token, see `crate::admin`) and calls one
//! operation in `crate::admin::ops`, which checks the caller's rights first.

pub mod clients;
pub mod labs;
pub mod members;
pub mod roles;
pub mod system;
pub mod users;

use crate::admin::{self, Admin, AdminError};
use crate::http::decode_pairs;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use utoipa::OpenApi;

/// The path prefix of every admin API route.
pub const PREFIX: &str = "/api/v1";

/// An error of the admin API: `{"error": code, "message": …, "field": …}` with the status
/// the code implies.
#[derive(Debug)]
pub struct ApiError(pub AdminError);

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        ApiError(e)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError(e.into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable: unauthenticated, insufficient_user_authentication, forbidden, not_found,
    /// invalid, conflict, internal.
    pub error: &'static str,
    pub message: String,
    /// For `invalid`: the field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `insufficient_user_authentication`: the level to sign in at (as the
    /// `WWW-Authenticate` header's `acr_values`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// For `insufficient_user_authentication`: the oldest sign-in accepted, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            AdminError::Unauthenticated(_)
            | AdminError::DpopRefused(_)
            | AdminError::InsufficientAuthentication { .. } => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        let (message, field) = match &self.0 {
            AdminError::Invalid { field, message } => (message.clone(), Some(field.clone())),
            AdminError::Internal(_) => ("internal error".to_owned(), None),
            e => (e.to_string(), None),
        };
        let mut r = HttpResponse::build(self.status_code());
        let mut step_up = (None, None);
        match &self.0 {
            AdminError::Unauthenticated(_) => {
                r.insert_header((
                    "WWW-Authenticate",
                    r#"Bearer realm="latchkey-admin", error="invalid_token""#,
                ));
            }
            // RFC 9449 section 7.1: the DPoP challenge, and the nonce to use next (section 9).
            AdminError::DpopRefused(e) => {
                r.insert_header((
                    "WWW-Authenticate",
                    format!(
                        r#"DPoP realm="latchkey-admin", error="{}", error_description="{}", algs="{}""#,
                        e.code,
                        e.public_description(),
                        crate::token::dpop::algs().join(" "),
                    ),
                ));
                if let Some(n) = &e.dpop_nonce {
                    r.insert_header((latchkey_core::dpop::NONCE_HEADER, &**n));
                }
            }
            // RFC 9470 section 3: the level and the age a new sign-in must have.
            AdminError::InsufficientAuthentication { need, max_age, .. } => {
                r.insert_header((
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="latchkey-admin", error="insufficient_user_authentication", error_description="A stronger or more recent sign-in is required", acr_values="{need}", max_age={max_age}"#
                    ),
                ));
                step_up = (Some(need.as_str().to_owned()), Some(*max_age));
            }
            _ => {}
        }
        r.insert_header(("Cache-Control", "no-store"))
            .json(ErrorBody {
                error: self.0.code(),
                message,
                field,
                acr_values: step_up.0,
                max_age: step_up.1,
            })
    }
}

pub type ApiResult<T> = Result<web::Json<T>, ApiError>;

/// The verified caller of an admin API request.
pub struct Caller(pub Admin);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let nul = nul_in_request(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError(AdminError::Internal("no state".into())))?;
            if let Some(field) = nul {
                return Err(ApiError(AdminError::invalid(
                    &field,
                    "text must not contain NUL characters",
                )));
            }
            let presented = crate::http::dpop::Presented::from_request(&req).ok_or_else(|| {
                ApiError(AdminError::Unauthenticated(
                    "send an access token: Authorization: Bearer … (or DPoP … with a DPoP proof)"
                        .into(),
                ))
            })?;
            // RFC 9449 section 7: a DPoP-bound token comes with a proof for this request.
            let proof =
                crate::http::dpop::resource_proof(&state, &req, &presented, req.uri().path())
                    .map_err(dpop_refusal)?;
            let jkt = proof.as_ref().map(|p| p.jkt.as_str());
            let admin = admin::authenticate(&state, presented.token(), jkt).await?;
            if let Some(p) = &proof {
                // One use per proof, once the token is known to be bound to its key.
                crate::token::dpop::record(&state, crate::token::dpop::Endpoint::Resource, p)
                    .await
                    .map_err(dpop_refusal)?;
            }
            if admin.is_admin() {
                actix_web::HttpMessage::extensions_mut(&req).insert(
                    crate::http::admin_refused::AdminCaller(admin.actor_id().to_owned()),
                );
            }
            Ok(Caller(admin))
        })
    }
}

/// A DPoP refusal as the admin API's: the DPoP challenge, or a 500 if the database failed.
fn dpop_refusal(e: crate::protocol::OAuthError) -> ApiError {
    ApiError(match e.code {
        latchkey_core::ErrorCode::ServerError => AdminError::Internal(e.public_description()),
        _ => AdminError::DpopRefused(Box::new(e)),
    })
}

/// A JSON request body. Unlike `web::Json`, a value of the wrong type is reported with the
/// path of the field at fault (`roles[0]`), not only a line and column.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Body<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError(AdminError::invalid(
                    "body",
                    "send a JSON body with Content-Type: application/json",
                )));
            }
            let bytes = bytes
                .await
                .map_err(|e| ApiError(AdminError::invalid("body", e.to_string())))?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError(AdminError::invalid("body", e.to_string())))?;
            if let Some(field) = nul_in(&value, "") {
                return Err(ApiError(AdminError::invalid(
                    &field,
                    "text must not contain NUL characters",
                )));
            }
            serde_path_to_error::deserialize(value)
                .map(Body)
                .map_err(|e| {
                    let path = e.path().to_string();
                    let message = e.inner().to_string();
                    let field = if path == "." || path.is_empty() {
                        serde_field(&message)
                    } else {
                        path
                    };
                    ApiError(AdminError::invalid(&field, message))
                })
        })
    }
}

/// The path of the first string holding a NUL character (which no database text column can
/// store), if any.
fn nul_in(v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => Some(if at.is_empty() {
            "body".into()
        } else {
            at.into()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_in(x, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                return Some("body".into());
            }
            let p = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            nul_in(x, &p)
        }),
        _ => None,
    }
}

/// Path and query parameters must not hold NUL characters either.
fn nul_in_request(req: &HttpRequest) -> Option<String> {
    req.match_info()
        .iter()
        .find(|(_, v)| v.contains('\0'))
        .map(|(k, _)| k.to_owned())
        .or_else(|| {
            decode_pairs(req.query_string().as_bytes())
                .into_iter()
                .find(|(k, v)| k.contains('\0') || v.contains('\0'))
                .map(|(k, _)| k)
        })
}

/// A body-less success (`204 No Content`).
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// Names the field a serde error is about (`missing field `name``, `unknown field `x``).
fn serde_field(msg: &str) -> String {
    msg.split('`').nth(1).unwrap_or("body").to_owned()
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| {
        let m = err.to_string();
        ApiError(AdminError::invalid(&serde_field(&m), m)).into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| ApiError(AdminError::invalid("path", err.to_string())).into())
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token Latchkey issued for the audience `latchkey:admin`: \
                         to the admin console, or with client_credentials and scope \
                         `latchkey:admin` to a client registered with `--admin-of`. A \
                         console token must carry an `acr` of at least the server's \
                         `admin.min_acr` (default `mfa`), the level the administrator's own \
                         lab and role policy asks in the lab concerned (system-wide \
                         operations: the strictest of those), and an `auth_time` within \
                         `admin.max_age_secs`; otherwise `401` with `WWW-Authenticate: Bearer \
                         error=\"insufficient_user_authentication\", acr_values=…, max_age=…` \
                         (RFC 9470). Each operation's requirement names who may call it: `system` (system \
                         administrators), `lab` (administrators of the lab in the path), \
                         `user` (administrators of every lab the user belongs to), `admin` \
                         (any administrator; results narrowed to what they administer). \
                         System administrators may call everything.",
                    ))
                    .build(),
            ),
        );
        api.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The route table: registers each handler and documents it.
macro_rules! routes {
    ($($module:ident :: $handler:ident),* $(,)?) => {
        #[derive(OpenApi)]
        #[openapi(
            info(
                title = "Latchkey admin API",
                description = "Labs, members, roles and features, MFA policy, users, clients, \
                    keys and the audit log. System administrators may call everything; lab \
                    administrators only what concerns their labs.",
                license(name = "Apache-2.0"),
            ),
            paths($($module::$handler),*),
            components(schemas(ErrorBody)),
            modifiers(&BearerAuth),
        )]
        pub struct ApiDoc;

        /// Registers every admin API route (and the document describing them).
        pub fn configure(cfg: &mut web::ServiceConfig) {
            cfg.app_data(query_config())
                .app_data(path_config());
            $(cfg.service($module::$handler);)*
            cfg.route(
                "/api/v1/openapi.json",
                web::get().to(openapi_json),
            );
        }
    };
}

routes!(
    labs::list_labs,
    labs::create_lab,
    labs::get_lab,
    members::list_members,
    members::add_member,
    members::get_member,
    members::remove_member,
    members::set_member_roles,
    members::set_member_admin,
    members::allow_or_deny_feature,
    members::clear_feature,
    members::list_invitations,
    members::create_invitation,
    members::delete_invitation,
    roles::list_roles,
    roles::list_features,
    roles::put_role,
    roles::delete_role,
    roles::get_policy,
    roles::put_policy,
    roles::get_adoption,
    labs::lab_audit,
    users::list_users,
    users::get_user,
    users::disable_user,
    users::enable_user,
    users::reset_factors,
    users::reset_attempts,
    users::password_reset,
    users::set_email,
    users::end_sessions,
    users::set_system_admin,
    users::export_user,
    users::erase_user,
    system::list_clients,
    system::create_client,
    system::get_client,
    clients::update_client,
    clients::delete_client,
    clients::disable_client,
    clients::enable_client,
    clients::rotate_secret,
    clients::put_client_policy,
    clients::logout_deliveries,
    system::list_keys,
    system::rotate_keys,
    system::revoke_key,
    system::audit_log,
    system::security_alerts,
    system::mail_outbox,
);

/// The OpenAPI document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> HttpResponse {
    match document().to_json() {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .body(body),
        Err(e) => ApiError(AdminError::Internal(e.to_string())).error_response(),
    }
}
