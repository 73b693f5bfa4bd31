//! `latchkey user export` and `latchkey user erase`: one person's data, as JSON, or erased
//! (see docs/personal-data.md). Both go through `Store::export_user` / `Store::erase_user`,
//! the same functions the admin API uses.

use crate::{Output, print};
use clap::Args;
use latchkey_server::Config;
use latchkey_server::store::Store;

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
    let store = Store::open(config).await?;
    let user = store
        .find_user_by_email(&a.email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email `{}`", a.email))?;
    let data = store
        .export_user(&user.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email `{}`", a.email))?;
    println!("{}", serde_json::to_string_pretty(&data)?);
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
    let store = Store::open(config).await?;
    let user = store
        .find_user_by_email(&a.email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email `{}`", a.email))?;
    let erased = store.erase_user(&user.id, "cli").await?;
    if !erased {
        anyhow::bail!("no user with email `{}`", a.email);
    }
    print(
        &a.out,
        &serde_json::json!({"id": user.id, "erased": true}),
        &format!(
            "erased {}: personal data removed; the audit log keeps only the opaque id {}",
            a.email, user.id
        ),
    )
}
