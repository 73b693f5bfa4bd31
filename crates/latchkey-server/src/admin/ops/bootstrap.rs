//! The first system administrator, made on the server (`latchkey admin bootstrap`): an
//! account that belongs to no lab, with the password the operator typed. Signing in to the
//! console then demands `[admin] min_acr`, so they set up a second factor at their first
//! console sign-in. After that, administrators name each other (`set_system_admin`).

use super::*;

/// `latchkey admin bootstrap`'s input.
#[derive(Debug, Clone)]
pub struct NewSystemAdmin {
    pub email: String,
    pub name: Option<String>,
    pub password: String,
    /// Make one even though a system administrator exists (every one of them lost their
    /// factors, say).
    pub force: bool,
}

/// Creates a system administrator from the command line only; refused when one exists
/// already, unless `force`. Audited as `user.create` and `user.system_admin` with the account.
pub async fn bootstrap_system_admin(
    state: &AppState,
    admin: &Admin,
    new: NewSystemAdmin,
) -> R<UserView> {
    admin.require_system()?;
    if admin.actor != crate::admin::Actor::Cli {
        return Err(AdminError::Forbidden(
            "the first system administrator is made on the server's command line; administrators name others as system administrators".into(),
        ));
    }
    // Checked here first to spare the password hashing, and again, atomically, where the
    // account is created: of two bootstraps at once, only one makes an administrator.
    if !new.force && state.store.has_system_admin().await? {
        return Err(admin_exists());
    }
    let email = members::checked_email(&new.email)?;
    let name = members::checked_name(new.name.as_deref())?;
    if state.store.find_user_by_email(&email).await?.is_some() {
        return Err(AdminError::Conflict(format!(
            "{email} already has an account: `latchkey admin grant --system --email {email}` makes it a system administrator"
        )));
    }
    let hash = members::new_password_hash(state, &email, name, &new.password).await?;
    let (actor, force) = (admin.actor_id().to_owned(), new.force);
    let id = state
        .store
        .create_system_admin(&email, name, &hash, !force, move |id| {
            vec![
                Event::new(
                    actor.clone(),
                    Action::UserCreate,
                    id.as_str(),
                    json!({"bootstrap": true, "force": force, "after": {"system_admin": true}}),
                ),
                Event::new(
                    actor,
                    Action::UserSystemAdmin,
                    id.as_str(),
                    json!({"before": false, "after": true}),
                ),
            ]
        })
        .await?
        .ok_or_else(admin_exists)?;
    get_user(state, admin, &id).await
}

fn admin_exists() -> AdminError {
    AdminError::Conflict(
        "a system administrator already exists: they can name you one in the console or the API (or run `latchkey admin grant --system --email …` for an existing account); --force makes another one anyway".into(),
    )
}
