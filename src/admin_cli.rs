//! `latchkey admin grant|revoke|list`: who administers what. The first system administrator
//! is made here; after that the admin API and console can do the rest.

use crate::operator::{Operator, refused};
use crate::{Output, print};
use clap::Subcommand;
use latchkey_core::names::LabId;
use latchkey_server::Config;
use latchkey_server::admin::ops;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Make a user a system administrator (`--system`) or an administrator of one lab (`--lab`).
    Grant(Target),
    /// Take that right away again.
    Revoke(Target),
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
