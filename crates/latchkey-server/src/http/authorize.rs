//! `/authorize` (RFC 6749 section 4.1.1, OIDC Core section 3.1.2), and rendering the outcome
//! of any sign-in step ([`Next`]): a page of the flow, a local redirect, or a code or an
//! error sent back to the client's redirect URI, by query or form_post.

use super::cookies;
use super::errors::PageError;
use super::pages::FormPostPage;
use super::{State, decode_pairs};
use crate::protocol::authorize::{RawParams, ResponseMode};
use crate::secret::OpaqueToken;
use crate::signin::{self, ClientAnswer, Next};
use crate::state::AppState;
use crate::store::now;
use crate::store::sessions::Session;
use crate::store::users::User;
use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

pub use crate::signin::ACCOUNT_CLIENT_ID;

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
    let session = current_session(&state, &req).await?;
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let at = signin::BrowserAt {
        id: &browser,
        source: super::client_addr::requester(&state, &req).ip,
    };
    let next =
        signin::flow::start(&state, RawParams::from_pairs(pairs), session, at, now()).await?;
    respond(&state, next, cookie, None)
}

/// The live session of this browser and its (enabled) user.
pub async fn current_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, PageError> {
    Ok(signin::session::current(state, cookies::session_token(state, req)).await?)
}

/// Renders where a sign-in step sends the browser. `browser_cookie`: a browser id minted for
/// this request, set when the step bound a new flow to it; `session`: the session's new
/// cookie token after a factor was proven.
pub fn respond(
    state: &AppState,
    next: Next,
    browser_cookie: Option<Cookie<'static>>,
    session: Option<&OpaqueToken>,
) -> Result<HttpResponse, PageError> {
    let mut resp = match next {
        Next::Page { path, flow, new } => {
            let mut r = see_other(&format!("{path}?flow={flow}"));
            if new && let Some(c) = browser_cookie {
                r.add_cookie(&c).map_err(PageError::internal)?;
            }
            r
        }
        Next::Local(location) => see_other(&location),
        Next::Client(answer) => to_client(answer),
        Next::NotAMember { client, .. } => actix_web::ResponseError::error_response(
            &PageError::from(signin::SignInError::NotAMember { client }),
        ),
    };
    if let Some(token) = session {
        resp.add_cookie(&cookies::session_cookie(state, token))
            .map_err(PageError::internal)?;
    }
    Ok(resp)
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location.to_owned()))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

pub fn flow_gone() -> PageError {
    signin::SignInError::FlowGone.into()
}

fn to_client(answer: ClientAnswer) -> HttpResponse {
    let ClientAnswer {
        redirect_uri,
        mode,
        params,
    } = answer;
    match mode {
        ResponseMode::Query => {
            let location = match url::Url::parse(&redirect_uri) {
                Ok(mut u) => {
                    u.query_pairs_mut().extend_pairs(params.iter());
                    u.to_string()
                }
                Err(_) => redirect_uri,
            };
            see_other(&location)
        }
        ResponseMode::FormPost => super::pages::render_posting_to(
            StatusCode::OK,
            &FormPostPage {
                redirect_uri: redirect_uri.clone(),
                params,
            },
            Some(&redirect_uri),
        ),
    }
}
