//! `latchkey role feature …` and `latchkey user feature …`: which features a role gives, and
//! per-member allows and denies. Changes apply to each user's next token.

use crate::{Output, print};
use clap::Subcommand;
use latchkey_server::Config;
use latchkey_server::audit::{Action, Event};
use latchkey_server::protocol::grants::valid_feature;
use latchkey_server::store::Store;

#[derive(Subcommand)]
pub enum RoleFeatureCommand {
    /// Give every holder of a role a feature (the role is created if the lab has none of that name).
    Add {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        /// The role's name.
        #[arg(long)]
        role: String,
        /// The feature, e.g. `invoices:approve` (a-z 0-9 : . _ -, at most 64).
        feature: String,
        #[command(flatten)]
        out: Output,
    },
    /// Take a feature away from a role.
    Remove {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        /// The role's name.
        #[arg(long)]
        role: String,
        /// The feature.
        feature: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
pub enum MemberFeatureCommand {
    /// Allow one feature to one member, whatever their roles.
    Allow(MemberFeature),
    /// Deny one feature to one member, even if a role gives it.
    Deny(MemberFeature),
    /// Remove an allow or deny: the member's roles decide again.
    Clear(MemberFeature),
}

#[derive(clap::Args)]
pub struct MemberFeature {
    /// Lab id or name.
    #[arg(long)]
    lab: String,
    /// The user's email address.
    #[arg(long)]
    email: String,
    /// The feature, e.g. `invoices:approve`.
    feature: String,
    #[command(flatten)]
    out: Output,
}

fn check(feature: &str) -> anyhow::Result<()> {
    if !valid_feature(feature) {
        anyhow::bail!(
            "`{feature}` is not a feature name: use 1 to 64 of a-z 0-9 : . _ - (for example invoices:approve)"
        );
    }
    Ok(())
}

async fn lab_id(store: &Store, lab: &str) -> anyhow::Result<String> {
    Ok(store
        .find_lab(lab)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no lab `{lab}`"))?
        .id)
}

pub async fn role_feature(config: &Config, cmd: RoleFeatureCommand) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let (lab, role, feature, out, add) = match cmd {
        RoleFeatureCommand::Add {
            lab,
            role,
            feature,
            out,
        } => (lab, role, feature, out, true),
        RoleFeatureCommand::Remove {
            lab,
            role,
            feature,
            out,
        } => (lab, role, feature, out, false),
    };
    check(&feature)?;
    if role.trim().is_empty() {
        anyhow::bail!("--role must not be empty");
    }
    let id = lab_id(&store, &lab).await?;
    store.set_role_feature(&id, &role, &feature, add).await?;
    store
        .audit(Event::new(
            "cli",
            Action::RolePut,
            &id,
            serde_json::json!({"role": role, "feature": feature, "added": add}),
        ))
        .await?;
    print(
        &out,
        &serde_json::json!({"lab": id, "role": role, "feature": feature, "granted": add}),
        &format!(
            "role {role} of lab {id} {} {feature} (from each holder's next token)",
            if add { "now gives" } else { "no longer gives" }
        ),
    )
}

pub async fn member_feature(config: &Config, cmd: MemberFeatureCommand) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let (m, allow, verb) = match cmd {
        MemberFeatureCommand::Allow(m) => (m, Some(true), "allowed"),
        MemberFeatureCommand::Deny(m) => (m, Some(false), "denied"),
        MemberFeatureCommand::Clear(m) => (m, None, "left to their roles"),
    };
    check(&m.feature)?;
    let id = lab_id(&store, &m.lab).await?;
    let user = store
        .find_user_by_email(&m.email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email `{}`", m.email))?;
    store
        .set_member_feature(&user.id, &id, &m.feature, allow, &[])
        .await?;
    store
        .audit(Event::new(
            "cli",
            Action::MemberFeature,
            &user.id,
            serde_json::json!({"lab": id, "feature": m.feature, "allow": allow}),
        ))
        .await?;
    print(
        &m.out,
        &serde_json::json!({"user": user.id, "lab": id, "feature": m.feature, "allow": allow}),
        &format!("{} in lab {id}: {} {verb}", user.email, m.feature),
    )
}
