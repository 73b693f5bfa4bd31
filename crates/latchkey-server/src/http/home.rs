//! `/`, where someone who opens Latchkey's address lands: a signed-in person goes to the
//! admin console if they administer anything, else to their account page. Without a session:
//! on a fresh install (no system administrator yet) a page naming the command that creates the
//! first one, on the server; otherwise a short page linking the account page and the console.

use super::State;
use super::authorize::{current_session, see_other};
use super::errors::PageError;
use super::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use latchkey_core::names::UserId;

/// The command that makes the first system administrator, as the landing page shows it.
pub const BOOTSTRAP_COMMAND: &str =
    "latchkey admin bootstrap --email you@example.org --name \"Your Name\" --password-stdin";

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    /// No system administrator exists yet.
    pub fresh: bool,
    pub command: &'static str,
}

/// `GET /`.
pub async fn page(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    if let Some((_, user)) = current_session(&state, &req).await? {
        let administers = state
            .store
            .admin_rights(&UserId::new(&user.id))
            .await?
            .is_some_and(|r| !r.disabled && (r.system || !r.labs.is_empty()));
        return Ok(see_other(if administers { "/admin" } else { "/account" }));
    }
    let fresh = !state.store.has_system_admin().await?;
    Ok(render(
        StatusCode::OK,
        &HomePage {
            fresh,
            command: BOOTSTRAP_COMMAND,
        },
    ))
}
