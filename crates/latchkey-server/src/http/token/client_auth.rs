//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! section 2.3): `client_secret_basic`, `client_secret_post`, or `none` for public clients.
//! Exactly one method per request.

use crate::app::AppState;
use crate::http::Params;
use crate::protocol::OAuthError;
use crate::secret::TokenHash;
use crate::store::clients::Client;
use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

struct Presented {
    id: String,
    secret: Option<String>,
    basic: bool,
}

fn presented(req: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let basic = header.and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("basic")
            .then(|| rest.trim().to_owned())
    });
    if let Some(b64) = basic {
        if params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not HTTP Basic and client_secret together",
            ));
        }
        let bad = || {
            let mut e =
                OAuthError::invalid_client("the Authorization header is not valid HTTP Basic");
            e.basic_challenge = true;
            e
        };
        let decoded = STANDARD.decode(b64).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        // RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let id = dec(id);
        if params.get("client_id").is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        return Ok(Presented {
            id,
            secret: Some(dec(secret)),
            basic: true,
        });
    }
    let id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
    Ok(Presented {
        id: id.to_owned(),
        secret: params.get("client_secret").map(str::to_owned),
        basic: false,
    })
}

/// Authenticates the calling client.
pub async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    params: &Params,
) -> Result<Arc<Client>, OAuthError> {
    let p = presented(req, params)?;
    let fail = |d: &str| {
        let mut e = OAuthError::invalid_client(d);
        e.basic_challenge = p.basic;
        e
    };
    let Some(client) = state.client(&p.id).await? else {
        return Err(fail("client authentication failed"));
    };
    match (&client.secret_hash, p.secret.as_deref()) {
        (Some(hash), Some(secret)) if TokenHash::of(secret).matches(hash) => Ok(client),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(fail("this is a public client: send no client secret")),
        _ => Err(fail("client authentication failed")),
    }
}
