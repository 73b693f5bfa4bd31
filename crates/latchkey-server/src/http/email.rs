//! The account's e-mail address: `POST /account/email/confirm` (mail a confirmation link),
//! `POST /account/email` (ask to change it), and `/email/confirm/{token}`, where a mailed
//! link is opened. Opening shows a button and changes nothing; the POST confirms (mail
//! scanners open links, and must not confirm a change for the reader). The rules are
//! [`crate::signin::email`].

use super::account::{checked, render_account_with};
use super::client_addr;
use super::cookies;
use super::errors::PageError;
use super::{State, page_form, require_csrf};
use crate::signin::email::{self, ChangeRequested, Confirmed};
use crate::store::account_links::Purpose;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

const CONFIRM: &str = "confirm-email";

#[derive(Template)]
#[template(path = "confirm_email.html")]
struct ConfirmPage {
    title: String,
    message: String,
    button: String,
    token: String,
    csrf: String,
}

/// `POST /account/email/confirm`: mails a link that confirms the current address.
pub async fn send_confirmation(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (_, session, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    let recent = state
        .store
        .links_since(
            &user.id,
            Purpose::ConfirmAddress,
            crate::store::now() - 3600,
        )
        .await?;
    if recent >= email::PER_HOUR {
        let why = format!(
            "{} confirmation links were sent in the last hour; use the newest one, or try again later.",
            email::PER_HOUR
        );
        return render_account_with(&state, &req, &session, &user, Some(why), None).await;
    }
    email::send_confirmation(&state, &user, who.details()).await?;
    let done = format!(
        "A confirmation link is on its way to {}. It works for {} hours.",
        user.email, state.config.mail.confirm_link_hours
    );
    render_account_with(&state, &req, &session, &user, None, Some(done)).await
}

/// `POST /account/email` (form `email`, `password`): asks to change the address.
pub async fn change(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, session, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    let new = form.get("email").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    match email::request_change(&state, &user, new, password, &who).await? {
        ChangeRequested::Sent => {
            let done = format!(
                "Open the links sent to {} and to {} within {} hours: the address changes once \
                 both are opened.",
                crate::store::users::normalize_email(new),
                user.email,
                state.config.mail.confirm_link_hours
            );
            render_account_with(&state, &req, &session, &user, None, Some(done)).await
        }
        ChangeRequested::Refused(why) => {
            render_account_with(&state, &req, &session, &user, Some(why), None).await
        }
    }
}

fn gone() -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        title: "This link is not valid".into(),
        message: "The link was used already, replaced by a newer one, or has expired. Ask for \
                  a new one on your account page."
            .into(),
        code: None,
        debug: None,
        retry_after: None,
    }
}

/// `GET /email/confirm/{token}`: what the link confirms, and a button.
pub async fn confirm_page(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let link = state
        .store
        .peek_link(crate::secret::TokenHash::of(&token), crate::store::now())
        .await?
        .ok_or_else(gone)?;
    let (title, message, button) = match link.purpose {
        Purpose::ConfirmAddress => (
            "Confirm your e-mail address",
            format!("Confirm that {} is your address.", link.email),
            "Confirm",
        ),
        Purpose::ChangeNew => (
            "Confirm your new e-mail address",
            format!(
                "Confirm that your account may use {} from now on. The link sent to your \
                 current address must be opened too.",
                link.email
            ),
            "Confirm the new address",
        ),
        Purpose::ChangeOld => (
            "Agree to the change of your address",
            format!(
                "Your account asked to use {} instead of this address. Agree only if you \
                 asked for it.",
                link.email
            ),
            "Agree to the change",
        ),
        Purpose::PasswordReset => return Err(gone()),
    };
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let mut resp = super::pages::render(
        StatusCode::OK,
        &ConfirmPage {
            title: title.into(),
            message,
            button: button.into(),
            token: token.into_inner(),
            csrf: cookies::csrf_token(&state, &browser, CONFIRM),
        },
    );
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    Ok(resp)
}

/// `POST /email/confirm/{token}`.
pub async fn confirm_submit(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = page_form(&body)?;
    let browser = cookies::existing_browser_id(&state, &req).unwrap_or_default();
    require_csrf(&state, &browser, CONFIRM, &form)?;
    let who = client_addr::requester(&state, &req);
    let (title, message) = match email::confirm(&state, &token, &who).await? {
        Confirmed::Address(a) => (
            "Address confirmed".to_owned(),
            format!("{a} is confirmed as your account's address."),
        ),
        Confirmed::Waiting { other } => (
            "Half-way there".to_owned(),
            format!(
                "This address agreed. Now open the link sent to the {other} address: the \
                 change happens once both are opened."
            ),
        ),
        Confirmed::Changed { new } => (
            "Address changed".to_owned(),
            format!("Your account's address is now {new}. Sign in with it from now on."),
        ),
        Confirmed::Taken => {
            return Err(PageError {
                status: StatusCode::CONFLICT,
                title: "Address not changed".into(),
                message: "Another account has this address by now, so your address stays as \
                          it was."
                    .into(),
                code: None,
                debug: None,
                retry_after: None,
            });
        }
        Confirmed::Invalid => return Err(gone()),
    };
    Ok(super::pages::message(
        StatusCode::OK,
        &title,
        &message,
        None,
        None,
    ))
}
