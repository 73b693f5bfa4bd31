//! The authorization endpoint's logic (RFC 6749 section 4.1, OIDC Core section 3.1.2):
//! validate a request, then decide the next step of the login flow.
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> Validate
//!     Validate --> ErrorPage: unknown client / redirect_uri not registered
//!     Validate --> ErrorRedirect: any other invalid parameter
//!     Validate --> Login: no session, prompt=login, max_age exceeded
//!     Validate --> Consent: consent missing or prompt=consent
//!     Validate --> Issue: session and consent suffice
//!     Validate --> PickLab: signed in, several labs, no valid `lab` hint
//!     Login --> Login: wrong password (form again, nothing issued)
//!     Login --> PickLab: several labs, no valid `lab` hint
//!     Login --> Consent
//!     Login --> Issue
//!     PickLab --> StepUp: the chosen lab's policy needs another factor
//!     PickLab --> Consent
//!     PickLab --> Issue
//!     Consent --> Issue: Allow
//!     Consent --> ErrorRedirect: Deny (access_denied)
//!     Issue --> [*]: code to redirect_uri
//! ```
//!
//! With `prompt=none`, every transition that would show a page becomes an error redirect
//! instead (`login_required`, `consent_required`; `interaction_required` for the lab picker).
//!
//! The lab is decided once the user is signed in and before the MFA policy decision, because
//! policy is per lab ([`choose_lab`]): no lab for a user in none, their only lab, or, for a user
//! in several, the request's `lab` hint when they are a member of it, else the picker's choice.

use super::strength::{
    Demands, Enrolled, Factor, Gap, Grace, Strength, assess, essential_acr, offer, requested_level,
};
use super::{OAuthError, pkce, redirect_uri, scope};
use latchkey_core::{Acr, ErrorCode};
use serde::{Deserialize, Serialize};

/// The parameters as they arrive (query string or form body), not yet trusted.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub claims: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Latchkey's extension: the lab (id or name) the token should be for.
    pub lab: Option<String>,
    /// Names of parameters that appeared more than once (RFC 6749 section 3.1 forbids it).
    #[serde(skip)]
    pub duplicates: Vec<String>,
}

impl RawParams {
    /// Builds the parameters from decoded pairs, noting duplicates.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> RawParams {
        let mut p = RawParams::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "response_type" => &mut p.response_type,
                "response_mode" => &mut p.response_mode,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "nonce" => &mut p.nonce,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "prompt" => &mut p.prompt,
                "max_age" => &mut p.max_age,
                "login_hint" => &mut p.login_hint,
                "acr_values" => &mut p.acr_values,
                "claims" => &mut p.claims,
                "request" => &mut p.request,
                "request_uri" => &mut p.request_uri,
                "lab" => &mut p.lab,
                // Unknown parameters are ignored (RFC 6749 section 3.1).
                _ => continue,
            };
            if slot.is_some() {
                p.duplicates.push(k);
            } else if !v.is_empty() {
                *slot = Some(v);
            }
        }
        p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated authorization request: what the login flow stores and finally answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Vec<String>,
    /// When the request arrived.
    pub requested_at: i64,
    /// Set once the user has proven a factor within this flow: `prompt=login` and `max_age`
    /// are then satisfied, whatever the clock's resolution.
    #[serde(default)]
    pub authenticated: bool,
    /// The level `acr_values` and an essential `acr` claim ask for.
    #[serde(default)]
    pub requested_acr: Option<Acr>,
    /// The user chose to enrol later while their lab's grace period lasts.
    #[serde(default)]
    pub deferred_enrolment: bool,
    /// Wrong second-factor codes entered in this flow (it ends after a few).
    #[serde(default)]
    pub failed_codes: u32,
    /// The request's `lab` parameter (a lab id or name), a hint only: it is honoured when the
    /// user is a member of that lab and ignored otherwise.
    #[serde(default)]
    pub lab_hint: Option<String>,
    /// The lab this flow is for (its id), once decided by [`choose_lab`] or the picker. Never
    /// taken from the request itself.
    #[serde(default)]
    pub lab: Option<String>,
}

/// What the endpoint knows about the client named by `client_id`.
#[derive(Debug, Clone)]
pub struct ClientView<'a> {
    pub redirect_uris: &'a [String],
    pub public: bool,
    pub allows_authorization_code: bool,
}

