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

pub mod clients;
pub mod lab;
pub mod pages;

use super::cookies;
use super::errors::PageError;
use super::{State, decode_pairs};
use crate::admin::{self, ADMIN_CLIENT_ID, Actor, Admin, AdminError};
use crate::protocol::pkce;
use crate::secret::random_b64;
use crate::state::AppState;
use crate::store::clients::console_callback_uri;
use actix_web::cookie::time::Duration;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// Access tokens the console holds live this long; after that it signs in again (silently,
/// while the Latchkey session lasts).
pub use crate::store::clients::CONSOLE_TOKEN_TTL;
/// The CSRF purpose of every console form.
pub const CSRF_PURPOSE: &str = "admin";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(index))
        .route("/admin/login", web::get().to(login))
        .route("/admin/callback", web::get().to(callback))
        .route("/admin/logout", web::post().to(logout))
        .route("/admin/labs/{lab}", web::get().to(lab::page))
        .route("/admin/labs/{lab}/audit", web::get().to(lab::audit))
        .route(
            "/admin/labs/{lab}/members/{user}",
            web::get().to(lab::member_page),
        )
        .route("/admin/labs/{lab}/{action:.*}", web::post().to(lab::action))
        .route("/admin/clients", web::get().to(clients::list))
        .route("/admin/clients/{client}", web::get().to(clients::page))
        .route(
            "/admin/clients/{client}/{action}",
            web::post().to(clients::action),
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

/// The console's caller, or the redirect that signs them in.
pub async fn console(state: &AppState, req: &HttpRequest) -> Result<Console, HttpResponse> {
    let to_login = || {
        let back = back_path(req);
        super::authorize::see_other(&format!(
            "/admin/login?back={}",
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        ))
    };
    let Some(token) = req
        .cookie(cookies::admin_cookie_name(state))
        .map(|c| c.value().to_owned())
    else {
        return Err(to_login());
    };
    let admin = match admin::authenticate(state, &token).await {
        Ok(a) => a,
        Err(AdminError::Unauthenticated(_)) => return Err(to_login()),
        Err(e) => return Err(error_page(&e)),
    };
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
    let Some(browser) = cookies::existing_browser_id(state, req) else {
        return Err(to_login());
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
        _ => "/admin".to_owned(),
    }
}

/// An operation's refusal as a page.
pub fn error_page(e: &AdminError) -> HttpResponse {
    let (status, title) = match e {
        AdminError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "Please sign in"),
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
        Ok(labs) => super::pages::render(
            StatusCode::OK,
            &pages::IndexPage {
                who: c.who,
                csrf: c.csrf,
                system: c.admin.system,
                labs,
            },
        ),
        Err(e) => error_page(&e),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LoginState {
    state: String,
    verifier: String,
    back: String,
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

/// Starts signing in to the console: to `/authorize` with PKCE.
async fn login(state: State, req: HttpRequest) -> HttpResponse {
    let query = decode_pairs(req.query_string().as_bytes());
    let back = query
        .iter()
        .find(|(k, _)| k == "back")
        .map(|(_, v)| v.clone())
        .filter(|b| safe_back(b))
        .unwrap_or_else(|| "/admin".into());
    let ls = LoginState {
        state: random_b64(16),
        verifier: random_b64(32),
        back,
    };
    let challenge = pkce::s256(&ls.verifier);
    let params: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", ADMIN_CLIENT_ID)
        .append_pair("redirect_uri", &console_callback_uri(&state.issuer))
        .append_pair("scope", "openid")
        .append_pair("state", &ls.state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let value = serde_json::to_string(&ls).unwrap_or_default();
    let value = url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let mut resp = super::authorize::see_other(&format!("/authorize?{params}"));
    let _ = resp.add_cookie(&cookies::build(
        &state,
        cookies::admin_login_cookie_name(&state),
        value,
        Duration::minutes(15),
    ));
    resp
}

/// The end of the console's sign-in: checks `state`, exchanges the code (with the PKCE
/// verifier) at the token endpoint's code path, and keeps the access token.
async fn callback(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let query = decode_pairs(req.query_string().as_bytes());
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ls: Option<LoginState> = req
        .cookie(cookies::admin_login_cookie_name(&state))
        .and_then(|c| {
            let raw: String = url::form_urlencoded::parse(format!("v={}", c.value()).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            serde_json::from_str(&raw).ok()
        });
    let Some(ls) = ls.filter(|l| get("state").is_some_and(|s| crate::secret::ct_eq(s, &l.state)))
    else {
        return Err(PageError::bad_request(
            "Sign-in to the console expired",
            "Open the admin console again to sign in.",
        ));
    };
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
    };
    let client = crate::store::clients::console_client(&state.issuer);
    let tokens =
        crate::token::authorization_code::exchange(&state, &client, &request, crate::store::now())
            .await
            .map_err(|e| {
                PageError::bad_request(
                    "Sign-in to the console failed",
                    format!("{} Open the admin console again.", e.description),
                )
            })?;
    let mut resp = super::authorize::see_other(&ls.back);
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
    to_logout(&state)
}

/// To `/logout`, dropping the console's token.
fn to_logout(state: &AppState) -> HttpResponse {
    let mut resp = super::authorize::see_other("/logout");
    let _ = resp.add_cookie(&cookies::build(
        state,
        cookies::admin_cookie_name(state),
        String::new(),
        Duration::ZERO,
    ));
    resp
}

/// Renders a console template (200) or the error page.
pub fn html<T: Template>(page: &T) -> HttpResponse {
    super::pages::render(StatusCode::OK, page)
}
