//! `latchkey invitation list|create|link`: invitations at system level. A lab administrator's
//! invitation is recorded without a link they could use (see `docs/administration.md`); the
//! operator issues its link here and sends it to the invited address, and nowhere else.

use crate::operator::{Operator, refused};
use crate::{Output, print};
use clap::Subcommand;
use latchkey_server::Config;
use latchkey_server::admin::ops;

#[derive(Subcommand)]
pub enum InvitationCommand {
    /// List a lab's open invitations (who invited whom, until when).
    List {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        #[command(flatten)]
        out: Output,
    },
    /// Invite an e-mail address into a lab and print the link to send to that address.
    Create {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        /// The address to invite.
        #[arg(long)]
        email: String,
        /// A role in the lab to give the person; repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Days the link stays valid (1 to 30).
        #[arg(long, default_value_t = 7)]
        valid_days: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Issue the link of an open invitation (for instance one a lab administrator made), to
    /// send to the invited address. A link issued before stops working.
    Link {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        /// The invitation's id (`latchkey invitation list --lab …` shows it).
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
}

pub async fn invitation_command(config: &Config, cmd: InvitationCommand) -> anyhow::Result<()> {
    let op = Operator::open(config).await?;
    match cmd {
        InvitationCommand::List { lab, out } => {
            let lab = op.lab_id(&lab).await?;
            let list = ops::list_invitations(&op.state, &op.admin, &lab)
                .await
                .map_err(refused)?;
            let text = if list.is_empty() {
                "no open invitations".to_owned()
            } else {
                list.iter()
                    .map(|i| {
                        format!(
                            "{}  {}  roles: {}  by {}  until {}",
                            i.id,
                            i.email,
                            if i.roles.is_empty() {
                                "-".to_owned()
                            } else {
                                i.roles.join(",")
                            },
                            i.created_by,
                            i.expires_at
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            print(&out, &list, &text)
        }
        InvitationCommand::Create {
            lab,
            email,
            roles,
            valid_days,
            out,
        } => {
            let lab = op.lab_id(&lab).await?;
            let inv = ops::create_invitation(
                &op.state,
                &op.admin,
                &lab,
                ops::NewInvitation {
                    email,
                    roles,
                    valid_days: Some(valid_days),
                },
            )
            .await
            .map_err(refused)?;
            let text = sent_text(&inv);
            print(&out, &inv, &text)
        }
        InvitationCommand::Link { lab, id, out } => {
            let lab = op.lab_id(&lab).await?;
            let inv = ops::issue_invitation_link(&op.state, &op.admin, &lab, &id)
                .await
                .map_err(refused)?;
            let text = sent_text(&inv);
            print(&out, &inv, &text)
        }
    }
}

fn sent_text(inv: &ops::InvitationView) -> String {
    format!(
        "Send this link to {} (and to nobody else); it works once:\n{}",
        inv.email,
        inv.link.as_deref().unwrap_or("")
    )
}
