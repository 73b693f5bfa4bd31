//! The account page's "Your data": `POST /account/data` downloads everything Latchkey holds
//! about the signed-in person (JSON); `POST /account/delete` (`password`) asks for the
//! account's deletion and `POST /account/delete/cancel` withdraws the request. The rules are
//! [`crate::signin::own_data`].

use super::State;
use super::account::{checked, render_account_with};
use super::client_addr;
use super::errors::PageError;
use crate::signin::dates::fmt_day;
use crate::signin::own_data::{self, Deletion};
use actix_web::{HttpRequest, HttpResponse, web};

/// `POST /account/data`: the download.
pub async fn download(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (_, _, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    let data = own_data::export(&state, &user, &who).await?;
    let body = serde_json::to_string_pretty(&data).map_err(PageError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"latchkey-account.json\"",
        ))
        .body(body))
}

/// `POST /account/delete` (form `password`).
pub async fn request_deletion(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, session, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    let password = form.get("password").unwrap_or("");
    match own_data::request_deletion(&state, &user, password, &who).await? {
        Deletion::Requested { on } => {
            let done = match on {
                Some(t) => format!(
                    "Your account will be deleted on {}. Until then you can cancel it here.",
                    fmt_day(t)
                ),
                None => "Your account will be deleted by an administrator. Until then you can \
                         cancel it here."
                    .into(),
            };
            let user = state.store.get_user(&user.id).await?.unwrap_or(user);
            render_account_with(&state, &req, &session, &user, None, Some(done)).await
        }
        Deletion::Refused(why) => {
            render_account_with(&state, &req, &session, &user, Some(why), None).await
        }
    }
}

/// `POST /account/delete/cancel`.
pub async fn cancel_deletion(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (_, session, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    own_data::cancel_deletion(&state, &user, &who).await?;
    let user = state.store.get_user(&user.id).await?.unwrap_or(user);
    let done = "Your account will not be deleted.".to_owned();
    render_account_with(&state, &req, &session, &user, None, Some(done)).await
}
