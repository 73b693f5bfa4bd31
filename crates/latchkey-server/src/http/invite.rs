//! `/invite/{token}`: the link an invitation's person received. They choose a password once;
//! the service ([`crate::signin::invitation`]) creates the account, its membership and roles
//! with the audit entry in one transaction, and the link stops working.

use super::cookies;
use super::errors::PageError;
use super::{State, page_form, require_csrf};
use crate::signin::invitation::{self, Acceptance, Opened};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

const CSRF_PURPOSE: &str = "invite";

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    lab_name: String,
    email: String,
    token: String,
    csrf: String,
    name: String,
    error: Option<String>,
}

fn gone() -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        title: "This invitation is not valid".into(),
        message: "The link was used already, withdrawn, replaced or has expired. Ask your lab \
                  administrator for a new one."
            .into(),
        code: None,
        debug: None,
        retry_after: None,
    }
}

pub async fn page(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let Opened {
        invitation,
        lab_name,
    } = invitation::open(&state, &token).await?.ok_or_else(gone)?;
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let mut resp = super::pages::render(
        StatusCode::OK,
        &InvitePage {
            lab_name,
            email: invitation.email,
            token: token.into_inner(),
            csrf: cookies::csrf_token(&state, &browser, CSRF_PURPOSE),
            name: String::new(),
            error: None,
        },
    );
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    Ok(resp)
}

pub async fn submit(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = page_form(&body)?;
    let browser = cookies::existing_browser_id(&state, &req).unwrap_or_default();
    require_csrf(&state, &browser, CSRF_PURPOSE, &form)?;
    let name = form.get("name").map(str::trim).filter(|n| !n.is_empty());
    let password = form.get("password").unwrap_or("");
    match invitation::accept(&state, &token, name, password).await? {
        Acceptance::Accepted(Opened {
            invitation,
            lab_name,
        }) => Ok(super::pages::message(
            StatusCode::OK,
            "Your account is ready",
            &format!(
                "You are a member of {lab_name}. Sign in to your lab's services with {}.",
                invitation.email
            ),
            None,
            None,
        )),
        Acceptance::PasswordRefused { opened, reason } => {
            // Nothing was checked while another request hashes for this address: retry, not
            // another password.
            let busy = reason == crate::signin::password::ACCOUNT_BUSY;
            let page = InvitePage {
                lab_name: opened.lab_name,
                email: opened.invitation.email,
                token: token.into_inner(),
                csrf: cookies::csrf_token(&state, &browser, CSRF_PURPOSE),
                name: name.unwrap_or("").to_owned(),
                error: Some(if busy {
                    reason
                } else {
                    format!("Choose another password: {reason}.")
                }),
            };
            Ok(super::pages::render_refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                busy,
                &page,
            ))
        }
        Acceptance::Invalid => Err(gone()),
        Acceptance::AccountExists(m) => Err(PageError::bad_request("Account exists", m)),
    }
}
