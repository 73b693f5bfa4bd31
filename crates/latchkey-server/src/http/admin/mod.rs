//! The admin console at `/admin`: server-rendered pages in the login pages' style.
//!
//! The console is a relying party of Latchkey like any other: `/admin/login` sends the browser
//! to `/authorize` as the built-in public client `latchkey:admin` (PKCE, state), and
//! `/admin/callback` exchanges the code through the token endpoint's own code path. The access
//! token it gets (audience `latchkey:admin`) is kept in an `HttpOnly` cookie and verified with
//! `latchkey-client` on every request, exactly like a call to the admin API; every action then
//! goes through `crate::admin::ops`, which checks the caller's rights.
//!
//! Forms carry a CSRF token; destructive actions show a confirmation page first.
//!
//! **Strength and age.** The console client demands `[admin] min_acr` at sign-in (a person
//! without a factor that reaches it is shown how to set one up, [`callback`]); a page or form
//! that needs more (the administrator's own lab or role policy, see `crate::admin`) or a
//! sign-in older than `[admin] max_age_secs` sends the browser to sign in again with
//! `acr_values` (and `max_age`) and back to the page: a step-up. The header shows the current
//! level and offers the step-up where a lab they administer needs more.
//!
//! **Inactivity.** Every page the console serves renews a signed, `HttpOnly` activity cookie
//! (the time, bound to the browser). While it is younger than `[admin] idle_timeout_secs`, an
//! expired console token is replaced silently through the Latchkey session; once it is older
//! (or gone), the console asks `/authorize` for factors from the last `idle_timeout_secs`
//! (`max_age`) and the callback refuses a token whose `auth_time` is older than that.

pub mod clients;
pub mod lab;
pub mod mail;
pub mod pages;
pub mod security;

use super::cookies;
use super::errors::PageError;
use super::{State, decode_pairs};
use crate::admin::{self, ADMIN_CLIENT_ID, Actor, Admin, AdminError};
use crate::protocol::pkce;
use crate::secret::random_b64;
use crate::state::AppState;
use crate::store::clients::console_callback_uri;
use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::Acr;

/// Access tokens the console holds live this long; after that it signs in again (silently,
/// while the Latchkey session lasts and the console was used within the idle timeout).
pub use crate::store::clients::CONSOLE_TOKEN_TTL;
/// The CSRF purpose of every console form.
pub const CSRF_PURPOSE: &str = "admin";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(renew_activity))
            .route("", web::get().to(index))
            .route("/login", web::get().to(login))
            .route("/callback", web::get().to(callback))
            .route("/logout", web::post().to(logout))
            .route("/labs/{lab}", web::get().to(lab::page))
            .route("/labs/{lab}/audit", web::get().to(lab::audit))
            .route(
                "/labs/{lab}/members/{user}",
                web::get().to(lab::member_page),
            )
            .route("/labs/{lab}/{action:.*}", web::post().to(lab::action))
            .route("/clients", web::get().to(clients::list))
            .route("/security", web::get().to(security::page))
            .route("/mail", web::get().to(mail::page))
            .route("/clients/{client}", web::get().to(clients::page))
            .route(
                "/clients/{client}/{action}",
                web::post().to(clients::action),
            ),
    );
}

/// A signed-in administrator on a console page.
pub struct Console {
    pub admin: Admin,
    /// Shown in the header.
    pub who: String,
    pub csrf: String,
    pub browser: String,
}

/// What a new console sign-in must prove beyond `[admin] min_acr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ask {
    /// `acr_values`: the level a page needs.
    pub acr: Option<Acr>,
    /// `max_age`: factors from the last this many seconds.
    pub max_age: Option<i64>,
}

/// `/admin/login` asking for `ask`, then back to `back`.
pub fn login_url(back: &str, ask: Ask) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("back", back);
    if let Some(a) = ask.acr {
        q.append_pair("acr", a.as_str());
    }
    if let Some(m) = ask.max_age {
        q.append_pair("max_age", &m.to_string());
    }
    format!("/admin/login?{}", q.finish())
}

/// Signs in again (with `ask`) and comes back to the page `req` was for.
fn to_login(req: &HttpRequest, ask: Ask) -> HttpResponse {
    super::authorize::see_other(&login_url(&back_path(req), ask))
}

