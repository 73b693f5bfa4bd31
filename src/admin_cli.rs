//! `latchkey admin bootstrap|grant|revoke`: who administers what. The first system
//! administrator is made here (`bootstrap`, no lab needed); after that the admin API and
//! console can do the rest.

use crate::operator::{Operator, refused};
use crate::{Output, print};
use clap::Subcommand;
use latchkey_core::names::LabId;
use latchkey_server::Config;
use latchkey_server::admin::ops;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create the first system administrator: a new account in no lab, its password read
    /// from standard input. Refused when a system administrator exists, unless --force. At
    /// their first console sign-in they set up the second factor administration needs
    /// (`admin.min_acr`).
    Bootstrap(Bootstrap),
    /// Make a user a system administrator (`--system`) or an administrator of one lab (`--lab`).
    Grant(Target),
    /// Take that right away again.
    Revoke(Target),
}

#[derive(clap::Args)]
pub struct Bootstrap {
    /// The new administrator's email address, used to sign in.
    #[arg(long)]
    email: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Read the password from standard input (one line). Required: passwords never go on the
    /// command line.
    #[arg(long, required = true)]
    password_stdin: bool,
    /// Create one even though a system administrator already exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    out: Output,
}

/// `latchkey admin bootstrap`.
async fn bootstrap(config: &Config, b: Bootstrap) -> anyhow::Result<()> {
    let password = crate::password_from_stdin()?;
    let op = Operator::open(config).await?;
    let user = ops::bootstrap_system_admin(
        &op.state,
        &op.admin,
        ops::NewSystemAdmin {
            email: b.email,
            name: b.name,
            password,
            force: b.force,
        },
    )
    .await
    .map_err(refused)?;
    print(
        &b.out,
        &serde_json::json!({"id": user.id, "email": user.email, "name": user.name, "system_admin": true}),
        &format!(
            "created system administrator {} ({})\nsign in at {}/admin: the console asks for a second factor (admin.min_acr = {}) and leads you to set one up",
            user.email, user.id, op.state.issuer, op.state.config.admin.min_acr
        ),
    )
}

#[derive(clap::Args)]
pub struct Target {
    /// The user's email address.
    #[arg(long)]
    email: String,
    /// System administrator: every lab, user, client and key.
    #[arg(long, conflicts_with = "lab", required_unless_present = "lab")]
    system: bool,
    /// Lab id or name: administrator of that lab only (the user must be a member).
    #[arg(long)]
    lab: Option<String>,
    #[command(flatten)]
    out: Output,
}

pub async fn admin_command(config: &Config, cmd: AdminCommand) -> anyhow::Result<()> {
    let (t, on) = match cmd {
        AdminCommand::Bootstrap(b) => return bootstrap(config, b).await,
        AdminCommand::Grant(t) => (t, true),
        AdminCommand::Revoke(t) => (t, false),
    };
    let op = Operator::open(config).await?;
    let user = op.user(&t.email).await?;
    let (scope, lab_id) = match &t.lab {
        None => {
            ops::set_system_admin(&op.state, &op.admin, &user.id, on)
                .await
                .map_err(refused)?;
            ("system".to_owned(), None)
        }
        Some(lab) => {
            let lab = op.lab(lab).await?;
            let id = LabId::new(lab.id);
            if !op.is_member(&id, &user.id).await? {
                anyhow::bail!(
                    "{} is not a member of lab `{}`; add them first with `latchkey user add` or the console",
                    user.email,
                    lab.name
                );
            }
            ops::set_member_admin(&op.state, &op.admin, &id, &user.id, on)
                .await
                .map_err(refused)?;
            (format!("lab {}", lab.name), Some(id))
        }
    };
    print(
        &t.out,
        &serde_json::json!({"user": user.id, "email": user.email, "system": t.system, "lab": lab_id, "admin": on}),
        &if on {
            format!("{} now administers {scope}", user.email)
        } else {
            format!("{} no longer administers {scope}", user.email)
        },
    )
}
