//! `latchkey policy …` and `latchkey user role …`: MFA policy per lab, per role and per
//! client, applied at each user's next sign-in or token request.

use crate::{Output, print};
use clap::Subcommand;
use latchkey_core::Acr;
use latchkey_server::Config;
use latchkey_server::audit::{Action, Event};
use latchkey_server::store::Store;

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
        /// A role of --lab (created if the lab has none of that name).
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
/// labs picks one at sign-in (or the client names it with the `lab` parameter).
pub async fn add_member(config: &Config, m: AddMember) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let id = lab_id(&store, &m.lab).await?;
    let user = store
        .find_user_by_email(&m.email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email `{}`", m.email))?;
    if !store.add_membership(&user.id, &id, &[]).await? {
        anyhow::bail!("{} could not be added to lab `{}`", user.email, m.lab);
    }
    store
        .audit(Event::new(
            "cli",
            Action::MemberAdd,
            &user.id,
            serde_json::json!({"lab": id}),
        ))
        .await?;
    print(
        &m.out,
        &serde_json::json!({"user": user.id, "lab": id, "added": true}),
        &format!("{} is a member of lab {id}", user.email),
    )
}

/// `latchkey user remove`: takes a member out of a lab; their tokens for it stop refreshing
/// and their sessions end.
pub async fn remove_member(config: &Config, m: RemoveMember) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let id = lab_id(&store, &m.lab).await?;
    let user = store
        .find_user_by_email(&m.email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email `{}`", m.email))?;
    if !store.remove_membership(&user.id, &id, &[]).await? {
        anyhow::bail!("{} is not a member of lab `{}`", user.email, m.lab);
    }
    store
        .audit(Event::new(
            "cli",
            Action::MemberRemove,
            &user.id,
            serde_json::json!({"lab": id}),
        ))
        .await?;
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
    /// Give a lab member a role of that lab (created if missing).
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

async fn lab_id(store: &Store, lab: &str) -> anyhow::Result<String> {
    Ok(store
        .find_lab(lab)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("no lab `{lab}` (create it with `latchkey lab create --name …`)")
        })?
        .id)
}

fn level(a: Option<Acr>) -> &'static str {
    a.map_or("none", Acr::as_str)
}

pub async fn policy_command(config: &Config, cmd: PolicyCommand) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    match cmd {
        PolicyCommand::Show { lab, out } => {
            let id = lab_id(&store, &lab).await?;
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
            let grace_days = grace_days.map(i64::from);
            let grace_logins = grace_logins.map(i64::from);
            if let Some(client) = client {
                if !store.set_client_min_acr(&client, min).await? {
                    anyhow::bail!("no client `{client}`");
                }
                store
                    .audit(Event::new(
                        "cli",
                        Action::PolicyClient,
                        &client,
                        serde_json::json!({"min_acr": level(min)}),
                    ))
                    .await?;
                return print(
                    &out,
                    &serde_json::json!({"client": client, "min_acr": min}),
                    &format!(
                        "client {client} now needs {} (within a few seconds on every node)",
                        level(min)
                    ),
                );
            }
            let lab = lab.ok_or_else(|| anyhow::anyhow!("--lab or --client is required"))?;
            let id = lab_id(&store, &lab).await?;
            if let Some(role) = role {
                if role.trim().is_empty() {
                    anyhow::bail!("--role must not be empty");
                }
                store.set_role_policy(&id, &role, min).await?;
                store
                    .audit(Event::new(
                        "cli",
                        Action::PolicyRole,
                        &id,
                        serde_json::json!({"role": role, "min_acr": level(min)}),
                    ))
                    .await?;
                return print(
                    &out,
                    &serde_json::json!({"lab": id, "role": role, "min_acr": min}),
                    &format!("role {role} of lab {id} now needs {}", level(min)),
                );
            }
            if min.is_none() && (grace_days.is_some() || grace_logins.is_some()) {
                anyhow::bail!("a grace period needs a minimum level (--min-acr mfa or phr)");
            }
            store
                .set_lab_policy(&id, min, grace_days, grace_logins, &[])
                .await?;
            store
                .audit(Event::new(
                    "cli",
                    Action::PolicyLab,
                    &id,
                    serde_json::json!({"min_acr": level(min), "grace_days": grace_days, "grace_logins": grace_logins})))
                .await?;
            print(
                &out,
                &serde_json::json!({"lab": id, "min_acr": min, "grace_days": grace_days, "grace_logins": grace_logins}),
                &match min {
                    Some(a) => format!("members of lab {id} now need {a} at their next sign-in"),
                    None => format!("lab {id} no longer has a minimum level"),
                },
            )
        }
    }
}

pub async fn role_command(config: &Config, cmd: RoleCommand) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    match cmd {
        RoleCommand::Add {
            lab,
            email,
            role,
            out,
        } => {
            let id = lab_id(&store, &lab).await?;
            let user = store
                .find_user_by_email(&email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user with email `{email}`"))?;
            if role.trim().is_empty() {
                anyhow::bail!("--role must not be empty");
            }
            store.assign_role(&user.id, &id, &role).await?;
            store
                .audit(Event::new(
                    "cli",
                    Action::MemberRoles,
                    &user.id,
                    serde_json::json!({"lab": id, "role": role}),
                ))
                .await?;
            print(
                &out,
                &serde_json::json!({"user": user.id, "lab": id, "role": role}),
                &format!("{} now has role {role} in lab {id}", user.email),
            )
        }
    }
}