/// What a new sign-in must prove to clear this refusal, if it is one a sign-in clears.
fn ask_for(e: &AdminError) -> Option<Ask> {
    match e {
        AdminError::Unauthenticated(_) | AdminError::DpopRefused(_) => Some(Ask::default()),
        AdminError::InsufficientAuthentication {
            need,
            max_age,
            too_old,
            ..
        } => Some(Ask {
            acr: Some(*need),
            max_age: too_old.then_some(*max_age),
        }),
        _ => None,
    }
}

/// An operation's refusal on a console page: a step-up (sign in again, more strongly or more
/// recently, and back to this page) when that is what it takes, else the error page.
pub fn refusal(req: &HttpRequest, e: &AdminError) -> HttpResponse {
    match ask_for(e) {
        Some(ask) => to_login(req, ask),
        None => error_page(e),
    }
}

/// The console's caller, or the redirect that signs them in.
pub async fn console(state: &AppState, req: &HttpRequest) -> Result<Console, HttpResponse> {
    let now = crate::store::now();
    let Some(browser) = cookies::existing_browser_id(state, req) else {
        return Err(to_login(req, Ask::default()));
    };
    // Idle too long: the token is not used; `/admin/login` asks for a recent sign-in.
    if !active(state, req, &browser, now) {
        return Err(to_login(req, Ask::default()));
    }
    let Some(token) = req
        .cookie(cookies::admin_cookie_name(state))
        .map(|c| c.value().to_owned())
    else {
        return Err(to_login(req, Ask::default()));
    };
    let admin = admin::authenticate(state, &token, None)
        .await
        .map_err(|e| refusal(req, &e))?;
    req.extensions_mut().insert(Active {
        browser: browser.clone(),
        at: now,
    });
    if admin.is_admin() {
        req.extensions_mut()
            .insert(crate::http::admin_refused::AdminCaller(
                admin.actor_id().to_owned(),
            ));
    }
    let who = match &admin.actor {
        Actor::User(id) => state
            .store
            .get_user(id.as_str())
            .await
            .ok()
            .flatten()
            .map_or_else(|| id.to_string(), |u| u.email),
        Actor::Client(id) => id.to_string(),
        Actor::Cli => "cli".to_owned(),
    };
    Ok(Console {
        csrf: cookies::csrf_token(state, &browser, CSRF_PURPOSE),
        admin,
        who,
        browser,
    })
}

/// Where signing in again leads back to: the page itself for a `GET`; for a form (a `POST`
/// whose token expired, e.g. after 15 idle minutes) the page it was on, since the form's route
/// has no page of its own and its fields are lost anyway.
fn back_path(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        return req
            .uri()
            .path_and_query()
            .map_or("/admin", |p| p.as_str())
            .to_owned();
    }
    let parts: Vec<&str> = req.path().split('/').collect();
    match parts.as_slice() {
        ["", "admin", "labs", lab, "members", user, _, ..] => {
            format!("/admin/labs/{lab}/members/{user}")
        }
        ["", "admin", "labs", lab, ..] => format!("/admin/labs/{lab}"),
        ["", "admin", "clients", client, ..] => format!("/admin/clients/{client}"),
        _ => "/admin".to_owned(),
    }
}

impl Console {
    /// The header of a page `req` asked for.
    pub fn head(&self, req: &HttpRequest) -> pages::Head {
        let s = self.admin.sign_in.as_ref();
        // The strictest level a lab they administer (system administrators: a system-wide
        // operation) asks of them, when this sign-in does not reach it.
        let short = s.and_then(|s| {
            s.short_of(if self.admin.system {
                s.need_everywhere()
            } else {
                self.admin
                    .labs
                    .iter()
                    .map(|l| s.need_in(l))
                    .fold(s.floor, Acr::max)
            })
        });
        pages::Head {
            who: self.who.clone(),
            csrf: self.csrf.clone(),
            level: s.map(|s| format!("{} ({})", admin::describe(s.acr), s.acr)),
            step_up: short.map(|n| pages::StepUp::to(&back_path(req), n)),
        }
    }
}

/// An operation's refusal as a page.
pub fn error_page(e: &AdminError) -> HttpResponse {
    let (status, title) = match e {
        AdminError::Unauthenticated(_) | AdminError::DpopRefused(_) => {
            (StatusCode::UNAUTHORIZED, "Please sign in")
        }
        AdminError::InsufficientAuthentication { .. } => {
            (StatusCode::UNAUTHORIZED, "Please sign in again")
        }
        AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        AdminError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Please check the form"),
        AdminError::Conflict(_) => (StatusCode::CONFLICT, "Not possible"),
        AdminError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    };
    let message = match e {
        AdminError::Internal(_) => "Latchkey could not complete this request.".to_owned(),
        e => e.to_string(),
    };
    super::pages::message(status, title, &message, None, Some(e.code().to_owned()))
}

