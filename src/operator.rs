//! The operator at the command line as a client of the admin operations
//! (`latchkey_server::admin::ops`): every mutating command resolves the names people type
//! (lab name → id, e-mail → user id), calls the same operation the admin API and console call,
//! as `Admin::cli()` (audited as `cli`), and prints the result. Validation, audit actions and
//! refusals are therefore the API's; this module only translates a refusal's API field name into
//! the command-line flag that carries it.

use latchkey_core::names::{LabId, UserId};
use latchkey_server::App;
use latchkey_server::Config;
use latchkey_server::admin::{Admin, AdminError};
use latchkey_server::app::AppState;
use latchkey_server::store::labs::Lab;
use std::sync::Arc;

/// An account the operator named by e-mail: its id, typed for the operations, and the
/// address to print.
pub struct Account {
    pub id: UserId,
    pub email: String,
}

/// The state the operations need, and the command line's rights.
pub struct Operator {
    pub state: Arc<AppState>,
    pub admin: Admin,
}

impl Operator {
    /// Opens the database (migrating it) without loading signing keys or starting background
    /// tasks: see `App::for_command_line`.
    pub async fn open(config: &Config) -> anyhow::Result<Operator> {
        let app = App::for_command_line(config.clone()).await?;
        Ok(Operator {
            state: app.state(),
            admin: Admin::cli(),
        })
    }

    /// A lab, from its id or name.
    pub async fn lab(&self, lab: &str) -> anyhow::Result<Lab> {
        self.state.store.find_lab(lab).await?.ok_or_else(|| {
            anyhow::anyhow!("no lab `{lab}` (create it with `latchkey lab create --name …`)")
        })
    }

    /// A lab's id, from its id or name: what the operations take.
    pub async fn lab_id(&self, lab: &str) -> anyhow::Result<LabId> {
        Ok(LabId::new(self.lab(lab).await?.id))
    }

    /// The account with this e-mail address.
    pub async fn user(&self, email: &str) -> anyhow::Result<Account> {
        let u = self
            .state
            .store
            .find_user_by_email(email)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user with email `{email}`"))?;
        Ok(Account {
            id: UserId::new(u.id),
            email: u.email,
        })
    }

    /// Whether the user belongs to the lab (read through the same operation the API uses).
    pub async fn is_member(&self, lab: &LabId, user: &UserId) -> anyhow::Result<bool> {
        match latchkey_server::admin::ops::get_member(&self.state, &self.admin, lab, user).await {
            Ok(_) => Ok(true),
            Err(AdminError::NotFound(_)) => Ok(false),
            Err(e) => Err(refused(e)),
        }
    }
}

/// The API's request fields and the flags (or arguments) that carry them on the command line.
const FLAGS: &[(&str, &str)] = &[
    ("name", "--name"),
    ("email", "--email"),
    ("password", "--password-stdin"),
    ("roles", "--role"),
    ("features", "FEATURE"),
    ("feature", "FEATURE"),
    ("min_acr", "--min-acr"),
    ("grace_days", "--grace-days"),
    ("grace_logins", "--grace-logins"),
    ("redirect_uris", "--redirect-uri"),
    ("post_logout_redirect_uris", "--post-logout-redirect-uri"),
    ("grant_types", "--grant-types"),
    ("admin_of", "--admin-of"),
    ("labs", "--lab"),
];

/// In the client commands `--feature` carries a declared feature (`features`).
pub const CLIENT_FLAGS: &[(&str, &str)] = &[("features", "--feature"), ("jwks", "--jwks-file")];

/// In the role commands `--role` carries what the API calls the role's `name`.
pub const ROLE_FLAGS: &[(&str, &str)] = &[("name", "--role")];

/// The command-line flag for an API field.
pub fn flag(field: &str) -> String {
    FLAGS.iter().find(|(f, _)| *f == field).map_or_else(
        || format!("--{}", field.replace('_', "-")),
        |(_, fl)| (*fl).to_owned(),
    )
}

/// A message in the API's words (`` `redirect_uris` ``) in the command line's
/// (`--redirect-uri`).
fn cli_words(message: &str) -> String {
    latchkey_server::provision::Field::ALL
        .iter()
        .fold(message.to_owned(), |m, f| {
            m.replace(&format!("`{}`", f.api_name()), f.cli_flag())
        })
}

/// A refused operation as a message that says what to fix, naming the flag rather than the
/// API's field. Nothing was changed: operations check everything before they write.
pub fn refused(e: AdminError) -> anyhow::Error {
    refused_as(&[])(e)
}

/// `refused` for a command whose flags name some fields differently (`latchkey role feature
/// --role` carries what the API calls the role's `name`).
pub fn refused_as(
    renames: &'static [(&'static str, &'static str)],
) -> impl Fn(AdminError) -> anyhow::Error {
    move |e| match e {
        AdminError::Invalid { field, message } => {
            let message = cli_words(&message);
            let flag = renames
                .iter()
                .find(|(f, _)| *f == field)
                .map_or_else(|| flag(&field), |(_, fl)| (*fl).to_owned());
            // Some messages (client registration) already lead with the flag.
            if message.starts_with(&flag) {
                anyhow::anyhow!("{message}")
            } else {
                anyhow::anyhow!("{flag}: {message}")
            }
        }
        AdminError::Internal(m) => anyhow::anyhow!("internal error: {m}"),
        e @ AdminError::DpopRefused(_) => anyhow::anyhow!("{e}"),
        AdminError::InsufficientAuthentication { message: m, .. }
        | AdminError::Unauthenticated(m)
        | AdminError::Forbidden(m)
        | AdminError::NotFound(m)
        | AdminError::Conflict(m) => anyhow::anyhow!("{m}"),
    }
}

/// Refuses a command that queues e-mail while no key-encryption key exists yet: the message
/// would be sealed under a stand-in key that no server can open.
pub fn require_real_kek(config: &Config) -> anyhow::Result<()> {
    if config.kek.is_some() || config.kek_file.is_some() || config.data_dir.join("kek").exists() {
        return Ok(());
    }
    anyhow::bail!(
        "no key-encryption key yet: start `latchkey serve` once (it creates {}), or set kek_file, then retry",
        config.data_dir.join("kek").display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_flag_not_the_api_field() {
        let e = refused(AdminError::invalid("redirect_uris", "give at least one"));
        assert_eq!(e.to_string(), "--redirect-uri: give at least one");
        let e = refused(AdminError::invalid("grace_days", "give 0 to 365 days"));
        assert_eq!(e.to_string(), "--grace-days: give 0 to 365 days");
        let e = refused(AdminError::invalid(
            "admin_of",
            "--admin-of needs the client_credentials grant",
        ));
        assert_eq!(
            e.to_string(),
            "--admin-of needs the client_credentials grant"
        );
        assert_eq!(flag("access_token_ttl"), "--access-token-ttl");
        let e = refused_as(&[("name", "--role")])(AdminError::invalid("name", "bad"));
        assert_eq!(e.to_string(), "--role: bad");
    }
}
