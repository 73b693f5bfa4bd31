//! `latchkey audit verify` and `latchkey audit export`: check the audit log's hash chain and
//! write it out as JSON Lines.

use crate::{Output, print};
use clap::Subcommand;
use latchkey_server::Config;
use latchkey_server::audit_chain;
use latchkey_server::store::Store;
use std::io::Write;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exits with status 1 and names the first bad entry when an entry
    /// was altered, deleted, reordered or inserted behind Latchkey's back.
    Verify {
        #[command(flatten)]
        out: Output,
    },
    /// Write every entry (or those from --since on) to standard output as JSON Lines, with
    /// the chain fields, for archiving or a SIEM.
    Export {
        /// Only entries at or after this Unix time.
        #[arg(long)]
        since: Option<i64>,
    },
}

#[derive(serde::Serialize)]
struct Report {
    intact: bool,
    entries: usize,
    last_hash: Option<String>,
    first_break: Option<audit_chain::Break>,
    unchained_rows: i64,
}

pub async fn audit_command(config: &Config, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let (chain, unchained) = store.audit_chain().await?;
    match cmd {
        AuditCommand::Verify { out } => {
            let first_break = audit_chain::verify(&chain);
            let report = Report {
                intact: first_break.is_none() && unchained == 0,
                entries: chain.len(),
                last_hash: chain.last().and_then(|s| s.hash.as_ref()).map(hex::encode),
                first_break,
                unchained_rows: unchained,
            };
            let text = match (&report.first_break, unchained) {
                (None, 0) => format!(
                    "audit log intact: {} entries, last hash {}",
                    report.entries,
                    report.last_hash.as_deref().unwrap_or("-")
                ),
                (Some(b), _) => format!("audit log broken at entry {}: {}", b.seq, b.reason),
                (None, n) => format!(
                    "audit log chain intact ({} entries), but {n} row(s) are outside the chain (inserted behind Latchkey's back)",
                    report.entries
                ),
            };
            print(&out, &report, &text)?;
            if !report.intact {
                std::process::exit(1);
            }
            Ok(())
        }
        AuditCommand::Export { since } => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            for s in chain
                .iter()
                .filter(|s| since.is_none_or(|t| s.entry.at >= t))
            {
                let details: serde_json::Value = serde_json::from_str(&s.entry.details)
                    .unwrap_or_else(|_| serde_json::Value::String(s.entry.details.clone()));
                let line = serde_json::json!({
                    "seq": s.entry.seq,
                    "at": s.entry.at,
                    "actor": s.entry.actor,
                    "action": s.entry.action,
                    "target": s.entry.target,
                    "details": details,
                    "prev_hash": s.prev_hash.as_ref().map(hex::encode),
                    "hash": s.hash.as_ref().map(hex::encode),
                });
                writeln!(w, "{line}")?;
            }
            w.flush()?;
            Ok(())
        }
    }
}