/// Where an error goes: Latchkey's own page when the client or redirect URI cannot be trusted,
/// else back to the client (OIDC Core 3.1.2.6, RFC 6749 4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    Page(OAuthError),
    Redirect {
        redirect_uri: String,
        response_mode: ResponseMode,
        state: Option<String>,
        error: OAuthError,
    },
}

const MAX_PARAM_LEN: usize = 2048;

/// Validates a request. `client` is `None` when `client_id` names no registered client.
pub fn validate(
    p: RawParams,
    client: Option<ClientView<'_>>,
    now: i64,
) -> Result<AuthRequest, AuthorizeError> {
    let page = |d: &str| AuthorizeError::Page(OAuthError::invalid_request(d));
    for d in &p.duplicates {
        if d == "client_id" || d == "redirect_uri" {
            return Err(page(&format!("the parameter `{d}` appears more than once")));
        }
    }
    if p.client_id.is_none() {
        return Err(page("the request has no client_id"));
    }
    let Some(client) = client else {
        return Err(AuthorizeError::Page(OAuthError::new(
            ErrorCode::InvalidClient,
            "the client_id is not registered with this server",
        )));
    };
    let Some(redirect) = p.redirect_uri.clone() else {
        return Err(page(
            "the request has no redirect_uri (OpenID Connect requires one)",
        ));
    };
    if !redirect_uri::is_registered(client.redirect_uris, &redirect) {
        return Err(page(
            "the redirect_uri is not registered for this client (it must match exactly)",
        ));
    }
    // From here on the redirect URI is trusted, so errors go back to the client.
    let state = p.state.clone();
    let (response_mode, mode_error) = match p.response_mode.as_deref() {
        None | Some("query") => (ResponseMode::Query, None),
        Some("form_post") => (ResponseMode::FormPost, None),
        Some(other) => (
            ResponseMode::Query,
            Some(format!(
                "response_mode `{other}` is not supported (query, form_post)"
            )),
        ),
    };
    let fail = |code: ErrorCode, d: String| AuthorizeError::Redirect {
        redirect_uri: redirect.clone(),
        response_mode,
        state: state.clone(),
        error: OAuthError::new(code, d),
    };
    if let Some(d) = mode_error {
        return Err(fail(ErrorCode::InvalidRequest, d));
    }
    if let Some(d) = p.duplicates.first() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("the parameter `{d}` appears more than once"),
        ));
    }
    for (name, v) in [
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("login_hint", &p.login_hint),
        ("scope", &p.scope),
        ("acr_values", &p.acr_values),
        ("claims", &p.claims),
        ("lab", &p.lab),
    ] {
        if v.as_ref().is_some_and(|v| v.len() > MAX_PARAM_LEN) {
            return Err(fail(
                ErrorCode::InvalidRequest,
                format!("`{name}` is longer than {MAX_PARAM_LEN} bytes"),
            ));
        }
    }
    if p.request.is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported".into(),
        ));
    }
    if p.request_uri.is_some() {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported".into(),
        ));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "the request has no response_type".into(),
            ));
        }
        Some(other) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported; use `code`"),
            ));
        }
    }
    if !client.allows_authorization_code {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant".into(),
        ));
    }
    let scope =
        scope::parse(p.scope.as_deref().unwrap_or("")).map_err(|e| fail(e.code, e.description))?;
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, None) if client.public => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "public clients must use PKCE (code_challenge with code_challenge_method=S256)"
                    .into(),
            ));
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (Some(_), Some("plain")) | (Some(_), None) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256; `plain` is not supported".into(),
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                format!("code_challenge_method `{m}` is not supported; use S256"),
            ));
        }
        (Some(c), Some(_)) => {
            if !pkce::valid_challenge(c) {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "code_challenge must be 43 base64url characters (RFC 7636 section 4.2)".into(),
                ));
            }
            Some(c.to_owned())
        }
    };
    let mut prompt = Prompt::default();
    for v in p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match v {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            other => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    format!("prompt value `{other}` is not supported (none, login, consent)"),
                ));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    let max_age = match p.max_age.as_deref() {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative number of seconds".into(),
                ));
            }
        },
    };
    let essential = match p.claims.as_deref().map(essential_acr).transpose() {
        Ok(level) => level.flatten(),
        Err(d) => return Err(fail(ErrorCode::InvalidRequest, d)),
    };
    let acr_values: Vec<String> = p
        .acr_values
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(AuthRequest {
        client_id: p.client_id.unwrap_or_default(),
        redirect_uri: redirect,
        response_mode,
        scope,
        state: p.state,
        nonce: p.nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: p.login_hint,
        requested_acr: requested_level(acr_values.iter().map(String::as_str)).max(essential),
        acr_values,
        requested_at: now,
        authenticated: false,
        deferred_enrolment: false,
        failed_codes: 0,
        lab_hint: p.lab,
        lab: None,
    })
}

