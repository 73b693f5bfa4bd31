//! `latchkey user export` and `latchkey user erase`: one person's data, as JSON, or erased
//! (see docs/personal-data.md). Both are the admin API's operations (`ops::export_user`,
//! `ops::erase_user`), so an export is audited as `user.exported` here too.

use crate::operator::{Operator, refused};
use crate::{Output, print};
use clap::Args;
use latchkey_server::Config;
use latchkey_server::admin::ops;

#[derive(Args)]
pub struct ExportUser {
    /// The user's email address.
    #[arg(long)]
    email: String,
}

#[derive(Args)]
pub struct EraseUser {
    /// The user's email address.
    #[arg(long)]
    email: String,
    /// Confirm: erasure cannot be undone.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    out: Output,
}

/// Prints everything Latchkey holds about the user as JSON.
pub async fn export(config: &Config, a: ExportUser) -> anyhow::Result<()> {
    let op = Operator::open(config).await?;
    let user = op.user(&a.email).await?;
    let data = ops::export_user(&op.state, &op.admin, &user.id)
        .await
        .map_err(refused)?;
    crate::stdout_line(&serde_json::to_string_pretty(&data)?)?;
    Ok(())
}

/// Erases the user's personal data (refused without `--yes`).
pub async fn erase(config: &Config, a: EraseUser) -> anyhow::Result<()> {
    if !a.yes {
        anyhow::bail!(
            "erasing {} deletes their factors, sessions, grants, memberships and roles and removes their email and name for good; nothing was changed. Add --yes to erase (consider `latchkey user export --email {}` first)",
            a.email,
            a.email
        );
    }
    let op = Operator::open(config).await?;
    let user = op.user(&a.email).await?;
    ops::erase_user(&op.state, &op.admin, &user.id)
        .await
        .map_err(refused)?;
    print(
        &a.out,
        &serde_json::json!({"id": user.id, "erased": true}),
        &format!(
            "erased {}: personal data removed; the audit log keeps only the opaque id {}",
            a.email, user.id
        ),
    )
}
