//! `/authorize` (RFC 6749 section 4.1.1, OIDC Core section 3.1.2), and the two ways a flow
//! ends: a code or an error sent back to the client's redirect URI, by query or form_post.

use super::cookies;
use super::errors::PageError;
use super::pages::FormPostPage;
use super::{State, decode_pairs};
use crate::app::AppState;
use crate::audit::{Action, Event};
use crate::protocol::OAuthError;
use crate::protocol::authorize::{
    AuthRequest, AuthorizeError, ClientView, LabChoice, LabRef, Next, RawParams, ResponseMode,
    Standing, choose_lab, next_step, signed_in, validate,
};
use crate::protocol::strength::{Demands, Enrolled, Grace, Strength};
use crate::secret::{OpaqueToken, TokenHash, TokenKind, random_id};
use crate::store::clients::Client;
use crate::store::codes::AuthCode;
use crate::store::flows::LoginFlow;
use crate::store::now;
use crate::store::sessions::Session;
use crate::store::users::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Acr, ErrorCode};
use std::sync::Arc;

pub async fn get(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let pairs = decode_pairs(req.query_string().as_bytes());
    handle(state, req, pairs).await
}

/// OIDC Core 3.1.2.1: the endpoint must accept POST with a form body too.
pub async fn post(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let pairs = decode_pairs(&body);
    handle(state, req, pairs).await
}

async fn handle(
    state: State,
    req: HttpRequest,
    pairs: Vec<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let params = RawParams::from_pairs(pairs);
    let client = match &params.client_id {
        Some(id) => state.client(id).await?,
        None => None,
    };
    let t = now();
    let view = client.as_ref().map(|c| ClientView {
        redirect_uris: &c.redirect_uris,
        public: c.is_public(),
        allows_authorization_code: c.allows_grant("authorization_code"),
    });
    let request = match validate(params, view, t) {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => return Err(PageError::from_oauth(e)),
        Err(AuthorizeError::Redirect {
            redirect_uri,
            response_mode,
            state: st,
            error,
        }) => {
            return Ok(error_response(
                &state,
                &redirect_uri,
                response_mode,
                st.as_deref(),
                &error,
            ));
        }
    };
    let Some(client) = client else {
        return Err(PageError::internal("validated request without a client"));
    };
    let session = current_session(&state, &req).await?;
    proceed(&state, &req, request, &client, session, None).await
}

/// The live session of this browser and its (enabled) user.
pub async fn current_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, PageError> {
    let Some(token) = cookies::session_token(state, req) else {
        return Ok(None);
    };
    let Some(session) = state.store.find_session(token).await? else {
        return Ok(None);
    };
    match state.store.get_user(&session.user_id).await? {
        Some(user) if !user.disabled => Ok(Some((session, user))),
        _ => Ok(None),
    }
}

/// The client id of Latchkey's own account pages, which sign in through login flows like any
/// client but receive no code (generated client ids start with `lk_`).
pub const ACCOUNT_CLIENT_ID: &str = "latchkey:account";

/// The client a flow belongs to: a registered one, or the account pages.
pub async fn flow_client(state: &AppState, client_id: &str) -> Result<Arc<Client>, PageError> {
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
        }));
    }
    state.client(client_id).await?.ok_or_else(flow_gone)
}

/// Everything the decision needs about a signed-in user: the demands of the request, the
/// client, the flow's lab (`request.lab`, decided by [`proceed`]) and the user's roles there;
/// the factors they enrolled; their grace in that lab.
pub async fn demands_for(
    state: &AppState,
    request: &AuthRequest,
    client: &Client,
    user_id: &str,
) -> Result<(Demands, Enrolled, Option<Grace>), PageError> {
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
    let mut enrolled = state.store.enrolled(user_id).await?;
    if state.webauthn.is_none() {
        enrolled.webauthn = 0;
        enrolled.passkeys = 0;
    }
    Ok((demands, enrolled, grace))
}

/// Decides the flow's lab for a signed-in user (see [`choose_lab`]) and records it in
/// `request.lab` (and in the stored flow). `Some(response)`: the picker must be shown, or
/// `prompt=none` forbids it.
async fn decide_lab(
    state: &AppState,
    req: &HttpRequest,
    request: &mut AuthRequest,
    client: &Client,
    session: &Option<(Session, User)>,
    flow_id: Option<&str>,
    t: i64,
) -> Result<Option<HttpResponse>, PageError> {
    let Some((s, _)) = session else {
        return Ok(None);
    };
    // The account pages and the admin console are not for one lab (the console's rights are
    // read per request); a user not yet signed in picks after signing in.
    if client.id == ACCOUNT_CLIENT_ID
        || client.id == crate::admin::ADMIN_CLIENT_ID
        || !signed_in(request, &s.factors, t)
    {
        return Ok(None);
    }
    let labs = state.store.member_labs(&s.user_id).await?;
    let refs: Vec<LabRef<'_>> = labs
        .iter()
        .map(|l| LabRef {
            id: &l.id,
            name: &l.name,
        })
        .collect();
    let lab = match choose_lab(request, &refs) {
        LabChoice::NoLab => None,
        LabChoice::Lab(id) => Some(id),
        LabChoice::Pick => {
            request.lab = None;
            return Ok(Some(
                to_page(state, req, request.clone(), flow_id, "/login/lab", t).await?,
            ));
        }
        LabChoice::Refuse(code) => {
            if let Some(id) = flow_id {
                state.store.finish_flow(id).await?;
            }
            let e = OAuthError::new(
                code,
                "the user belongs to several labs and must choose one; send `lab` with the request or let the user interact",
            );
            return Ok(Some(error_response(
                state,
                &request.redirect_uri,
                request.response_mode,
                request.state.as_deref(),
                &e,
            )));
        }
    };
    if request.lab != lab {
        request.lab = lab;
        if let Some(id) = flow_id {
            state.store.update_flow_request(id, request).await?;
        }
    }
    Ok(None)
}

