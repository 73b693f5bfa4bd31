//! Starting, resuming and moving on a login flow: a validated authorization request waiting
//! for the user, bound to the browser that started it. [`proceed`] asks
//! [`protocol::authorize`](crate::protocol::authorize) for the next step and performs it (a
//! page, a refusal, or a code); [`transition`] is the only way a stored flow changes.

use super::{ClientAnswer, Next, SignInError, code};
use crate::audit::{Action, Event};
use crate::protocol::authorize::{
    self, AuthRequest, AuthorizeError, ClientView, LabChoice, LabRef, Progress, RawParams,
    Standing, Transition, choose_lab, next_step, signed_in,
};
use crate::protocol::strength::{Demands, Enrolled, Grace, Rules};
use crate::protocol::{OAuthError, scope};
use crate::secret::{TokenHash, random_id};
use crate::state::AppState;
use crate::store::clients::{Client, ClientLabs};
use crate::store::flows::LoginFlow;
use crate::store::sessions::Session;
use crate::store::users::User;
use latchkey_core::{Acr, ErrorCode};
use std::sync::Arc;

/// The client id of Latchkey's own account pages, which sign in through login flows like any
/// client but receive no code (generated client ids start with `lk_`).
pub const ACCOUNT_CLIENT_ID: &str = "latchkey:account";

/// The browser a new flow would be bound to, and the address it connects from (new flows
/// are counted per address: `throttle.flows_per_source`).
#[derive(Debug, Clone, Copy)]
pub struct BrowserAt<'a> {
    pub id: &'a str,
    pub source: std::net::IpAddr,
}

/// Where a flow comes from when [`proceed`] decides its next step.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A request not stored yet; a flow bound to this browser is created if a page is
    /// needed.
    New { browser: BrowserAt<'a> },
    /// The stored flow with this id.
    Stored(&'a str),
}

impl Origin<'_> {
    fn flow_id(&self) -> Option<&str> {
        match self {
            Origin::New { .. } => None,
            Origin::Stored(id) => Some(id),
        }
    }
}

