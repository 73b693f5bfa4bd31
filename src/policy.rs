//! `latchkey policy …` and `latchkey user role …`: MFA policy per lab, per role and per
//! client, applied at each user's next sign-in or token request.

use crate::operator::{Operator, ROLE_FLAGS, refused, refused_as};
use crate::{Output, print};
use clap::Subcommand;
use latchkey_core::Acr;
use latchkey_core::names::ClientId;
use latchkey_server::Config;
use latchkey_server::admin::{AdminError, ops};

/// A minimum level, or `none` to remove one.
#[derive(Clone, Copy, Debug)]
pub struct MinAcr(pub Option<Acr>);

impl std::str::FromStr for MinAcr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(MinAcr(None));
        }
        s.parse()
            .map(|a| MinAcr(Some(a)))
            .map_err(|_| format!("`{s}` is not a level; use pwd, mfa, phr or none"))
    }
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Show a lab's MFA policy and its roles' minimums.
    Show {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        #[command(flatten)]
        out: Output,
    },
    /// Set the minimum authentication level for a lab's members, one of its roles, or a client.
    ///
    /// Examples:
    ///   latchkey policy set --lab biology --min-acr mfa --grace-days 14
    ///   latchkey policy set --lab biology --role admin --min-acr phr
    ///   latchkey policy set --client lk_abc --min-acr mfa
    #[command(verbatim_doc_comment)]
    Set {
        /// Lab id or name (with --role: the role's lab).
        #[arg(long, required_unless_present = "client")]
        lab: Option<String>,
        /// A role of --lab (created if the lab has none of that name, as the admin API's
        /// `PUT …/roles/{role}` does).
        #[arg(long, requires = "lab")]
        role: Option<String>,
        /// A client id.
        #[arg(long, conflicts_with_all = ["lab", "role"])]
        client: Option<String>,
        /// pwd, mfa (two factors), phr (phishing-resistant: a passkey), or none to remove.
        #[arg(long)]
        min_acr: MinAcr,
        /// Lab policy only: days a member without a suitable factor may still sign in (and
        /// defer enrolment), counted from their first such sign-in.
        #[arg(long, conflicts_with_all = ["role", "client"])]
        grace_days: Option<u32>,
        /// Lab policy only: sign-ins a member may defer enrolment for.
        #[arg(long, conflicts_with_all = ["role", "client"])]
        grace_logins: Option<u32>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(clap::Args)]
pub struct RemoveMember {
    /// Lab id or name.
    #[arg(long)]
    lab: String,
    /// The user's email address.
    #[arg(long)]
    email: String,
    #[command(flatten)]
    out: Output,
}

#[derive(clap::Args)]
pub struct AddMember {
    /// Lab id or name.
    #[arg(long)]
    lab: String,
    /// The user's email address.
    #[arg(long)]
    email: String,
    #[command(flatten)]
    out: Output,
}

/// `latchkey user add`: makes an existing user a member of one more lab. A user in several
/// labs picks one at sign-in (or the client names it with the `lab` parameter). Adding a
/// member again changes nothing and succeeds.
pub async fn add_member(config: &Config, m: AddMember) -> anyhow::Result<()> {
    let op = Operator::open(config).await?;
    let id = op.lab_id(&m.lab).await?;
    let user = op.user(&m.email).await?;
    if !op.is_member(&id, &user.id).await? {
        ops::add_member(
            &op.state,
            &op.admin,
            &id,
            ops::NewMember {
                email: user.email.clone(),
                name: None,
                password: None,
                roles: vec![],
            },
        )
        .await
        .map_err(refused)?;
    }
    print(
        &m.out,
        &serde_json::json!({"user": user.id, "lab": id, "added": true}),
        &format!("{} is a member of lab {id}", user.email),
    )
}

/// `latchkey user remove`: takes a member out of a lab; their tokens for it stop refreshing
/// and their sessions end.
pub async fn remove_member(config: &Config, m: RemoveMember) -> anyhow::Result<()> {
    let op = Operator::open(config).await?;
    let id = op.lab_id(&m.lab).await?;
    let user = op.user(&m.email).await?;
    if !op.is_member(&id, &user.id).await? {
        anyhow::bail!("{} is not a member of lab `{}`", user.email, m.lab);
    }
    ops::remove_member(&op.state, &op.admin, &id, &user.id)
        .await
        .map_err(refused)?;
    print(
        &m.out,
        &serde_json::json!({"user": user.id, "lab": id, "removed": true}),
        &format!(
            "{} removed from lab {id}; their refresh tokens for it are revoked and their sessions ended",
            user.email
        ),
    )
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Give a lab member one of that lab's roles (define roles first with `latchkey role
    /// feature add` or `latchkey policy set --role`).
    Add {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// The role's name.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        out: Output,
    },
}

