//! `/invite/{token}`: the link a lab administrator sent. The invited person chooses a password
//! once; the account, its membership and roles are created together and the link stops
//! working.

use super::cookies;
use super::errors::PageError;
use super::{State, page_form, require_csrf};
use crate::audit::{Action, Event};
use crate::secret::TokenHash;
use crate::store::StoreError;
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
        message: "The link was used already, withdrawn, or has expired. Ask your lab \
                  administrator for a new one."
            .into(),
        code: None,
        debug: None,
    }
}

async fn open(
    state: &crate::state::AppState,
    token: &str,
) -> Result<(crate::store::invitations::Invitation, String), PageError> {
    let inv = state
        .store
        .invitation_by_token(TokenHash::of(token))
        .await?
        .ok_or_else(gone)?;
    let lab = state
        .store
        .get_lab(&latchkey_core::names::LabId::new(inv.lab.as_str()))
        .await?
        .map_or_else(|| inv.lab.clone(), |l| l.name);
    Ok((inv, lab))
}

pub async fn page(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (inv, lab_name) = open(&state, &token).await?;
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let mut resp = super::pages::render(
        StatusCode::OK,
        &InvitePage {
            lab_name,
            email: inv.email,
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
    let (inv, lab_name) = open(&state, &token).await?;
    let name = form.get("name").map(str::trim).filter(|n| !n.is_empty());
    let password = form.get("password").unwrap_or("");
    let mut context = vec![inv.email.as_str()];
    context.extend(inv.email.split('@'));
    context.extend(name);
    if let Err(e) = crate::password::check_new_password(&state.config.password, password, &context)
    {
        return Ok(super::pages::render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &InvitePage {
                lab_name,
                email: inv.email,
                token: token.into_inner(),
                csrf: cookies::csrf_token(&state, &browser, CSRF_PURPOSE),
                name: name.unwrap_or("").to_owned(),
                error: Some(format!("Choose another password: {e}.")),
            },
        ));
    }
    let hash = state
        .hasher
        .hash(password)
        .await
        .map_err(PageError::internal)?;
    let (user_id, inv) = match state
        .store
        .accept_invitation(TokenHash::of(&token), name, hash)
        .await
    {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(gone()),
        Err(StoreError::Conflict(m)) => return Err(PageError::bad_request("Account exists", m)),
        Err(e) => return Err(e.into()),
    };
    state
        .store
        .audit(Event::new(
            &user_id,
            Action::InvitationAccept,
            &inv.id,
            serde_json::json!({"lab": inv.lab, "user": user_id, "roles": inv.roles}),
        ))
        .await?;
    Ok(super::pages::message(
        StatusCode::OK,
        "Your account is ready",
        &format!(
            "You are a member of {lab_name}. Sign in to your lab's services with {}.",
            inv.email
        ),
        None,
        None,
    ))
}