/// A lab the signed-in user belongs to.
#[derive(Debug, Clone, Copy)]
pub struct LabRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// Which lab a flow is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabChoice {
    /// The user belongs to no lab: tokens carry no `lab`, and no lab policy applies.
    NoLab,
    /// This lab (its id).
    Lab(String),
    /// Several labs and no valid choice yet: show the lab picker.
    Pick,
    /// A choice is needed but `prompt=none` forbids asking: `interaction_required`.
    Refuse(ErrorCode),
}

/// Decides the lab of a flow from the user's memberships (`labs`): their only lab; the lab
/// already chosen in this flow, or else named by the `lab` hint (id or name), when they are a
/// member of it; else the picker. A hint for a lab the user is not in is ignored like no hint,
/// so the answer never tells a client which labs a user belongs to.
///
/// Under `prompt=none` the picker becomes `interaction_required` (OIDC Core 3.1.2.6: "the
/// Authorization Server requires End-User interaction of some form to proceed"), not
/// `account_selection_required`, which is about choosing between accounts, not a tenant.
pub fn choose_lab(req: &AuthRequest, labs: &[LabRef<'_>]) -> LabChoice {
    match labs {
        [] => return LabChoice::NoLab,
        [only] => return LabChoice::Lab(only.id.to_owned()),
        _ => {}
    }
    if let Some(chosen) = &req.lab
        && labs.iter().any(|l| l.id == chosen.as_str())
    {
        return LabChoice::Lab(chosen.clone());
    }
    if let Some(hint) = &req.lab_hint
        && let Some(l) = labs
            .iter()
            .find(|l| l.id == hint.as_str() || l.name == hint.as_str())
    {
        return LabChoice::Lab(l.id.to_owned());
    }
    if req.prompt.none {
        LabChoice::Refuse(ErrorCode::InteractionRequired)
    } else {
        LabChoice::Pick
    }
}

/// Whether the session's factors include a first factor fresh enough for this request, i.e.
/// the user counts as signed in for it (the lab is decided only then).
pub fn signed_in(req: &AuthRequest, factors: &[Factor], now: i64) -> bool {
    match fresh_since(req, now) {
        None => false,
        Some(since) => !matches!(assess(factors, since, Acr::Pwd), Gap::FirstFactor),
    }
}

/// What is known about the signed-in user when deciding a step.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The factors the session proved, and when.
    pub factors: &'a [Factor],
    /// The levels the request, the client, the lab and the user's roles demand.
    pub demands: Demands,
    /// The factors the user has enrolled.
    pub enrolled: Enrolled,
    /// The lab policy's enrolment grace as this user stands in it (`None`: no grace).
    pub grace: Option<Grace>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask for a first factor (password or passkey).
    Login,
    /// Ask only for the missing factor.
    StepUp {
        need: Acr,
    },
    /// The user has no factor that reaches `need`: enrol one now. `can_defer` while the
    /// policy's grace period lasts and nothing but policy demands it.
    Enrol {
        need: Acr,
        can_defer: bool,
    },
    Consent,
    /// Issue a code carrying this strength.
    Issue(Strength),
    /// Send an error to the client (`prompt=none`, or a level the user cannot reach).
    Refuse(ErrorCode),
}

/// The earliest time a factor may have been proven to count for this request: `max_age`
/// seconds ago, or this flow's start with `prompt=login` / `max_age=0`. Factors proven within
/// the flow always count. The outer `None`: the request demands an authentication in this
/// flow and none happened yet.
pub fn fresh_since(req: &AuthRequest, now: i64) -> Option<Option<i64>> {
    // max_age=0 means "authenticate now", like prompt=login (OIDC Core errata).
    if req.prompt.login || req.max_age == Some(0) {
        return req.authenticated.then_some(Some(req.requested_at));
    }
    Some(req.max_age.map(|m| {
        if req.authenticated {
            (now - m).min(req.requested_at)
        } else {
            now - m
        }
    }))
}

