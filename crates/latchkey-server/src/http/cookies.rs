//! Cookies and CSRF tokens.
//!
//! Two cookies, both `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` with the `__Host-`
//! prefix unless the issuer is plain-HTTP localhost (development):
//! - the session cookie holds a random token whose hash names the login session;
//! - the browser cookie holds a random id that login flows are bound to;
//! - the device cookie, set at sign-in, marks the browser as known to that account
//!   ([`crate::signin::device`]): its password attempts have their own budget.
//!
//! CSRF tokens are HMAC(key derived from the KEK, browser id, purpose): every node computes the
//! same token, nothing is stored, and a token from one browser is useless in another.

use crate::secret::{OpaqueToken, TokenHash, TokenKind, ct_eq};
use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.insecure_cookies {
        "latchkey_session"
    } else {
        "__Host-latchkey_session"
    }
}

pub fn browser_cookie_name(state: &AppState) -> &'static str {
    if state.insecure_cookies {
        "latchkey_browser"
    } else {
        "__Host-latchkey_browser"
    }
}

/// The known-device cookie: a browser that signed in to an account before (see
/// [`crate::signin::device`]).
pub fn device_cookie_name(state: &AppState) -> &'static str {
    if state.insecure_cookies {
        "latchkey_device"
    } else {
        "__Host-latchkey_device"
    }
}

pub fn admin_cookie_name(state: &AppState) -> &'static str {
    if state.insecure_cookies {
        "latchkey_admin"
    } else {
        "__Host-latchkey_admin"
    }
}

pub fn admin_login_cookie_name(state: &AppState) -> &'static str {
    if state.insecure_cookies {
        "latchkey_admin_login"
    } else {
        "__Host-latchkey_admin_login"
    }
}

/// A cookie with this module's attributes (`HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure`).
pub fn build(
    state: &AppState,
    name: &'static str,
    value: String,
    max_age: Duration,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(!state.insecure_cookies)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

pub fn session_cookie(state: &AppState, token: &OpaqueToken) -> Cookie<'static> {
    build(
        state,
        session_cookie_name(state),
        token.expose().to_owned(),
        Duration::seconds(state.config.tokens.session_ttl_secs),
    )
}

pub fn clear_session_cookie(state: &AppState) -> Cookie<'static> {
    build(
        state,
        session_cookie_name(state),
        String::new(),
        Duration::ZERO,
    )
}

/// The hash of the session token the browser presented, if any.
pub fn session_token(state: &AppState, req: &HttpRequest) -> Option<TokenHash> {
    req.cookie(session_cookie_name(state))
        .map(|c| c.value().to_owned())
        .filter(|v| v.starts_with(TokenKind::Session.prefix()))
        .map(|v| TokenHash::of(&v))
}

/// The browser id from the cookie, or a new one with the cookie that sets it.
pub fn browser_id(state: &AppState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    if let Some(c) = req.cookie(browser_cookie_name(state))
        && c.value().starts_with(TokenKind::Browser.prefix())
    {
        return (c.value().to_owned(), None);
    }
    let id = OpaqueToken::generate(TokenKind::Browser)
        .expose()
        .to_owned();
    let cookie = build(
        state,
        browser_cookie_name(state),
        id.clone(),
        Duration::days(400),
    );
    (id, Some(cookie))
}

pub fn existing_browser_id(state: &AppState, req: &HttpRequest) -> Option<String> {
    req.cookie(browser_cookie_name(state))
        .map(|c| c.value().to_owned())
        .filter(|v| v.starts_with(TokenKind::Browser.prefix()))
}

pub fn csrf_token(state: &AppState, browser_id: &str, purpose: &str) -> String {
    let mut msg = Vec::with_capacity(browser_id.len() + purpose.len() + 1);
    msg.extend_from_slice(browser_id.as_bytes());
    msg.push(0);
    msg.extend_from_slice(purpose.as_bytes());
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(&state.csrf_key, &msg).as_ref())
}

pub fn csrf_ok(state: &AppState, browser_id: &str, purpose: &str, presented: &str) -> bool {
    ct_eq(&csrf_token(state, browser_id, purpose), presented)
}
