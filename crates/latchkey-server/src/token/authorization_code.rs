//! `grant_type=authorization_code` (RFC 6749 section 4.1.3, RFC 7636 section 4.5, OIDC Core
//! section 3.1.3): exchange a single-use code for tokens. The store consumes the code
//! atomically, once [`crate::protocol::code::check_binding`] has accepted the request (its
//! client, redirect URI, verifier and DPoP key); a replay by that same binding revokes what the first
//! use issued, with its audit entry, in one transaction. Then expiry is checked, the grant is
//! stored, and tokens are signed.

use super::jwt::{self, AccessTokenInput, UserContext};
use super::{Holder, Servers, TokenResponse, access_token_ttl, member_grants};
use crate::audit::{Action, Event};
use crate::protocol::code::{self, CodeRefusal, IssuedCode, Presented};
use crate::protocol::{OAuthError, id_token, scope};
use crate::secret::{OpaqueToken, TokenHash, TokenKind};
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::codes::{AuthCode, CodeUse};
use crate::store::grants::Grant;
use std::sync::{Arc, Mutex};

/// The parameters of section 4.1.3. `code` is optional here so that a missing one is
/// reported after the client's right to the grant is checked, as the endpoint always did.
#[derive(Debug, Default)]
pub struct CodeRequest {
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    /// The service the access token is for (RFC 8707).
    pub resource: Vec<String>,
}

/// What the request presents, owned so the store's transaction can check it.
struct Bound {
    client_id: String,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    dpop_jkt: Option<String>,
}

impl Bound {
    fn as_presented(&self) -> Presented<'_> {
        Presented {
            client_id: &self.client_id,
            redirect_uri: self.redirect_uri.as_deref(),
            code_verifier: self.code_verifier.as_deref(),
            dpop_jkt: self.dpop_jkt.as_deref(),
        }
    }
}

fn issued(c: &AuthCode) -> IssuedCode<'_> {
    IssuedCode {
        client_id: &c.client_id,
        redirect_uri: &c.redirect_uri,
        code_challenge: c.code_challenge.as_deref(),
        dpop_jkt: c.dpop_jkt.as_deref(),
        expires_at: c.expires_at,
    }
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    req: &CodeRequest,
    now: i64,
    origin: &serde_json::Value,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = req
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let mut details = origin.clone();
    details["revoked"] = "the code's grant".into();
    let on_replay = Event::new(&client.id, Action::CodeReplayed, &client.id, details);
    // The binding (client, redirect_uri, PKCE) is checked inside the transaction that
    // consumes the code, before it is consumed or a replay is acted on (RFC 9700 4.5.2).
    let presented_by = Bound {
        client_id: client.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_verifier: req.code_verifier.clone(),
        dpop_jkt: dpop_jkt.map(str::to_owned),
    };
    // RFC 8707: the service the access token is for is decided before the code is spent, so
    // a refused `resource` (not the authorization's, several, a service gone or serving
    // another lab) leaves the code for a corrected request; the precise reason is kept for
    // the answer. A replay is acted on whatever it names.
    let servers = Servers::of(state, client, now).await?;
    let requested = req.resource.clone();
    let (allowed, labs) = (client.resources.clone(), client.labs.clone());
    let decided = Arc::new(Mutex::new(Ok::<Option<String>, OAuthError>(None)));
    let slot = decided.clone();
    let binding = move |c: &AuthCode, consumed: bool| {
        code::check_binding(&issued(c), &presented_by.as_presented())?;
        if consumed {
            return Ok(());
        }
        let holder = Holder::User {
            lab: c.lab_id.as_deref(),
        };
        let aud = servers.audience(&requested, &c.resources, &allowed, holder, &labs);
        let refused = aud.is_err();
        if let Ok(mut s) = slot.lock() {
            *s = aud;
        }
        if refused {
            Err(CodeRefusal::Target)
        } else {
            Ok(())
        }
    };
    let decision = || {
        decided
            .lock()
            .map_err(|_| OAuthError::server_error("the resource decision was lost"))
            .and_then(|mut d| std::mem::replace(&mut *d, Ok(None)))
    };
    let code = match state
        .store
        .consume_code(TokenHash::of(presented), binding, &on_replay)
        .await?
    {
        CodeUse::First(c) => c,
        CodeUse::Replayed => {
            tracing::warn!(client = %client.id, "authorization code replayed; its grant is revoked");
            return Err(CodeRefusal::Replayed.into());
        }
        CodeUse::Refused(CodeRefusal::Target) => {
            return Err(decision()
                .err()
                .unwrap_or_else(|| CodeRefusal::Target.into()));
        }
        CodeUse::Refused(r) => return Err(r.into()),
        CodeUse::Unknown => return Err(CodeRefusal::Unknown.into()),
    };
    code::check_fresh(&issued(&code), now)?;
    let audience = decision()?;
    start_grant(state, client, &code, audience, now, dpop_jkt).await
}

