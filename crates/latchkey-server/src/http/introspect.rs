//! The introspection endpoint (RFC 7662): parse, authenticate the client, call
//! [`crate::token::introspection::introspect`], render the section 2.2 response.

use super::State;
use super::token::{client_auth, form};
use crate::protocol::OAuthError;
use crate::store::now;
use crate::token::introspection::{self, Introspection, IntrospectionRequest};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

pub async fn introspect(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form(&req, &body)?;
    let credentials = client_auth::credentials(&req, &params)?;
    let client = crate::token::client_auth::authenticate(&state, &credentials).await?;
    let request = IntrospectionRequest {
        token: params.get("token").map(str::to_owned),
    };
    let body = match introspection::introspect(&state, &client, &request, now()).await? {
        Introspection::Inactive => json!({ "active": false }),
        Introspection::RefreshToken(g) => json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": g.client_id,
            "sub": g.user_id,
            "scope": g.scope,
            "exp": g.expires_at,
            "iat": g.created_at,
            "iss": state.issuer,
            "auth_time": g.auth_time,
            "acr": g.acr,
            "amr": g.amr,
        }),
        Introspection::AccessToken(c) => {
            let mut v = serde_json::to_value(&*c).unwrap_or_default();
            v["active"] = json!(true);
            // RFC 9449 section 6.2: a bound token says so, and carries its `cnf`.
            v["token_type"] = json!(if c.cnf.is_some() { "DPoP" } else { "Bearer" });
            v
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
