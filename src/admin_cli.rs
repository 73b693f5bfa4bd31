//! `latchkey admin grant|revoke|list`: who administers what. The first system administrator
//! is made here; after that the admin API and console can do the rest.

use crate::{Output, print};
use clap::Subcommand;
use latchkey_server::Config;
use latchkey_server::audit::{Action, Event};
use latchkey_server::store::Store;

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
    let store = Store::open(config).await?;
    let user = store
        .find_user_by_email(&t.email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email `{}`", t.email))?;
    let (scope, lab_id) = match &t.lab {
        None => {
            store.set_system_admin(&user.id, on, &[]).await?;
            ("system".to_owned(), None)
        }
        Some(lab) => {
            let lab = store.find_lab(lab).await?.ok_or_else(|| {
                anyhow::anyhow!("no lab `{lab}`; `latchkey lab create --name …` makes one")
            })?;
            store
                .set_lab_admin(&user.id, &lab.id, on, &[])
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{e}; add them first with `latchkey user create` or the console"
                    )
                })?;
            (format!("lab {}", lab.name), Some(lab.id))
        }
    };
    let action = if t.system {
        Action::UserSystemAdmin
    } else {
        Action::MemberAdmin
    };
    store
        .audit(Event::new(
            "cli",
            action,
            &user.id,
            serde_json::json!({"lab": lab_id, "after": on}),
        ))
        .await?;
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