/// Starts the grant a consumed code (or a device's approval, RFC 8628) describes and issues its
/// tokens: the user must still be enabled and, for a lab grant, a member of a lab the client
/// still serves; the grant is stored only while the sign-in session behind it lives. With a
/// DPoP key (RFC 9449), the access token is bound to it, and so are a public client's refresh
/// tokens (section 5).
pub(super) async fn start_grant(
    state: &AppState,
    client: &Client,
    code: &AuthCode,
    audience: Option<String>,
    now: i64,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let user = state
        .store
        .get_user(&code.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| OAuthError::invalid_grant("the user's account is disabled"))?;
    // A code for a lab the client stopped serving since it was issued starts no grant.
    if !client.labs.serves(code.lab_id.as_deref()) {
        return Err(OAuthError::invalid_grant(
            "the client does not serve the lab of this code",
        ));
    }
    // Read before the grant is stored: a code issued just before the user left its lab must
    // not start a grant for that lab (`member_grants` refuses non-members).
    let (roles, features) = member_grants(state, &user.id, code.lab_id.as_deref()).await?;

    let grant = Grant {
        id: code.grant_id.clone(),
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        session_id: code.session_id.clone(),
        scope: code.scope.clone(),
        auth_time: code.auth_time,
        acr: code.acr.clone(),
        amr: code.amr.clone(),
        lab_id: code.lab_id.clone(),
        created_at: now,
        expires_at: now + state.config.tokens.refresh_token_ttl_secs,
        revoked_at: None,
        dpop_jkt: dpop_jkt.filter(|_| client.is_public()).map(str::to_owned),
        resources: code.resources.clone(),
    };
    let refresh = client
        .allows_grant("refresh_token")
        .then(|| OpaqueToken::generate(TokenKind::RefreshToken));
    let stored = state
        .store
        .create_grant(&grant, refresh.as_ref().map(OpaqueToken::hash))
        .await?;
    if !stored {
        return Err(OAuthError::invalid_grant(
            "the login session behind this code has ended, or the code was replayed",
        ));
    }

    let keys = state.keys.current();
    let ttl = access_token_ttl(state, client);
    let access_token = jwt::access_token(
        &keys,
        &AccessTokenInput {
            issuer: &state.issuer,
            audience: audience.as_deref(),
            subject: &user.id,
            client_id: &client.id,
            scope: &grant.scope,
            ttl,
            now,
            user: Some(UserContext {
                auth_time: grant.auth_time,
                acr: &grant.acr,
                amr: &grant.amr,
                sid: &grant.session_id,
                grant_id: &grant.id,
                lab: grant.lab_id.as_deref(),
                roles: &roles,
                features: &features,
            }),
            cnf_jkt: dpop_jkt,
        },
    )?;
    let id_token = if scope::contains(&grant.scope, "openid") {
        let claims = id_token::claims(
            &state.issuer,
            &id_token::Subject {
                id: &user.id,
                email: &user.email,
                email_verified: user.email_verified_at.is_some(),
                name: user.name.as_deref(),
            },
            &id_token::Authentication {
                client_id: &client.id,
                scope: &grant.scope,
                auth_time: grant.auth_time,
                acr: &grant.acr,
                amr: &grant.amr,
                sid: &grant.session_id,
                nonce: code.nonce.as_deref(),
                lab: grant.lab_id.as_deref(),
                roles: &roles,
                features: &features,
            },
            Some(jwt::at_hash(client.id_token_alg, &access_token)),
            state.config.tokens.id_token_ttl_secs,
            now,
        );
        Some(jwt::id_token(&keys, client.id_token_alg, &claims)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh.map(|r| r.expose().to_owned()),
        id_token,
        scope: grant.scope,
    })
}
