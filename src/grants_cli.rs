//! `latchkey role feature …` and `latchkey user feature …`: which features a role gives, and
//! per-member allows and denies. Changes apply to each user's next token.

use crate::operator::{Operator, ROLE_FLAGS, refused, refused_as};
use crate::{Output, print};
use clap::Subcommand;
use latchkey_server::Config;
use latchkey_server::admin::ops;

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

pub async fn role_feature(config: &Config, cmd: RoleFeatureCommand) -> anyhow::Result<()> {
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
    let op = Operator::open(config).await?;
    let id = op.lab_id(&lab).await?;
    let (role, feature) = (
        ops::role_name("name", &role).map_err(refused_as(ROLE_FLAGS))?,
        ops::feature_name("features", &feature).map_err(refused)?,
    );
    ops::set_role_feature(&op.state, &op.admin, &id, &role, &feature, add)
        .await
        .map_err(refused_as(ROLE_FLAGS))?;
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
    let (m, allow, verb) = match cmd {
        MemberFeatureCommand::Allow(m) => (m, Some(true), "allowed"),
        MemberFeatureCommand::Deny(m) => (m, Some(false), "denied"),
        MemberFeatureCommand::Clear(m) => (m, None, "left to their roles"),
    };
    let op = Operator::open(config).await?;
    let id = op.lab_id(&m.lab).await?;
    let user = op.user(&m.email).await?;
    let feature = ops::feature_name("feature", &m.feature).map_err(refused)?;
    ops::set_member_feature(&op.state, &op.admin, &id, &user.id, &feature, allow)
        .await
        .map_err(refused)?;
    print(
        &m.out,
        &serde_json::json!({"user": user.id, "lab": id, "feature": m.feature, "allow": allow}),
        &format!("{} in lab {id}: {} {verb}", user.email, m.feature),
    )
}
