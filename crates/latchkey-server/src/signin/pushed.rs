//! Pushed authorization requests (RFC 9126). A client authenticates at `/par` and pushes
//! its authorization request there; the request is validated as `/authorize` would, kept
//! under a one-time `request_uri` for `par.ttl_secs`, and the browser brings only
//! `client_id` and `request_uri` to `/authorize`, which takes the pushed parameters ([`resolve`])
//! and ignores any others. The parameters never pass through the browser, and a client
//! that must push (`require_par`, `par.required`) cannot be started any other way.

use crate::protocol::OAuthError;
use crate::protocol::authorize::{self, AuthorizeError, ClientView, RawParams};
use crate::secret::{TokenHash, random_b64};
use crate::signin::SignInError;
use crate::state::AppState;
use crate::store::clients::Client;
use latchkey_core::ErrorCode;

/// RFC 9126 section 2.2: the `request_uri` is a URN of this form.
pub const URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The parameters `/authorize` reads ([`RawParams::from_pairs`]): only these are kept (each is
/// bounded by validation); anything else a client pushes is dropped, as `/authorize` ignores
/// it, so a push cannot store more than a request can hold.
const KEPT: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "acr_values",
    "claims",
    "request",
    "lab",
    "dpop_jkt",
    "resource",
];

/// A pushed request's answer (RFC 9126 section 2.2).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

/// Whether `client` must push its authorization requests.
/// Latchkey's own console and account page are exempt from `par.required`: Latchkey sends the
/// browser to `/authorize` for them itself, as a plain redirect, and does not need PAR's
/// protection there (a request someone else builds for them cannot be redeemed: the console's
/// callback checks `state` against its sealed cookie and holds the PKCE verifier).
pub fn required(state: &AppState, client: &Client) -> bool {
    let built_in = [
        crate::store::clients::ADMIN_CLIENT_ID,
        crate::store::clients::ACCOUNT_CLIENT_ID,
    ]
    .contains(&client.id.as_str());
    client.require_par || (state.config.par.required && !built_in)
}

/// Validates and keeps the authorization request `pairs` that the authenticated `client`
/// pushed. Refusals are the token endpoint's kind of error (RFC 9126 section 2.3).
/// `proof_jkt` is the key of the push's verified DPoP proof: the code is bound to it (RFC 9449
/// section 10.1), and a `dpop_jkt` pushed beside it must name the same key.
pub async fn push(
    state: &AppState,
    client: &Client,
    pairs: Vec<(String, String)>,
    proof_jkt: Option<&str>,
    now: i64,
) -> Result<Pushed, OAuthError> {
    if pairs.iter().any(|(k, _)| k == "request_uri") {
        return Err(OAuthError::invalid_request(
            "request_uri cannot be pushed (RFC 9126 section 2.1)",
        ));
    }
    // The client's credentials stay out of what is kept; its id is the authenticated one
    // (the HTTP layer refused a body naming another).
    let mut pairs: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| KEPT.contains(&k.as_str()))
        .collect();
    if !pairs.iter().any(|(k, _)| k == "client_id") {
        pairs.push(("client_id".into(), client.id.clone()));
    }
    if let Some(jkt) = proof_jkt {
        match pairs.iter().find(|(k, _)| k == "dpop_jkt") {
            Some((_, named)) if named != jkt => {
                return Err(crate::protocol::dpop::invalid_proof(
                    crate::protocol::dpop::Endpoint::Token,
                    "dpop_jkt names another key than the DPoP proof's (RFC 9449 section 10.1)",
                ));
            }
            Some(_) => {}
            None => pairs.push(("dpop_jkt".into(), jkt.to_owned())),
        }
    }
    let mut raw = RawParams::from_pairs(pairs.clone());
    raw.pushed = true;
    let view = ClientView {
        redirect_uris: &client.redirect_uris,
        public: client.is_public(),
        pkce_optional: client.pkce_optional,
        allows_authorization_code: client.allows_grant("authorization_code"),
        require_par: required(state, client),
        resources: &client.resources,
    };
    match authorize::validate(raw, Some(view), now) {
        Ok(_) => {}
        Err(AuthorizeError::Page(e)) | Err(AuthorizeError::Redirect { error: e, .. }) => {
            return Err(e);
        }
    }
    let token = random_b64(32);
    let ttl = state.config.par.ttl_secs;
    let params = serde_json::to_string(&pairs).map_err(OAuthError::server_error)?;
    state
        .store
        .push_request(
            &TokenHash::of(&token).to_vec(),
            &client.id,
            &params,
            now + ttl,
        )
        .await?;
    Ok(Pushed {
        request_uri: format!("{URN_PREFIX}{token}"),
        expires_in: ttl,
    })
}

/// The parameters of an `/authorize` request: those its `request_uri` was pushed with (taken
/// once, by the client that pushed them), else the request's own.
pub async fn resolve(state: &AppState, params: RawParams) -> Result<RawParams, SignInError> {
    let Some(uri) = params.request_uri.as_deref() else {
        return Ok(params);
    };
    let invalid =
        |d: &str| SignInError::InvalidRequest(OAuthError::new(ErrorCode::InvalidRequestUri, d));
    let Some(client_id) = params.client_id.as_deref() else {
        return Err(SignInError::InvalidRequest(OAuthError::invalid_request(
            "the request has no client_id",
        )));
    };
    let Some(token) = uri.strip_prefix(URN_PREFIX) else {
        return Err(invalid(
            "request_uri must be the one the pushed authorization request endpoint answered",
        ));
    };
    let Some(kept) = state
        .store
        .take_pushed_request(&TokenHash::of(token).to_vec(), client_id)
        .await?
    else {
        return Err(invalid(
            "the request_uri is unknown, expired or already used: push the request again",
        ));
    };
    let pairs: Vec<(String, String)> =
        serde_json::from_str(&kept).map_err(SignInError::internal)?;
    let mut raw = RawParams::from_pairs(pairs);
    raw.pushed = true;
    Ok(raw)
}