/// `/admin`: the labs this administrator administers.
async fn index(state: State, req: HttpRequest) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match admin::ops::list_labs(&state, &c.admin).await {
        Ok(labs) if labs.len() == 1 && !c.admin.system => {
            super::authorize::see_other(&format!("/admin/labs/{}", labs[0].id))
        }
        Ok(labs) => {
            let labs = labs
                .into_iter()
                .map(|lab| pages::LabRow {
                    step_up: c
                        .admin
                        .sign_in
                        .as_ref()
                        .and_then(|s| s.short_of(s.need_in(&lab.id)))
                        .map(|n| pages::StepUp::to(&format!("/admin/labs/{}", lab.id), n)),
                    lab,
                })
                .collect();
            html(&pages::IndexPage {
                head: c.head(&req),
                system: c.admin.system,
                labs,
            })
        }
        Err(e) => refusal(&req, &e),
    }
}

/// What `/admin/login` remembers for `/admin/callback`, in a cookie sealed with an HMAC (so
/// that the freshness it demands cannot be edited away).
#[derive(serde::Serialize, serde::Deserialize)]
struct LoginState {
    state: String,
    verifier: String,
    back: String,
    /// The level asked for (`acr_values`), if above the console's minimum.
    #[serde(default)]
    acr: Option<Acr>,
    /// The oldest `auth_time` the new token may carry (from `max_age`).
    #[serde(default)]
    since: Option<i64>,
}

impl LoginState {
    const PURPOSE: &'static str = "admin-login-state";

    fn seal(&self, state: &AppState) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mac = cookies::csrf_token(state, &json, Self::PURPOSE);
        let json = url::form_urlencoded::byte_serialize(json.as_bytes()).collect::<String>();
        format!("{mac}.{json}")
    }

    fn open(state: &AppState, sealed: &str) -> Option<LoginState> {
        let (mac, json) = sealed.split_once('.')?;
        let json: String = url::form_urlencoded::parse(format!("v={json}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        cookies::csrf_ok(state, &json, Self::PURPOSE, mac)
            .then(|| serde_json::from_str(&json).ok())
            .flatten()
    }
}

/// Set on a request [`console`] let in: [`renew_activity`] renews the activity cookie on its
/// response.
#[derive(Debug, Clone)]
struct Active {
    browser: String,
    at: i64,
}

fn activity_cookie_name(state: &AppState) -> &'static str {
    if state.insecure_cookies {
        "latchkey_admin_active"
    } else {
        "__Host-latchkey_admin_active"
    }
}

/// The activity cookie's MAC over the time, bound to the browser.
fn activity_mac(state: &AppState, browser: &str, at: i64) -> String {
    cookies::csrf_token(state, browser, &format!("admin-active:{at}"))
}

fn activity_cookie(state: &AppState, browser: &str, at: i64) -> actix_web::cookie::Cookie<'static> {
    cookies::build(
        state,
        activity_cookie_name(state),
        format!("{at}.{}", activity_mac(state, browser, at)),
        Duration::seconds(state.config.admin.idle_timeout_secs),
    )
}

/// Whether this browser used the console within `[admin] idle_timeout_secs`.
fn active(state: &AppState, req: &HttpRequest, browser: &str, now: i64) -> bool {
    req.cookie(activity_cookie_name(state))
        .and_then(|c| {
            let (at, mac) = c.value().split_once('.')?;
            let at: i64 = at.parse().ok()?;
            crate::secret::ct_eq(&activity_mac(state, browser, at), mac).then_some(at)
        })
        .is_some_and(|at| at <= now && now - at <= state.config.admin.idle_timeout_secs)
}

/// Renews the activity cookie on the response to a request [`console`] let in.
async fn renew_activity(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<State>().cloned();
    let mut res = next.call(req).await?;
    let active = res.request().extensions().get::<Active>().cloned();
    if let (Some(a), Some(state)) = (active, state) {
        let _ = res
            .response_mut()
            .add_cookie(&activity_cookie(&state, &a.browser, a.at));
    }
    Ok(res)
}

