//! The JSON Web Key Set (RFC 7517 section 5): every published key, each with `kid`, `alg` and
//! `use`. The `Cache-Control` lifetime is what verifiers may cache; key rotation stages new keys
//! at least this long before they sign.

use super::State;
use actix_web::HttpResponse;

pub async fn jwks(state: State) -> HttpResponse {
    let keys = state.keys.current();
    HttpResponse::Ok()
        .insert_header((
            "Cache-Control",
            format!("public, max-age={}", state.config.keys.jwks_max_age_secs),
        ))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .content_type("application/jwk-set+json")
        .json(serde_json::json!({ "keys": keys.published() }))
}