fn level(a: Option<Acr>) -> &'static str {
    a.map_or("none", Acr::as_str)
}

pub async fn policy_command(config: &Config, cmd: PolicyCommand) -> anyhow::Result<()> {
    let op = Operator::open(config).await?;
    let store = &op.state.store;
    match cmd {
        PolicyCommand::Show { lab, out } => {
            let id = op.lab_id(&lab).await?;
            let policy = store.lab_policy(&id).await?;
            let roles = store.role_policies(&id).await?;
            let mut text = match &policy {
                Some(p) => format!(
                    "lab {id}: members need {}{}{}",
                    p.min_acr,
                    p.grace_days
                        .map_or(String::new(), |d| format!(", grace {d} day(s)")),
                    p.grace_logins
                        .map_or(String::new(), |l| format!(", grace {l} sign-in(s)")),
                ),
                None => format!("lab {id}: no minimum (pwd)"),
            };
            for r in &roles {
                let min = r
                    .min_acr
                    .map_or("no minimum".to_owned(), |a| format!("needs {a}"));
                text.push_str(&format!("\nrole {}: {min}", r.role));
            }
            print(
                &out,
                &serde_json::json!({"lab": id, "policy": policy, "roles": roles}),
                &text,
            )
        }
        PolicyCommand::Set {
            lab,
            role,
            client,
            min_acr: MinAcr(min),
            grace_days,
            grace_logins,
            out,
        } => {
            if let Some(client) = client {
                let client = ClientId::new(client);
                let after =
                    ops::set_client_min_acr(&op.state, &op.admin, &client, min.map(Acr::as_str))
                        .await
                        .map_err(refused)?;
                return print(
                    &out,
                    &serde_json::json!({"client": after.client_id, "min_acr": after.min_acr}),
                    &format!(
                        "client {client} now needs {} (within a few seconds on every node)",
                        level(min)
                    ),
                );
            }
            let lab = lab.ok_or_else(|| anyhow::anyhow!("--lab or --client is required"))?;
            let id = op.lab_id(&lab).await?;
            if let Some(role) = role {
                let role = ops::role_name("name", &role).map_err(refused_as(ROLE_FLAGS))?;
                let after =
                    ops::set_role_min_acr(&op.state, &op.admin, &id, &role, min.map(Acr::as_str))
                        .await
                        .map_err(refused_as(ROLE_FLAGS))?;
                return print(
                    &out,
                    &serde_json::json!({"lab": id, "role": after.name, "min_acr": after.min_acr}),
                    &format!("role {role} of lab {id} now needs {}", level(min)),
                );
            }
            let after = ops::put_policy(
                &op.state,
                &op.admin,
                &id,
                ops::PolicyView {
                    min_acr: min.map(|a| a.as_str().to_owned()),
                    grace_days: grace_days.map(i64::from),
                    grace_logins: grace_logins.map(i64::from),
                },
            )
            .await
            .map_err(refused)?;
            print(
                &out,
                &serde_json::json!({"lab": id, "min_acr": after.min_acr, "grace_days": after.grace_days, "grace_logins": after.grace_logins}),
                &match min {
                    Some(a) => format!("members of lab {id} now need {a} at their next sign-in"),
                    None => format!("lab {id} no longer has a minimum level"),
                },
            )
        }
    }
}

pub async fn role_command(config: &Config, cmd: RoleCommand) -> anyhow::Result<()> {
    match cmd {
        RoleCommand::Add {
            lab,
            email,
            role,
            out,
        } => {
            let op = Operator::open(config).await?;
            let id = op.lab_id(&lab).await?;
            let user = op.user(&email).await?;
            let member = match ops::get_member(&op.state, &op.admin, &id, &user.id).await {
                Ok(m) => m,
                Err(AdminError::NotFound(_)) => {
                    anyhow::bail!("{} is not a member of lab `{lab}`", user.email)
                }
                Err(e) => return Err(refused(e)),
            };
            let mut roles = member.roles;
            if !roles.contains(&role) {
                roles.push(role.clone());
            }
            ops::set_member_roles(&op.state, &op.admin, &id, &user.id, roles)
                .await
                .map_err(refused)?;
            print(
                &out,
                &serde_json::json!({"user": user.id, "lab": id, "role": role}),
                &format!("{} now has role {role} in lab {id}", user.email),
            )
        }
    }
}
