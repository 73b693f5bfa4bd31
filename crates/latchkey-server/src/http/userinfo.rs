//! The UserInfo endpoint (OIDC Core section 5.3) with bearer tokens per RFC 6750: the token
//! must verify, be unexpired, come from a live grant of an enabled user, and carry `openid`.

use super::State;
use crate::app::AppState;
use crate::protocol::{OAuthError, scope};
use crate::store::now;
use crate::tokens::verify_access_token;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{AccessTokenClaims, ErrorCode};
use serde_json::json;

fn invalid_token(d: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, d)
}

/// RFC 6750 section 3.1: a request without any token gets a bare challenge.
fn no_token() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer realm=\"latchkey\""))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    latchkey_core::bearer_token(h).map(str::to_owned)
}

/// Checks an access token the way every resource of Latchkey's own does: signature and expiry
/// offline, then that its grant is still live (revocation, code replay, logout).
pub async fn check_access_token(
    state: &AppState,
    token: &str,
) -> Result<AccessTokenClaims, OAuthError> {
    let claims = verify_access_token(&state.keys.current(), &state.issuer, token, now())
        .map_err(|e| invalid_token(&e.to_string()))?;
    if let Some(gid) = &claims.gid {
        let live = state
            .store
            .get_grant(gid)
            .await?
            .is_some_and(|g| g.is_live(now()));
        if !live {
            return Err(invalid_token("the token has been revoked"));
        }
        let enabled = state
            .store
            .get_user(&claims.sub)
            .await?
            .is_some_and(|u| !u.disabled);
        if !enabled {
            return Err(invalid_token("the user's account is disabled"));
        }
    }
    Ok(claims)
}

async fn respond(state: &AppState, token: &str) -> Result<HttpResponse, OAuthError> {
    let claims = check_access_token(state, token).await?;
    if claims.gid.is_none() {
        return Err(invalid_token("the token does not represent a user"));
    }
    if !scope::contains(&claims.scope, "openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the token lacks the openid scope",
        ));
    }
    let user = state
        .store
        .get_user(&claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_token("the user's account is disabled"))?;
    let mut body = json!({ "sub": user.id });
    if scope::contains(&claims.scope, "email") {
        body["email"] = json!(user.email);
        body["email_verified"] = json!(false);
    }
    if scope::contains(&claims.scope, "profile")
        && let Some(n) = &user.name
    {
        body["name"] = json!(n);
    }
    if let Some(lab) = &claims.lab {
        body["lab"] = json!(lab);
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

pub async fn get(state: State, req: HttpRequest) -> Result<HttpResponse, OAuthError> {
    match bearer(&req) {
        Some(t) => respond(&state, &t).await,
        None => Ok(no_token()),
    }
}

/// RFC 6750 section 2.2 also allows the token in a form body.
pub async fn post(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    if let Some(t) = bearer(&req) {
        return respond(&state, &t).await;
    }
    let form = super::Params::parse(&body)
        .map_err(|k| OAuthError::invalid_request(format!("`{k}` appears more than once")))?;
    match form.get("access_token") {
        Some(t) => respond(&state, t).await,
        None => Ok(no_token()),
    }
}
