//! OpenID Connect Discovery 1.0 section 3 and RFC 8414 authorization server metadata. Lists
//! exactly what is implemented, nothing more.

use super::State;
use actix_web::HttpResponse;
use serde_json::{Value, json};

/// `require_par`: every client must push its authorization requests (`par.required`).
pub fn metadata(issuer: &str, require_par: bool) -> Value {
    // What `private_key_jwt` assertions may be signed with (RFC 7523).
    let assertion_algs = crate::crypto::client_jwk::AssertionAlg::ALL.map(|a| a.as_str());
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "pushed_authorization_request_endpoint": format!("{issuer}/par"),
        "require_pushed_authorization_requests": require_par,
        "device_authorization_endpoint": format!("{issuer}/device_authorization"),
        "scopes_supported": crate::protocol::scope::SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            crate::protocol::device_code::GRANT_TYPE
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": assertion_algs,
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": ["pwd", "mfa", "phr"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
            "at_hash", "lab", "roles", "features", "email", "email_verified", "name"
        ],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        // OpenID Connect Back-Channel Logout 1.0 section 2.1: every logout token has `sid`.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}

fn respond(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(body)
}

pub async fn openid_configuration(state: State) -> HttpResponse {
    respond(metadata(&state.issuer, state.config.par.required))
}

pub async fn oauth_metadata(state: State) -> HttpResponse {
    respond(metadata(&state.issuer, state.config.par.required))
}