/// Decides the next step of a flow from the request, the user's standing and the consent on
/// record.
pub fn next_step(
    req: &AuthRequest,
    standing: Option<Standing<'_>>,
    consent_on_record: bool,
    now: i64,
) -> Next {
    let login = || {
        if req.prompt.none {
            Next::Refuse(ErrorCode::LoginRequired)
        } else {
            Next::Login
        }
    };
    let Some(since) = fresh_since(req, now) else {
        return login();
    };
    let Some(st) = standing else {
        return login();
    };
    let grace_open = st.grace.is_some_and(|g| g.open(now));
    // A deferral was granted (and counted) while the grace was open; it holds for this flow.
    let need = if req.deferred_enrolment && st.grace.is_some() {
        st.demands.without_policy()
    } else {
        st.demands.level()
    };
    let strength = match assess(st.factors, since, need) {
        Gap::FirstFactor => return login(),
        Gap::Met(s) => s,
        Gap::StepUp { have, need } => {
            let interactive = |n: Next| {
                if req.prompt.none {
                    Next::Refuse(ErrorCode::InteractionRequired)
                } else {
                    n
                }
            };
            if offer(&st.enrolled, need).any() {
                return interactive(Next::StepUp { need });
            }
            if grace_open {
                return interactive(Next::Enrol {
                    need,
                    can_defer: have >= st.demands.without_policy(),
                });
            }
            return Next::Refuse(ErrorCode::UnmetAuthenticationRequirements);
        }
    };
    if req.prompt.consent || !consent_on_record {
        return if req.prompt.none {
            Next::Refuse(ErrorCode::ConsentRequired)
        } else {
            Next::Consent
        };
    }
    Next::Issue(strength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::strength::Method;

    const CB: &str = "https://app.example/cb";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn uris() -> Vec<String> {
        vec![CB.to_owned()]
    }

    fn params(extra: &[(&str, &str)]) -> RawParams {
        let mut pairs: Vec<(String, String)> = vec![
            ("client_id".into(), "c1".into()),
            ("redirect_uri".into(), CB.into()),
            ("response_type".into(), "code".into()),
            ("scope".into(), "openid".into()),
            ("code_challenge".into(), CHALLENGE.into()),
            ("code_challenge_method".into(), "S256".into()),
        ];
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push(((*k).into(), (*v).into()));
            }
        }
        RawParams::from_pairs(pairs)
    }

    fn run(p: RawParams, public: bool) -> Result<AuthRequest, AuthorizeError> {
        let u = uris();
        validate(
            p,
            Some(ClientView {
                redirect_uris: &u,
                public,
                allows_authorization_code: true,
            }),
            1000,
        )
    }

    fn redirect_code(r: Result<AuthRequest, AuthorizeError>) -> ErrorCode {
        match r {
            Err(AuthorizeError::Redirect { error, .. }) => error.code,
            other => panic!("expected an error redirect, got {other:?}"),
        }
    }

    #[test]
    fn valid_request() {
        let r = run(params(&[("state", "s"), ("max_age", "60")]), true).unwrap();
        assert_eq!(r.max_age, Some(60));
        assert_eq!(r.state.as_deref(), Some("s"));
    }

    #[test]
    fn rfc6749_4_1_2_1_unknown_client_never_redirects() {
        let r = validate(params(&[]), None, 0);
        assert!(matches!(r, Err(AuthorizeError::Page(_))));
    }

    #[test]
    fn rfc6749_4_1_2_1_unregistered_redirect_uri_never_redirects() {
        for uri in [
            "https://evil.example/cb",
            "https://app.example/cb/x",
            "https://app.example/cb?a=1",
        ] {
            assert!(matches!(
                run(params(&[("redirect_uri", uri)]), false),
                Err(AuthorizeError::Page(_))
            ));
        }
        assert!(matches!(
            run(params(&[("redirect_uri", "")]), false),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn rfc7636_public_client_without_pkce_is_invalid_request() {
        let p = params(&[("code_challenge", ""), ("code_challenge_method", "")]);
        assert_eq!(
            redirect_code(run(p.clone(), true)),
            ErrorCode::InvalidRequest
        );
        assert!(run(p, false).is_ok());
    }

    #[test]
    fn rfc7636_plain_method_is_refused() {
        let p = params(&[("code_challenge_method", "plain")]);
        assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
        let p = params(&[("code_challenge_method", "")]);
        assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_3_1_duplicate_parameters_are_invalid_request() {
        let mut p = params(&[]);
        p.duplicates.push("scope".into());
        assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_4_1_2_1_response_type_token_is_unsupported() {
        let p = params(&[("response_type", "token")]);
        assert_eq!(
            redirect_code(run(p, false)),
            ErrorCode::UnsupportedResponseType
        );
    }

    #[test]
    fn oidc_core_3_1_2_1_prompt_none_with_login_is_invalid() {
        let p = params(&[("prompt", "none login")]);
        assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
    }

    const PWD: Method = Method::Password;

    fn standing(factors: &[Factor]) -> Standing<'_> {
        Standing {
            factors,
            demands: Demands::default(),
            enrolled: Enrolled::default(),
            grace: None,
        }
    }

    fn at(method: Method, at: i64) -> [Factor; 1] {
        [Factor { method, at }]
    }

    fn issued(n: Next) -> Acr {
        match n {
            Next::Issue(s) => s.acr,
            other => panic!("expected a code, got {other:?}"),
        }
    }

    #[test]
    fn oidc_core_3_1_2_1_prompt_none_without_session_is_login_required() {
        let r = run(params(&[("prompt", "none")]), false).unwrap();
        assert_eq!(
            next_step(&r, None, true, 1000),
            Next::Refuse(ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn oidc_core_3_1_2_1_prompt_none_without_consent_is_consent_required() {
        let r = run(params(&[("prompt", "none")]), false).unwrap();
        let f = at(PWD, 900);
        assert_eq!(
            next_step(&r, Some(standing(&f)), false, 1000),
            Next::Refuse(ErrorCode::ConsentRequired)
        );
        assert_eq!(
            issued(next_step(&r, Some(standing(&f)), true, 1000)),
            Acr::Pwd
        );
    }

    #[test]
    fn oidc_core_3_1_2_1_prompt_login_forces_reauthentication() {
        let mut r = run(params(&[("prompt", "login")]), false).unwrap();
        let f = at(PWD, r.requested_at);
        assert_eq!(next_step(&r, Some(standing(&f)), true, 1000), Next::Login);
        r.authenticated = true;
        assert_eq!(
            issued(next_step(&r, Some(standing(&f)), true, 1001)),
            Acr::Pwd
        );
    }

    #[test]
    fn oidc_core_3_1_2_1_max_age_exceeded_forces_reauthentication() {
        let mut r = run(params(&[("max_age", "60")]), false).unwrap();
        r.requested_at = 1000;
        assert_eq!(
            next_step(&r, Some(standing(&at(PWD, 900))), true, 1000),
            Next::Login
        );
        assert_eq!(
            issued(next_step(&r, Some(standing(&at(PWD, 950))), true, 1000)),
            Acr::Pwd
        );
        // A password given in this flow counts however long the flow took.
        r.authenticated = true;
        assert_eq!(
            issued(next_step(&r, Some(standing(&at(PWD, 1000))), true, 1200)),
            Acr::Pwd
        );
    }

    #[test]
    fn prompt_consent_always_asks() {
        let r = run(params(&[("prompt", "consent")]), false).unwrap();
        assert_eq!(
            next_step(&r, Some(standing(&at(PWD, 999))), true, 1000),
            Next::Consent
        );
    }

    #[test]
    fn acr_values_and_essential_claims_set_the_requested_level() {
        let r = run(params(&[("acr_values", "phr mfa")]), false).unwrap();
        assert_eq!(r.requested_acr, Some(Acr::Mfa));
        let claims = r#"{"id_token":{"acr":{"essential":true,"values":["phr"]}}}"#;
        let r = run(params(&[("acr_values", "mfa"), ("claims", claims)]), false).unwrap();
        assert_eq!(r.requested_acr, Some(Acr::Phr));
        let r = run(params(&[("acr_values", "urn:x")]), false).unwrap();
        assert_eq!(r.requested_acr, None);
    }

    #[test]
    fn oidc_core_5_5_malformed_claims_parameter_is_invalid_request() {
        let p = params(&[("claims", "{not json")]);
        assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
    }

    #[test]
    fn insufficient_strength_steps_up_or_refuses_with_prompt_none() {
        let mut r = run(params(&[("acr_values", "mfa")]), false).unwrap();
        let f = at(PWD, 999);
        let mut st = standing(&f);
        st.demands.request = r.requested_acr;
        st.enrolled.totp = true;
        assert_eq!(
            next_step(&r, Some(st), true, 1000),
            Next::StepUp { need: Acr::Mfa }
        );
        r.prompt.none = true;
        assert_eq!(
            next_step(&r, Some(st), true, 1000),
            Next::Refuse(ErrorCode::InteractionRequired)
        );
    }

    #[test]
    fn unreachable_level_without_grace_is_unmet_authentication_requirements() {
        let r = run(params(&[]), false).unwrap();
        let f = at(PWD, 999);
        let mut st = standing(&f);
        st.demands.client = Some(Acr::Mfa);
        assert_eq!(
            next_step(&r, Some(st), true, 1000),
            Next::Refuse(ErrorCode::UnmetAuthenticationRequirements)
        );
    }

    #[test]
    fn lab_policy_with_grace_leads_to_enrolment_that_can_be_deferred() {
        let mut r = run(params(&[]), false).unwrap();
        let f = at(PWD, 999);
        let mut st = standing(&f);
        st.demands.lab = Some(Acr::Mfa);
        st.grace = Some(Grace {
            days: Some(7),
            logins: None,
            started_at: None,
            used_logins: 0,
        });
        assert_eq!(
            next_step(&r, Some(st), true, 1000),
            Next::Enrol {
                need: Acr::Mfa,
                can_defer: true
            }
        );
        r.deferred_enrolment = true;
        assert_eq!(issued(next_step(&r, Some(st), true, 1000)), Acr::Pwd);
        // The client's own minimum is not deferred by the lab's grace.
        st.demands.client = Some(Acr::Mfa);
        r.deferred_enrolment = false;
        assert_eq!(
            next_step(&r, Some(st), true, 1000),
            Next::Enrol {
                need: Acr::Mfa,
                can_defer: false
            }
        );
        // Once the grace is over, enrolment is no longer offered at sign-in.
        st.grace = Some(Grace {
            days: Some(7),
            logins: None,
            started_at: Some(0),
            used_logins: 0,
        });
        assert_eq!(
            next_step(&r, Some(st), true, 8 * 86_400),
            Next::Refuse(ErrorCode::UnmetAuthenticationRequirements)
        );
    }

    const LABS: [LabRef<'static>; 2] = [
        LabRef {
            id: "lab-a",
            name: "Alpha",
        },
        LabRef {
            id: "lab-b",
            name: "Beta",
        },
    ];

    #[test]
    fn one_lab_or_none_needs_no_choice() {
        let r = run(params(&[("lab", "lab-b")]), false).unwrap();
        assert_eq!(choose_lab(&r, &[]), LabChoice::NoLab);
        assert_eq!(
            choose_lab(&r, &LABS[..1]),
            LabChoice::Lab("lab-a".into()),
            "the only lab, whatever the hint"
        );
    }

    #[test]
    fn several_labs_take_a_member_hint_by_id_or_name_else_pick() {
        let r = run(params(&[]), false).unwrap();
        assert_eq!(choose_lab(&r, &LABS), LabChoice::Pick);
        for hint in ["lab-b", "Beta"] {
            let r = run(params(&[("lab", hint)]), false).unwrap();
            assert_eq!(r.lab_hint.as_deref(), Some(hint));
            assert_eq!(choose_lab(&r, &LABS), LabChoice::Lab("lab-b".into()));
        }
        let r = run(params(&[("lab", "lab-z")]), false).unwrap();
        assert_eq!(
            choose_lab(&r, &LABS),
            LabChoice::Pick,
            "foreign hint ignored"
        );
    }

    #[test]
    fn a_chosen_lab_holds_only_while_the_user_is_a_member() {
        let mut r = run(params(&[("lab", "Alpha")]), false).unwrap();
        r.lab = Some("lab-b".into());
        assert_eq!(choose_lab(&r, &LABS), LabChoice::Lab("lab-b".into()));
        r.lab = Some("lab-z".into());
        assert_eq!(choose_lab(&r, &LABS), LabChoice::Lab("lab-a".into()));
    }

    #[test]
    fn oidc_core_3_1_2_6_prompt_none_with_several_labs_is_interaction_required() {
        let r = run(params(&[("prompt", "none")]), false).unwrap();
        assert_eq!(
            choose_lab(&r, &LABS),
            LabChoice::Refuse(ErrorCode::InteractionRequired)
        );
        let r = run(params(&[("prompt", "none"), ("lab", "Beta")]), false).unwrap();
        assert_eq!(choose_lab(&r, &LABS), LabChoice::Lab("lab-b".into()));
    }

    #[test]
    fn requests_stored_before_labs_still_parse() {
        let r = run(params(&[]), false).unwrap();
        let mut v = serde_json::to_value(&r).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("lab");
        o.remove("lab_hint");
        let back: AuthRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