/// The client a flow belongs to: a registered one, or the account pages.
pub async fn client(state: &AppState, client_id: &str) -> Result<Arc<Client>, SignInError> {
    if client_id == ACCOUNT_CLIENT_ID {
        return Ok(Arc::new(Client {
            id: ACCOUNT_CLIENT_ID.into(),
            name: "your Latchkey account".into(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            access_token_ttl_secs: None,
            id_token_alg: latchkey_core::SigningAlg::ES256,
            skip_consent: true,
            created_at: 0,
            min_acr: None,
            admin_of: None,
            pkce_optional: false,
            require_par: false,
            require_dpop: false,
            backchannel_logout_uri: None,
            resource_uri: None,
            resources: Vec::new(),
            keys: None,
            labs: crate::store::clients::ClientLabs::All,
            features: Vec::new(),
            lifecycle: Default::default(),
        }));
    }
    state.client(client_id).await?.ok_or(SignInError::FlowGone)
}

/// Loads a live flow and checks it belongs to this browser (`browser`: the browser cookie's
/// id, if sent).
pub async fn load(
    state: &AppState,
    id: Option<&str>,
    browser: Option<&str>,
) -> Result<LoginFlow, SignInError> {
    // No flow id holds a NUL (and PostgreSQL could not look one up).
    let id = id
        .filter(|id| !id.contains('\0'))
        .ok_or(SignInError::FlowGone)?;
    let flow = state
        .store
        .get_flow(id)
        .await?
        .ok_or(SignInError::FlowGone)?;
    let browser = browser.ok_or(SignInError::CookiesNeeded)?;
    if !TokenHash::of(browser).matches(&flow.browser_hash) {
        return Err(SignInError::OtherBrowser);
    }
    Ok(flow)
}

/// Applies a transition to a stored flow and stores it; a flow that must stop is removed and
/// answered with [`SignInError::TooManyCodes`].
pub async fn transition(
    state: &AppState,
    flow: &LoginFlow,
    t: Transition,
) -> Result<AuthRequest, SignInError> {
    let (request, progress) = flow.request.clone().after(t);
    match progress {
        Progress::Continue => {
            state.store.update_flow_request(&flow.id, &request).await?;
            Ok(request)
        }
        Progress::Stopped => {
            state.store.finish_flow(&flow.id).await?;
            Err(SignInError::TooManyCodes)
        }
    }
}

/// `/authorize`: validates the request and decides its first step.
pub async fn start(
    state: &AppState,
    params: RawParams,
    session: Option<(Session, User)>,
    browser: BrowserAt<'_>,
    now: i64,
) -> Result<Next, SignInError> {
    // A `request_uri` from `/par` stands for the parameters its client pushed; the browser's
    // others are ignored (RFC 9126 section 4).
    let params = super::pushed::resolve(state, params).await?;
    let client = match &params.client_id {
        Some(id) => state.client(id).await?,
        None => None,
    };
    let view = client.as_ref().map(|c| ClientView {
        redirect_uris: &c.redirect_uris,
        public: c.is_public(),
        pkce_optional: c.pkce_optional,
        allows_authorization_code: c.allows_grant("authorization_code"),
        require_par: super::pushed::required(state, c),
        resources: &c.resources,
    });
    let request = match authorize::validate(params, view, now) {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => return Err(SignInError::InvalidRequest(e)),
        Err(AuthorizeError::Redirect {
            redirect_uri,
            response_mode,
            state: st,
            error,
        }) => {
            return Ok(Next::Client(ClientAnswer::error(
                &state.issuer,
                &redirect_uri,
                response_mode,
                st.as_deref(),
                &error,
            )));
        }
    };
    let Some(client) = client else {
        return Err(SignInError::internal("validated request without a client"));
    };
    proceed(
        state,
        request,
        &client,
        session,
        Origin::New { browser },
        now,
    )
    .await
}

/// Re-evaluates a stored flow with the browser's session (`/login/continue`).
pub async fn resume(
    state: &AppState,
    flow: &LoginFlow,
    session: Option<(Session, User)>,
    now: i64,
) -> Result<Next, SignInError> {
    let client = client(state, &flow.request.client_id).await?;
    proceed(
        state,
        flow.request.clone(),
        &client,
        session,
        Origin::Stored(&flow.id),
        now,
    )
    .await
}

/// Moves a stored flow on after `t` (a factor proven, a lab picked, consent given, ...).
pub async fn advance(
    state: &AppState,
    flow: &LoginFlow,
    t: Transition,
    session: Option<(Session, User)>,
    now: i64,
) -> Result<Next, SignInError> {
    let request = transition(state, flow, t).await?;
    let client = client(state, &request.client_id).await?;
    proceed(
        state,
        request,
        &client,
        session,
        Origin::Stored(&flow.id),
        now,
    )
    .await
}

/// Everything the decision needs about a signed-in user: the demands of the request, the
/// client, the flow's lab (`request.lab`, decided by [`proceed`]) and the user's roles there;
/// the factors they enrolled; their grace in that lab.
pub async fn demands_for(
    state: &AppState,
    request: &AuthRequest,
    client: &Client,
    user_id: &str,
) -> Result<(Demands, Enrolled, Option<Grace>), SignInError> {
    let mut demands = Demands {
        request: request.requested_acr,
        client: client.min_acr,
        lab: None,
        role: None,
    };
    let mut grace = None;
    if client.id != ACCOUNT_CLIENT_ID
        && let Some(lab) = &request.lab
        && state.lab_has_policy(lab).await?
    {
        let p = state.store.member_policy(user_id, lab).await?;
        demands.role = p.role_min;
        if let Some(lp) = &p.lab {
            demands.lab = Some(lp.min_acr);
            if lp.grace_days.is_some() || lp.grace_logins.is_some() {
                grace = Some(Grace {
                    days: lp.grace_days,
                    logins: lp.grace_logins,
                    started_at: p.grace_started_at,
                    used_logins: p.grace_logins,
                });
            }
        }
    }
    // Enrolled factors matter only above `pwd` (a step-up or enrolment decision).
    if demands.level() == Acr::Pwd {
        return Ok((demands, Enrolled::default(), grace));
    }
    let mut enrolled = state.enrolled(user_id).await?;
    if state.webauthn.is_none() {
        enrolled.webauthn = 0;
        enrolled.passkeys = 0;
    }
    Ok((demands, enrolled, grace))
}

/// Decides the flow's lab for a signed-in user (see [`choose_lab`]) and records it in
/// `request.lab` (and in the stored flow). `Some(next)`: the picker must be shown, or
/// `prompt=none` forbids it.
async fn decide_lab(
    state: &AppState,
    request: &mut AuthRequest,
    client: &Client,
    session: &Option<(Session, User)>,
    origin: Origin<'_>,
    now: i64,
) -> Result<Option<Next>, SignInError> {
    let Some((s, _)) = session else {
        return Ok(None);
    };
    // The account pages and the admin console are not for one lab (the console's rights are
    // read per request); a user not yet signed in picks after signing in.
    if client.id == ACCOUNT_CLIENT_ID
        || client.id == crate::admin::ADMIN_CLIENT_ID
        || !signed_in(request, &s.factors, now)
    {
        return Ok(None);
    }
    let labs = super::lab::served(state, &s.user_id, client).await?;
    if labs.is_empty() && client.labs != ClientLabs::All {
        // Signed in, but in none of the labs this client serves: no token can be issued.
        // A device waiting for this user is told at once (`access_denied`).
        if let Some(device) = &request.device {
            let e = ErrorCode::AccessDenied;
            super::device_authorization::refuse(state, request, device, Some(&s.user_id), e, now)
                .await?;
            if let Some(id) = origin.flow_id() {
                state.store.finish_flow(id).await?;
            }
            return Ok(Some(Next::NotAMember {
                client: client.name.clone(),
                flow: None,
            }));
        }
        if request.prompt.none {
            let e = OAuthError::new(
                ErrorCode::AccessDenied,
                "the user is not a member of a lab this client serves",
            );
            return Ok(Some(refuse(state, request, origin, &e).await?));
        }
        return Ok(Some(Next::NotAMember {
            client: client.name.clone(),
            flow: origin.flow_id().map(str::to_owned),
        }));
    }
    // Only a hint among several labs, in a flow the user did not sign in within, needs to
    // know which labs the user chose for this client before.
    let chosen = if labs.len() > 1 && request.lab_hint.is_some() && !request.authenticated() {
        state.store.labs_chosen_for(&s.user_id, &client.id).await?
    } else {
        Vec::new()
    };
    let refs: Vec<LabRef<'_>> = labs
        .iter()
        .map(|l| LabRef {
            id: &l.id,
            name: &l.name,
            chosen_before: chosen.contains(&l.id),
        })
        .collect();
    let lab = match choose_lab(request, &refs) {
        LabChoice::NoLab => None,
        LabChoice::Lab(id) => Some(id),
        LabChoice::Pick => {
            request.apply(Transition::LabDecided(None));
            return Ok(Some(
                to_page(state, request.clone(), origin, "/login/lab", now).await?,
            ));
        }
        LabChoice::Refuse(code) => {
            let e = OAuthError::new(
                code,
                "the user belongs to several labs and must choose one; send `lab` with the request or let the user interact",
            );
            return Ok(Some(refuse(state, request, origin, &e).await?));
        }
    };
    if request.lab != lab {
        request.apply(Transition::LabDecided(lab));
        if let Some(id) = origin.flow_id() {
            state.store.update_flow_request(id, request).await?;
        }
    }
    Ok(None)
}

/// Ends the flow (when one is stored) and answers the client with `e` at its redirect URI.
async fn refuse(
    state: &AppState,
    request: &AuthRequest,
    origin: Origin<'_>,
    e: &OAuthError,
) -> Result<Next, SignInError> {
    if let Some(id) = origin.flow_id() {
        state.store.finish_flow(id).await?;
    }
    answer_error(state, request, None, e).await
}

/// The answer to a flow that ends in error `e`: back to the client's redirect URI, or, for a
/// device's flow (RFC 8628), the device is denied and the user shown the outcome.
/// `user_id`: who was signed in, if anyone (a device's denial is audited for them).
pub async fn answer_error(
    state: &AppState,
    request: &AuthRequest,
    user_id: Option<&str>,
    e: &OAuthError,
) -> Result<Next, SignInError> {
    if let Some(device) = &request.device {
        let now = crate::store::now();
        return super::device_authorization::refuse(state, request, device, user_id, e.code, now)
            .await;
    }
    Ok(Next::Client(ClientAnswer::error(
        &state.issuer,
        &request.redirect_uri,
        request.response_mode,
        request.state.as_deref(),
        e,
    )))
}

/// Decides and performs the next step for a validated request: show a page (through a login
/// flow bound to this browser), refuse (prompt=none, unreachable level), or issue a code.
pub async fn proceed(
    state: &AppState,
    mut request: AuthRequest,
    client: &Client,
    session: Option<(Session, User)>,
    origin: Origin<'_>,
    now: i64,
) -> Result<Next, SignInError> {
    // Before the policy decision: MFA policy is per lab.
    if let Some(next) = decide_lab(state, &mut request, client, &session, origin, now).await? {
        return Ok(next);
    }
    let consent_since = state.config.tokens.consent_since(now);
    let consent = match &session {
        Some((s, _)) if !request.prompt.consent && client.skip_consent => {
            // No consent page: offline_access only with consent remembered for it.
            if request.scope.iter().any(|s| s == scope::OFFLINE_ACCESS) {
                let offline = [scope::OFFLINE_ACCESS.to_owned()];
                let consented = state
                    .store
                    .consent_covers(&s.user_id, &client.id, &offline, &[], consent_since)
                    .await?;
                scope::without_unconsented_offline_access(&mut request.scope, consented);
            }
            true
        }
        Some((s, _)) if !request.prompt.consent => {
            state
                .store
                .consent_covers(
                    &s.user_id,
                    &client.id,
                    &request.scope,
                    &request.resources,
                    consent_since,
                )
                .await?
        }
        _ => false,
    };
    let known = match &session {
        Some((s, _)) => Some(demands_for(state, &request, client, &s.user_id).await?),
        None => None,
    };
    let standing = match (&session, &known) {
        (Some((s, _)), Some((demands, enrolled, grace))) => Some(Standing {
            factors: &s.factors,
            demands: *demands,
            enrolled: *enrolled,
            grace: *grace,
            rules: Rules::of(&state.config),
        }),
        _ => None,
    };
    match next_step(&request, standing, consent, now) {
        authorize::Next::Refuse(code) => {
            if let Some(id) = origin.flow_id() {
                state.store.finish_flow(id).await?;
            }
            let need = known.as_ref().map_or(Acr::Pwd, |k| k.0.level());
            let description = match code {
                ErrorCode::LoginRequired => "the user is not signed in".to_owned(),
                ErrorCode::InteractionRequired => {
                    format!("the user must authenticate further to reach acr `{need}`")
                }
                ErrorCode::UnmetAuthenticationRequirements => {
                    format!("the user has no enrolled factor that reaches acr `{need}`")
                }
                _ => "the user has not consented to this client".to_owned(),
            };
            if let Some((s, _)) = &session
                && code == ErrorCode::UnmetAuthenticationRequirements
            {
                state
                    .store
                    .audit(Event::new(
                        &s.user_id,
                        Action::LoginUnmetRequirements,
                        &s.user_id,
                        serde_json::json!({"client": client.id, "need": need.as_str()}),
                    ))
                    .await?;
            }
            if client.id == ACCOUNT_CLIENT_ID {
                return Err(SignInError::NotPossible(description));
            }
            let user = session.as_ref().map(|(s, _)| s.user_id.as_str());
            answer_error(state, &request, user, &OAuthError::new(code, description)).await
        }
        authorize::Next::Issue(strength) => {
            let Some((session, _)) = session else {
                return Err(SignInError::internal("issue without a session"));
            };
            if let Some(id) = origin.flow_id()
                && !state.store.finish_flow(id).await?
            {
                return Err(SignInError::FlowGone);
            }
            if client.id == ACCOUNT_CLIENT_ID {
                return Ok(Next::Local(request.redirect_uri));
            }
            if let Some(device) = &request.device {
                return super::device_authorization::approve(
                    state, &request, device, &session, &strength, now,
                )
                .await;
            }
            Ok(Next::Client(
                code::issue(state, &request, &session, &strength, now).await?,
            ))
        }
        step => {
            let page = match step {
                authorize::Next::Login => "/login",
                authorize::Next::Consent => "/consent",
                authorize::Next::StepUp { .. } => "/login/verify",
                _ => "/login/enrol",
            };
            to_page(state, request, origin, page, now).await
        }
    }
}

/// Sends the browser to one of the flow's pages, first storing the flow (bound to this
/// browser) when it has none yet.
async fn to_page(
    state: &AppState,
    request: AuthRequest,
    origin: Origin<'_>,
    path: &'static str,
    now: i64,
) -> Result<Next, SignInError> {
    match origin {
        Origin::Stored(id) => Ok(Next::Page {
            path,
            flow: id.to_owned(),
            new: false,
        }),
        Origin::New { browser } => {
            // Each stored flow takes room until it expires: anonymous requests may not fill
            // the database (issue 12); a spent budget is a 429 page, nothing stored.
            if let Some(retry_after) =
                super::throttle::flow_gate(state, browser.source, now).await?
            {
                state.metrics.throttled("flows");
                return Err(SignInError::TooManyFlows { retry_after });
            }
            let flow = LoginFlow {
                id: random_id(),
                browser_hash: TokenHash::of(browser.id).to_vec(),
                request,
                expires_at: now + state.config.tokens.login_flow_ttl_secs,
            };
            state.store.create_flow(&flow).await?;
            Ok(Next::Page {
                path,
                flow: flow.id,
                new: true,
            })
        }
    }
}
