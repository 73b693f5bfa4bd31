//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! section 2.3): `client_secret_basic`, `client_secret_post`, or `none` for public clients.
//! Exactly one method per request; reading it from the request is the HTTP layer's.

use crate::protocol::OAuthError;
use crate::secret::TokenHash;
use crate::state::AppState;
use crate::store::clients::Client;
use std::sync::Arc;

/// The credentials a request presents.
#[derive(Clone)]
pub struct Credentials {
    pub id: String,
    pub secret: Option<String>,
    /// Sent with HTTP Basic: a refusal then answers 401 with a challenge.
    pub basic: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("basic", &self.basic)
            .finish()
    }
}

/// Authenticates the calling client.
pub async fn authenticate(state: &AppState, p: &Credentials) -> Result<Arc<Client>, OAuthError> {
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
