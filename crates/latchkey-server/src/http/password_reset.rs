//! `/password/forgot` and `/password/reset/{token}`: asking for a reset link, and using it
//! (the rules are [`crate::signin::reset`]). The forgot page answers every address the same
//! way; the reset page spends its link only when a new password is accepted.

use super::client_addr;
use super::cookies;
use super::errors::PageError;
use super::{State, page_form, require_csrf};
use crate::signin::reset::{self, Reset};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

const FORGOT: &str = "forgot";
const RESET: &str = "reset";

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    csrf: String,
    flow: String,
    email: String,
    sent: bool,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    email: String,
    token: String,
    csrf: String,
    error: Option<String>,
}

/// A flow id as the forgot page carries it back to the sign-in page: flow ids are
/// URL-safe base64, anything else is dropped.
fn flow_param(s: Option<&str>) -> String {
    s.filter(|f| {
        f.len() <= 64
            && f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
    .unwrap_or_default()
    .to_owned()
}

fn with_cookie(
    mut resp: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

/// `GET /password/forgot[?flow=…]`.
pub async fn forgot_page(state: State, req: HttpRequest) -> HttpResponse {
    let q = super::decode_pairs(req.query_string().as_bytes());
    let flow = flow_param(q.iter().find(|(k, _)| k == "flow").map(|(_, v)| v.as_str()));
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let page = ForgotPage {
        csrf: cookies::csrf_token(&state, &browser, FORGOT),
        flow,
        email: String::new(),
        sent: false,
        minutes: state.config.mail.reset_link_minutes,
    };
    with_cookie(super::pages::render(StatusCode::OK, &page), cookie)
}

/// `POST /password/forgot` (form `email`): the same answer for every address.
pub async fn forgot_submit(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = page_form(&body)?;
    let browser = cookies::existing_browser_id(&state, &req).unwrap_or_default();
    require_csrf(&state, &browser, FORGOT, &form)?;
    let email = form.get("email").unwrap_or("").trim();
    if latchkey_core::names::Email::parse(email).is_err() {
        return Err(PageError::bad_request(
            "Not an e-mail address",
            "Give the e-mail address you sign in with.",
        ));
    }
    let who = client_addr::requester(&state, &req);
    if let Some(retry_after) =
        reset::request(state.clone().into_inner(), email.to_owned(), who).await?
    {
        return Err(PageError {
            status: StatusCode::TOO_MANY_REQUESTS,
            title: "Too many requests".into(),
            message: "Too many password resets were asked for from your network. Try again \
                      later."
                .into(),
            code: None,
            debug: None,
            retry_after: Some(retry_after),
        });
    }
    Ok(super::pages::render(
        StatusCode::OK,
        &ForgotPage {
            csrf: String::new(),
            flow: flow_param(form.get("flow")),
            email: email.to_owned(),
            sent: true,
            minutes: state.config.mail.reset_link_minutes,
        },
    ))
}

fn gone() -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        title: "This link is not valid".into(),
        message: "The link was used already, replaced by a newer one, or has expired. Ask for \
                  a new one from the sign-in page (\"Forgot your password?\")."
            .into(),
        code: None,
        debug: None,
        retry_after: None,
    }
}

/// `GET /password/reset/{token}`: the form (spends nothing).
pub async fn reset_page(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (_, user) = reset::open(&state, &token).await?.ok_or_else(gone)?;
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let page = ResetPage {
        email: user.email,
        token: token.into_inner(),
        csrf: cookies::csrf_token(&state, &browser, RESET),
        error: None,
    };
    Ok(with_cookie(
        super::pages::render(StatusCode::OK, &page),
        cookie,
    ))
}

/// `POST /password/reset/{token}` (form `new`, `repeat`).
pub async fn reset_submit(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = page_form(&body)?;
    let browser = cookies::existing_browser_id(&state, &req).unwrap_or_default();
    require_csrf(&state, &browser, RESET, &form)?;
    let who = client_addr::requester(&state, &req);
    let new = form.get("new").unwrap_or("");
    let repeated = form.get("repeat").unwrap_or("");
    match reset::reset(&state, &token, new, repeated, &who).await? {
        Reset::Done {
            email,
            sessions_ended,
        } => {
            let ended = if sessions_ended == 0 {
                String::new()
            } else {
                format!(" {sessions_ended} signed-in browser(s) were signed out.")
            };
            Ok(super::pages::message(
                StatusCode::OK,
                "Your password is changed",
                &format!(
                    "Sign in with {email} and your new password; if your account has a second \
                     factor, it is asked for as before.{ended}"
                ),
                Some("Open your lab's service, or your account page, to sign in.".into()),
                None,
            ))
        }
        Reset::Refused(why) => {
            let Some((_, user)) = reset::open(&state, &token).await? else {
                return Err(gone());
            };
            let busy = why == crate::signin::password::ACCOUNT_BUSY;
            let page = ResetPage {
                email: user.email,
                token: token.into_inner(),
                csrf: cookies::csrf_token(&state, &browser, RESET),
                error: Some(why),
            };
            Ok(super::pages::render_refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                busy,
                &page,
            ))
        }
        Reset::Invalid => Err(gone()),
    }
}
