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
    if !new.force && state.store.has_system_admin().await? {
        return Err(AdminError::Conflict(
            "a system administrator already exists: they can name you one in the console or the API (or run `latchkey admin grant --system --email …` for an existing account); --force makes another one anyway".into(),
        ));
    }
    let email = members::checked_email(&new.email)?;
    let name = new.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if let Some(n) = name
        && (n.len() > 200 || n.chars().any(char::is_control))
    {
        return Err(AdminError::invalid(
            "name",
            "give a name of at most 200 characters, without control characters",
        ));
    }
    if state.store.find_user_by_email(&email).await?.is_some() {
        return Err(AdminError::Conflict(format!(
            "{email} already has an account: `latchkey admin grant --system --email {email}` makes it a system administrator"
        )));
    }
    let mut context = vec![email.as_str()];
    context.extend(email.split('@'));
    context.extend(name);
    crate::password::check_new_password(&state.config.password, &new.password, &context)
        .map_err(|e| AdminError::invalid("password", format!("password refused: {e}")))?;
    let hash = state
        .hasher
        .hash(&new.password)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let (actor, force) = (admin.actor_id().to_owned(), new.force);
    let id = state
        .store
        .create_system_admin(&email, name, &hash, move |id| {
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
        .await?;
    get_user(state, admin, &id).await
}
