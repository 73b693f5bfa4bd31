//! Reading client credentials from a request to the token, revocation or introspection
//! endpoint (RFC 6749 section 2.3.1): HTTP Basic or the form body. Checking them is
//! [`crate::token::client_auth`]'s.

use crate::http::Params;
use crate::protocol::OAuthError;
use crate::token::client_auth::Credentials;
use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The credentials the request presents: HTTP Basic, or `client_id` (and `client_secret`) in
/// the body; both at once is refused.
pub fn credentials(req: &HttpRequest, params: &Params) -> Result<Credentials, OAuthError> {
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
        return Ok(Credentials {
            id,
            secret: Some(dec(secret)),
            basic: true,
        });
    }
    let id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
    Ok(Credentials {
        id: id.to_owned(),
        secret: params.get("client_secret").map(str::to_owned),
        basic: false,
    })
}
