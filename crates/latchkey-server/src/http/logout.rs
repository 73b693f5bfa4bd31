//! RP-Initiated Logout 1.0 (`end_session_endpoint`): a confirmation page ("Sign out" / "Stay
//! signed in"), then the session ends and the browser goes back to the client's registered
//! `post_logout_redirect_uri` (never an unregistered one), or sees Latchkey's own page.

use super::authorize::current_session;
use super::errors::PageError;
use super::pages::{LogoutPage, message, render_posting_to};
use super::{Params, State, cookies};
use crate::state::AppState;
use crate::store::clients::Client;
use crate::token::jwt::verify_id_token_hint;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;

const PURPOSE: &str = "logout";

struct Checked {
    client: Option<Arc<Client>>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// Validates the logout parameters (section 2 and 3 of the spec).
async fn check(state: &AppState, p: &Params) -> Result<Checked, PageError> {
    let mut client_id = p.get("client_id").map(str::to_owned);
    if let Some(hint) = p.get("id_token_hint") {
        let claims =
            verify_id_token_hint(&state.keys.current(), &state.issuer, hint).map_err(|e| {
                PageError::bad_request(
                    "This sign-out request is not valid",
                    format!("The id_token_hint could not be verified ({e})."),
                )
            })?;
        if client_id.as_ref().is_some_and(|c| *c != claims.aud) {
            return Err(PageError::bad_request(
                "This sign-out request is not valid",
                "client_id does not match the audience of id_token_hint.",
            ));
        }
        client_id = Some(claims.aud);
    }
    let client = match &client_id {
        Some(id) => Some(state.client(id).await?.ok_or_else(|| {
            PageError::bad_request(
                "This sign-out request is not valid",
                "The client_id is not registered with this server.",
            )
        })?),
        None => None,
    };
    let uri = p.get("post_logout_redirect_uri").map(str::to_owned);
    if let Some(u) = &uri {
        let registered = client
            .as_ref()
            .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == u));
        if !registered {
            return Err(PageError::bad_request(
                "This sign-out request is not valid",
                "The post_logout_redirect_uri is not registered for this client (send client_id or id_token_hint, and register the URI exactly).",
            ));
        }
    }
    Ok(Checked {
        client,
        post_logout_redirect_uri: uri,
        state: p.get("state").map(str::to_owned),
    })
}

pub async fn get(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let p = Params::parse(req.query_string().as_bytes()).map_err(|k| {
        PageError::bad_request("Invalid request", format!("`{k}` appears more than once."))
    })?;
    confirm_page(&state, &req, &p).await
}

async fn confirm_page(
    state: &AppState,
    req: &HttpRequest,
    p: &Params,
) -> Result<HttpResponse, PageError> {
    let checked = check(state, p).await?;
    let session = current_session(state, req).await?;
    let (browser, cookie) = cookies::browser_id(state, req);
    let target = checked.post_logout_redirect_uri.clone();
    let mut resp = render_posting_to(
        StatusCode::OK,
        &LogoutPage {
            csrf: cookies::csrf_token(state, &browser, PURPOSE),
            client_id: checked
                .client
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default(),
            post_logout_redirect_uri: checked.post_logout_redirect_uri.unwrap_or_default(),
            state: checked.state.unwrap_or_default(),
            client_name: checked.client.map(|c| c.name.clone()),
            user_email: session.map(|(_, u)| u.email),
        },
        target.as_deref(),
    );
    if let Some(c) = cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// Both the RP's POST to the endpoint (spec section 2 allows POST) and the confirmation form
/// arrive here; only a form with a valid CSRF token and a decision acts.
pub async fn post(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let p = Params::parse(&body).map_err(|k| {
        PageError::bad_request("Invalid form", format!("`{k}` appears more than once."))
    })?;
    let Some(decision) = p.get("decision") else {
        return confirm_page(&state, &req, &p).await;
    };
    let browser = cookies::existing_browser_id(&state, &req).unwrap_or_default();
    if browser.is_empty()
        || !cookies::csrf_ok(&state, &browser, PURPOSE, p.get("csrf").unwrap_or(""))
    {
        return Err(PageError::bad_request(
            "This form has expired",
            "The sign-out form could not be verified. Reload the page and try again.",
        ));
    }
    let checked = check(&state, &p).await?;
    if decision != "logout" {
        return Ok(message(
            StatusCode::OK,
            "You are still signed in",
            "Nothing changed. You can close this page.",
            None,
            None,
        ));
    }
    if let Some((session, user)) = current_session(&state, &req).await? {
        crate::signin::session::sign_out(&state, &session, &user).await?;
    }
    let mut resp = match checked.post_logout_redirect_uri {
        Some(uri) => {
            let location = match url::Url::parse(&uri) {
                Ok(mut u) => {
                    if let Some(s) = &checked.state {
                        u.query_pairs_mut().append_pair("state", s);
                    }
                    u.to_string()
                }
                Err(_) => uri,
            };
            HttpResponse::SeeOther()
                .insert_header(("Location", location))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        None => message(
            StatusCode::OK,
            "You are signed out",
            "You have signed out of Latchkey. You can close this page.",
            None,
            None,
        ),
    };
    resp.add_cookie(&cookies::clear_session_cookie(&state))
        .map_err(PageError::internal)?;
    Ok(resp)
}
