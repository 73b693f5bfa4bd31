//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! section 2.3): `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523,
//! [`super::client_assertion`]), or `none` for public clients. Exactly one method per request,
//! and the one the client is registered for; reading it from the request is the HTTP layer's.

use crate::protocol::OAuthError;
use crate::state::{AppState, could_be_client_id};
use crate::store::clients::{Client, ClientAuthStrength, Lifecycle};
use latchkey_core::names::ClientId;
use std::sync::Arc;

/// The credentials a request presents.
#[derive(Clone)]
pub struct Credentials {
    pub id: String,
    pub secret: Option<String>,
    /// A `private_key_jwt` assertion (`client_assertion`).
    pub assertion: Option<String>,
    /// Sent with HTTP Basic: a refusal then answers 401 with a challenge.
    pub basic: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("assertion", &self.assertion.as_ref().map(|_| "***"))
            .field("basic", &self.basic)
            .finish()
    }
}

/// Authenticates the calling client. A disabled or expired client fails (it is told why only
/// once it has proven its secret), and a client must meet its minimum authentication
/// ([`Client::min_auth`]: a secret for administration clients).
pub async fn authenticate(state: &AppState, p: &Credentials) -> Result<Arc<Client>, OAuthError> {
    let fail = |d: &str| {
        let mut e = OAuthError::invalid_client(d);
        e.basic_challenge = p.basic;
        e
    };
    let now = crate::store::now();
    let Some(client) = state.client(&p.id).await? else {
        return Err(fail(&inactive(state, p, now).await?));
    };
    let client = match (
        &client.secret_hash,
        &client.keys,
        p.secret.as_deref(),
        &p.assertion,
    ) {
        // An assertion for a client that has no keys, or a secret for one that has keys,
        // tells the sender nothing about the client.
        (None, None, _, Some(_)) | (Some(_), _, _, Some(_)) | (None, Some(_), Some(_), _) => {
            return Err(fail("client authentication failed"));
        }
        (Some(_), _, Some(secret), None) => match secret_matches(state, client, secret, now).await?
        {
            Some(c) => c,
            None => return Err(fail("client authentication failed")),
        },
        (None, Some(_), None, Some(assertion)) => {
            super::client_assertion::verify(state, &client, assertion, now)
                .await?
                .map_err(|why| fail(&why))?;
            client
        }
        (None, None, None, None) => client,
        (None, None, _, _) => {
            return Err(fail("this is a public client: send no client secret"));
        }
        (None, Some(_), _, _) => {
            return Err(fail(
                "this client authenticates with private_key_jwt: send a client_assertion",
            ));
        }
        _ => return Err(fail("client authentication failed")),
    };
    if !client.is_active(now) {
        return Err(fail(&inactive(state, p, now).await?));
    }
    let used = if p.assertion.is_some() {
        ClientAuthStrength::PrivateKey
    } else if p.secret.is_some() {
        ClientAuthStrength::Secret
    } else {
        ClientAuthStrength::None
    };
    if used < client.min_auth() {
        return Err(fail(
            "this client administers Latchkey and must authenticate with its secret or key",
        ));
    }
    Ok(client)
}

/// Checks a presented secret against the client's current secret and, during a rotation's
/// overlap, the previous one. A client cached before a rotation (here, or on another node)
/// is read again before the secret is refused, so the new secret works from the moment the
/// rotation commits.
async fn secret_matches(
    state: &AppState,
    client: Arc<Client>,
    secret: &str,
    now: i64,
) -> Result<Option<Arc<Client>>, OAuthError> {
    if client.accepts_secret(secret, now) {
        return Ok(Some(client));
    }
    let id = ClientId::new(&client.id);
    let Some(fresh) = state.store.get_client(&id).await? else {
        return Ok(None);
    };
    if !fresh.accepts_secret(secret, now) {
        return Ok(None);
    }
    let fresh = Arc::new(fresh);
    if let Ok(mut map) = state.clients.map.write() {
        map.insert(
            client.id.clone(),
            (fresh.clone(), std::time::Instant::now()),
        );
    }
    Ok(Some(fresh))
}

/// Why an unknown, disabled or expired client is refused: plainly to a caller who proved the
/// client's secret, "client authentication failed" to anyone else.
async fn inactive(state: &AppState, p: &Credentials, now: i64) -> Result<String, OAuthError> {
    let failed = "client authentication failed".to_owned();
    let Some(secret) = p.secret.as_deref().filter(|_| could_be_client_id(&p.id)) else {
        return Ok(failed);
    };
    let record = state.store.client_record(&ClientId::new(&p.id)).await?;
    Ok(match record {
        Some(c) if c.accepts_secret(secret, now) => match c.lifecycle {
            Lifecycle {
                disabled_at: Some(_),
                ..
            } => "this client is disabled; an administrator can enable it again".into(),
            Lifecycle {
                expires_at: Some(t),
                ..
            } if now >= t => format!(
                "this client expired at {t} (Unix time); register a new one \
                 (`latchkey client create`)"
            ),
            _ => failed,
        },
        _ => failed,
    })
}