/// Where the console may return after signing in: its own pages only (no `..` segments, no
/// control characters, nothing but plain URL characters).
fn safe_back(b: &str) -> bool {
    (b == "/admin" || b.starts_with("/admin/") || b.starts_with("/admin?"))
        && !b.split(['/', '?']).any(|seg| seg == ".." || seg == ".")
        && b.len() <= 512
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/_?=&%.-:".contains(&c))
        && !b.to_ascii_lowercase().contains("%2e")
}

/// Starts signing in to the console: to `/authorize` with PKCE, the console's minimum (the
/// client's), and from the query `acr` (a page's step-up, as `acr_values`) and `max_age`. A
/// browser that has not used the console within `[admin] idle_timeout_secs` is asked for
/// factors from that window (`max_age`), so an unattended console never signs in silently.
/// The query can only add demands: the console's own minimum is the client's.
async fn login(state: State, req: HttpRequest) -> HttpResponse {
    let query = decode_pairs(req.query_string().as_bytes());
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let back = get("back")
        .filter(|b| safe_back(b))
        .unwrap_or("/admin")
        .to_owned();
    let now = crate::store::now();
    let idle = state.config.admin.idle_timeout_secs;
    let acr = get("acr")
        .and_then(|a| a.parse::<Acr>().ok())
        .filter(|a| *a > state.config.admin.min_acr);
    let mut max_age = get("max_age")
        .and_then(|m| m.parse::<i64>().ok())
        .filter(|m| *m >= 0);
    let active =
        cookies::existing_browser_id(&state, &req).is_some_and(|b| active(&state, &req, &b, now));
    if !active {
        max_age = Some(max_age.map_or(idle, |m| m.min(idle)));
    }
    let ls = LoginState {
        state: random_b64(16),
        verifier: random_b64(32),
        back,
        acr,
        since: max_age.map(|m| now - m),
    };
    let challenge = pkce::s256(&ls.verifier);
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    params
        .append_pair("response_type", "code")
        .append_pair("client_id", ADMIN_CLIENT_ID)
        .append_pair("redirect_uri", &console_callback_uri(&state.issuer))
        .append_pair("scope", "openid")
        .append_pair("state", &ls.state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(a) = acr {
        params.append_pair("acr_values", a.as_str());
    }
    if let Some(m) = max_age {
        params.append_pair("max_age", &m.to_string());
    }
    let mut resp = super::authorize::see_other(&format!("/authorize?{}", params.finish()));
    let _ = resp.add_cookie(&cookies::build(
        &state,
        cookies::admin_login_cookie_name(&state),
        ls.seal(&state),
        Duration::minutes(15),
    ));
    resp
}

/// The end of the console's sign-in: checks `state`, exchanges the code (with the PKCE
/// verifier) at the token endpoint's code path, checks the token is as recent as the sign-in
/// asked, and keeps it. A person with no factor that reaches the level is shown how to set
/// one up (`unmet_authentication_requirements`): no grace, no "not now".
async fn callback(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let query = decode_pairs(req.query_string().as_bytes());
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ls: Option<LoginState> = req
        .cookie(cookies::admin_login_cookie_name(&state))
        .and_then(|c| LoginState::open(&state, c.value()));
    let Some(ls) = ls.filter(|l| get("state").is_some_and(|s| crate::secret::ct_eq(s, &l.state)))
    else {
        return Err(PageError::bad_request(
            "Sign-in to the console expired",
            "Open the admin console again to sign in.",
        ));
    };
    let now = crate::store::now();
    let browser = cookies::existing_browser_id(&state, &req);
    if get("error") == Some("unmet_authentication_requirements") {
        let need = ls.acr.unwrap_or(state.config.admin.min_acr);
        return Ok(enrol_page(&state, browser.as_deref(), need, &ls.back));
    }
    if let Some(e) = get("error") {
        return Err(PageError::bad_request(
            "Sign-in to the console did not complete",
            format!(
                "Latchkey answered `{e}`: {}",
                get("error_description").unwrap_or("")
            ),
        ));
    }
    let request = crate::token::authorization_code::CodeRequest {
        code: Some(get("code").unwrap_or("").to_owned()),
        redirect_uri: Some(console_callback_uri(&state.issuer)),
        code_verifier: Some(ls.verifier.clone()),
        resource: Vec::new(),
    };
    let client = crate::store::clients::console_client(&state.issuer, state.config.admin.min_acr);
    let origin = crate::http::client_addr::requester(&state, &req).details();
    let tokens =
        crate::token::authorization_code::exchange(&state, &client, &request, now, &origin, None)
            .await
            .map_err(|e| {
                PageError::bad_request(
                    "Sign-in to the console failed",
                    format!("{} Open the admin console again.", e.description),
                )
            })?;
    // The sign-in must be as recent as asked: `max_age` may have been dropped from the
    // authorization request on its way, and a console idle since then accepts only a sign-in
    // from its idle window.
    let idle_since = browser
        .as_deref()
        .filter(|b| active(&state, &req, b, now))
        .map_or(Some(now - state.config.admin.idle_timeout_secs), |_| None);
    let since = ls.since.max(idle_since);
    match admin::authenticate(&state, &tokens.access_token, None).await {
        Ok(a) => {
            if let (Some(since), Some(s)) = (since, &a.sign_in)
                && s.auth_time < since
            {
                return Err(PageError::bad_request(
                    "Please sign in again",
                    "The console needs a recent sign-in. Open the admin console again.",
                ));
            }
        }
        Err(e @ AdminError::InsufficientAuthentication { .. }) => {
            return Err(PageError::bad_request(
                "Please sign in again",
                format!("{e}. Open the admin console again."),
            ));
        }
        // Rights are the pages' business (a person who administers nothing sees so there).
        Err(_) => {}
    }
    let mut resp = super::authorize::see_other(&ls.back);
    if let Some(b) = &browser {
        let _ = resp.add_cookie(&activity_cookie(&state, b, now));
    }
    let _ = resp.add_cookie(&cookies::build(
        &state,
        cookies::admin_cookie_name(&state),
        tokens.access_token,
        Duration::seconds(CONSOLE_TOKEN_TTL),
    ));
    let _ = resp.add_cookie(&cookies::build(
        &state,
        cookies::admin_login_cookie_name(&state),
        String::new(),
        Duration::ZERO,
    ));
    Ok(resp)
}

/// Leaves the console (its token is dropped); the Latchkey session is ended at `/logout`.
async fn logout(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        // The console's token already expired: nothing to drop here, and no reason to sign
        // in again only to leave; `/logout` asks before it ends the Latchkey session.
        Err(_) => return to_logout(&state),
    };
    let form = decode_pairs(&body);
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    if !cookies::csrf_ok(&state, &c.browser, CSRF_PURPOSE, csrf) {
        return super::pages::message(
            StatusCode::BAD_REQUEST,
            "This form has expired",
            "Reload the page and try again.",
            None,
            None,
        );
    }
    // Leaving is not activity: `renew_activity` must not set the cookie this response clears.
    req.extensions_mut().remove::<Active>();
    // The console's token ends here, whether or not the Latchkey session ends at `/logout`.
    if let Some(token) = req.cookie(cookies::admin_cookie_name(&state))
        && let Err(e) = admin::sign_out(&state, token.value()).await
    {
        return error_page(&e);
    }
    to_logout(&state)
}

