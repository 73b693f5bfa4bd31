//! Issuing the authorization code at the end of a flow (RFC 6749 section 4.1.2): the one step
//! that writes what the token endpoint later exchanges. The code carries the strength the
//! flow reached and the lab it decided.

use super::ClientAnswer;
use crate::protocol::authorize::AuthRequest;
use crate::protocol::strength::Strength;
use crate::secret::{OpaqueToken, TokenKind, random_id};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::codes::AuthCode;
use crate::store::sessions::Session;

/// Stores a new code for this request and session and returns it for the client, with
/// `state` and RFC 9207 `iss`.
pub async fn issue(
    state: &AppState,
    request: &AuthRequest,
    session: &Session,
    strength: &Strength,
    now: i64,
) -> Result<ClientAnswer, StoreError> {
    let code = OpaqueToken::generate(TokenKind::AuthorizationCode);
    let row = AuthCode {
        grant_id: random_id(),
        client_id: request.client_id.clone(),
        user_id: session.user_id.clone(),
        session_id: session.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.join(" "),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: strength.auth_time,
        acr: strength.acr.as_str().to_owned(),
        amr: strength.amr.iter().map(|a| a.as_str().to_owned()).collect(),
        // Decided by `flow::decide_lab` for this flow (membership checked just before).
        lab_id: request.lab.clone(),
        dpop_jkt: request.dpop_jkt.clone(),
        resources: request.resources.clone(),
        expires_at: now + state.config.tokens.authorization_code_ttl_secs,
    };
    state.store.insert_code(code.hash(), &row).await?;
    let mut params = vec![("code".to_owned(), code.expose().to_owned())];
    if let Some(s) = &request.state {
        params.push(("state".into(), s.clone()));
    }
    params.push(("iss".into(), state.issuer.clone()));
    Ok(ClientAnswer {
        redirect_uri: request.redirect_uri.clone(),
        mode: request.response_mode,
        params,
    })
}