/// Decides and performs the next step for a validated request: show a page (through a login
/// flow bound to this browser), refuse (prompt=none, unreachable level), or issue a code.
pub async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    mut request: AuthRequest,
    client: &Client,
    session: Option<(Session, User)>,
    flow_id: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let t = now();
    // Before the policy decision: MFA policy is per lab.
    if let Some(r) = decide_lab(state, req, &mut request, client, &session, flow_id, t).await? {
        return Ok(r);
    }
    let consent = match &session {
        Some((s, _)) if !request.prompt.consent => {
            client.skip_consent
                || state
                    .store
                    .consent_covers(&s.user_id, &client.id, &request.scope)
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
        }),
        _ => None,
    };
    let next = next_step(&request, standing, consent, t);
    match next {
        Next::Refuse(code) => {
            if let Some(id) = flow_id {
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
                return Err(PageError::bad_request("Sign-in not possible", description));
            }
            let e = OAuthError::new(code, description);
            Ok(error_response(
                state,
                &request.redirect_uri,
                request.response_mode,
                request.state.as_deref(),
                &e,
            ))
        }
        Next::Issue(strength) => {
            let Some((session, _)) = session else {
                return Err(PageError::internal("issue without a session"));
            };
            if let Some(id) = flow_id
                && !state.store.finish_flow(id).await?
            {
                return Err(flow_gone());
            }
            if client.id == ACCOUNT_CLIENT_ID {
                return Ok(see_other(&request.redirect_uri));
            }
            issue_code(state, &request, &session, &strength).await
        }
        step @ (Next::Login | Next::Consent | Next::StepUp { .. } | Next::Enrol { .. }) => {
            let page = match step {
                Next::Login => "/login",
                Next::Consent => "/consent",
                Next::StepUp { .. } => "/login/verify",
                _ => "/login/enrol",
            };
            to_page(state, req, request, flow_id, page, t).await
        }
    }
}

/// Sends the browser to one of the flow's pages, first storing the flow (bound to this
/// browser) when it has none yet.
async fn to_page(
    state: &AppState,
    req: &HttpRequest,
    request: AuthRequest,
    flow_id: Option<&str>,
    page: &str,
    t: i64,
) -> Result<HttpResponse, PageError> {
    let (id, new_cookie) = match flow_id {
        Some(id) => (id.to_owned(), None),
        None => {
            let (browser, cookie) = cookies::browser_id(state, req);
            let flow = LoginFlow {
                id: random_id(),
                browser_hash: TokenHash::of(&browser).to_vec(),
                request,
                expires_at: t + state.config.tokens.login_flow_ttl_secs,
            };
            state.store.create_flow(&flow).await?;
            (flow.id, cookie)
        }
    };
    let mut r = HttpResponse::SeeOther();
    r.insert_header(("Location", format!("{page}?flow={id}")))
        .insert_header(("Cache-Control", "no-store"));
    if let Some(c) = new_cookie {
        r.cookie(c);
    }
    Ok(r.finish())
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location.to_owned()))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

pub fn flow_gone() -> PageError {
    PageError::bad_request(
        "This sign-in has expired",
        "This sign-in page is no longer valid (it expired or was already used). Return to the application and start again.",
    )
}

async fn issue_code(
    state: &AppState,
    request: &AuthRequest,
    session: &Session,
    strength: &Strength,
) -> Result<HttpResponse, PageError> {
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
        // Decided by `decide_lab` for this flow (membership checked just before).
        lab_id: request.lab.clone(),
        expires_at: now() + state.config.tokens.authorization_code_ttl_secs,
    };
    state.store.insert_code(code.hash(), &row).await?;
    let mut params = vec![("code".to_owned(), code.expose().to_owned())];
    if let Some(s) = &request.state {
        params.push(("state".into(), s.clone()));
    }
    params.push(("iss".into(), state.issuer.clone()));
    Ok(to_client(
        &request.redirect_uri,
        request.response_mode,
        params,
    ))
}

/// An error for the client at its (verified) redirect URI, with `state` and RFC 9207 `iss`.
pub fn error_response(
    state: &AppState,
    redirect_uri: &str,
    mode: ResponseMode,
    st: Option<&str>,
    e: &OAuthError,
) -> HttpResponse {
    let mut params = vec![
        ("error".to_owned(), e.code.as_str().to_owned()),
        ("error_description".to_owned(), e.description.clone()),
    ];
    if let Some(s) = st {
        params.push(("state".into(), s.to_owned()));
    }
    params.push(("iss".into(), state.issuer.clone()));
    to_client(redirect_uri, mode, params)
}

fn to_client(
    redirect_uri: &str,
    mode: ResponseMode,
    params: Vec<(String, String)>,
) -> HttpResponse {
    match mode {
        ResponseMode::Query => {
            let location = match url::Url::parse(redirect_uri) {
                Ok(mut u) => {
                    u.query_pairs_mut().extend_pairs(params.iter());
                    u.to_string()
                }
                Err(_) => redirect_uri.to_owned(),
            };
            HttpResponse::SeeOther()
                .insert_header(("Location", location))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        ResponseMode::FormPost => super::pages::render_posting_to(
            StatusCode::OK,
            &FormPostPage {
                redirect_uri: redirect_uri.to_owned(),
                params,
            },
            Some(redirect_uri),
        ),
    }
}