/// To `/logout`, dropping the console's token and its activity.
fn to_logout(state: &AppState) -> HttpResponse {
    let mut resp = super::authorize::see_other("/logout");
    for name in [
        cookies::admin_cookie_name(state),
        activity_cookie_name(state),
    ] {
        let _ = resp.add_cookie(&cookies::build(state, name, String::new(), Duration::ZERO));
    }
    resp
}

/// What a person whose factors cannot reach `need` sees after signing in to the console:
/// administration needs it, and where to set it up (the account page, reachable with their
/// password), then back to the console.
fn enrol_page(state: &AppState, browser: Option<&str>, need: Acr, back: &str) -> HttpResponse {
    super::pages::render(
        StatusCode::FORBIDDEN,
        &pages::EnrolPage {
            need: need.as_str().to_owned(),
            describe: admin::describe(need),
            // The account page's form: setting up an authenticator app starts here.
            account_csrf: browser
                .filter(|_| need == Acr::Mfa)
                .map(|b| cookies::csrf_token(state, b, super::account::CSRF_PURPOSE)),
            again: login_url(
                back,
                Ask {
                    acr: Some(need),
                    max_age: None,
                },
            ),
        },
    )
}

/// Renders a console template (200) or the error page.
pub fn html<T: Template>(page: &T) -> HttpResponse {
    super::pages::render(StatusCode::OK, page)
}
