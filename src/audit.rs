//! `latchkey audit verify`, `latchkey audit export` and `latchkey audit prune`: check the audit
//! log's hash chain (from its latest signed checkpoint), write it out as JSON Lines, and prune
//! old entries behind a checkpoint signed under the KEK.

use crate::{Output, print};
use clap::Subcommand;
use latchkey_server::Config;
use latchkey_server::audit::chain;
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
    /// Delete the entries written before a date, oldest first (never the newest entry), and
    /// leave a checkpoint signed under the key-encryption key so `verify` still proves the
    /// rest of the chain intact. Export first if you must archive them.
    Prune {
        /// RFC 3339 time (`2026-01-31T00:00:00Z`), a date (`2026-01-31`, midnight UTC) or Unix
        /// seconds.
        #[arg(long, value_parser = parse_time)]
        before: i64,
        #[command(flatten)]
        out: Output,
    },
}

/// Parses Unix seconds, an RFC 3339 date-time (fractions ignored) or a plain date (UTC).
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let bad = || {
        format!(
            "`{s}` is not Unix seconds, a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z)"
        )
    };
    let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
    let (date, rest) = s.split_at(s.find(['T', 't', ' ']).unwrap_or(s.len()));
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, dd] = d.as_slice() else {
        return Err(bad());
    };
    let (y, m, dd) = (num(y)?, num(m)?, num(dd)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&dd) {
        return Err(bad());
    }
    let days = days_from_civil(y, m, dd);
    if rest.is_empty() {
        return Ok(days * 86_400);
    }
    let rest = &rest[1..];
    // Split off the offset: `Z`, `+hh:mm` or `-hh:mm`.
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, o) = rest.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':').ok_or_else(bad)?;
        (c, sign * (num(oh)? * 3600 + num(om)? * 60))
    } else {
        return Err(bad());
    };
    let clock = clock.split('.').next().unwrap_or(clock);
    let t: Vec<&str> = clock.split(':').collect();
    let [h, mi, sec] = t.as_slice() else {
        return Err(bad());
    };
    let (h, mi, sec) = (num(h)?, num(mi)?, num(sec)?);
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    Ok(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The KEK the configuration names, without creating one: a command that only reads must not
/// leave a new key behind (which would then fail every checkpoint).
pub(crate) fn existing_kek(
    config: &Config,
) -> anyhow::Result<Option<latchkey_server::crypto::Kek>> {
    if config.kek.is_some() || config.kek_file.is_some() || config.data_dir.join("kek").exists() {
        return Ok(Some(latchkey_server::app::load_kek(config)?));
    }
    Ok(None)
}

#[derive(serde::Serialize)]
struct Report {
    intact: bool,
    entries: usize,
    /// The first entry of the remaining chain (1 unless entries were pruned).
    first_seq: Option<i64>,
    /// Signed checkpoints left by pruning; the chain resumes after the latest.
    checkpoints: usize,
    pruned_through: Option<i64>,
    last_hash: Option<String>,
    first_break: Option<chain::Break>,
    unchained_rows: i64,
}

pub async fn audit_command(config: &Config, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    match cmd {
        AuditCommand::Verify { out } => {
            let snap = store.audit_snapshot().await?;
            let (chain, unchained) = (&snap.chain, snap.unchained);
            let first_break = match existing_kek(config)? {
                Some(kek) => chain::verify_with_checkpoints(
                    &snap.checkpoints,
                    chain,
                    &chain::checkpoint_key(&kek),
                ),
                None if snap.checkpoints.is_empty() => chain::verify(chain),
                None => anyhow::bail!(
                    "the audit log was pruned behind {} checkpoint(s) signed under the key-encryption key, and none is configured: set LATCHKEY_KEK or kek_file (or run where <data_dir>/kek is)",
                    snap.checkpoints.len()
                ),
            };
            let pruned_through = snap.checkpoints.last().map(|c| c.seq);
            let report = Report {
                intact: first_break.is_none() && unchained == 0,
                entries: chain.len(),
                first_seq: chain.first().map(|s| s.entry.seq),
                checkpoints: snap.checkpoints.len(),
                pruned_through,
                last_hash: chain.last().and_then(|s| s.hash.as_ref()).map(hex::encode),
                first_break,
                unchained_rows: unchained,
            };
            let pruned = match pruned_through {
                Some(n) => format!(" (entries 1..{n} pruned behind a signed checkpoint)"),
                None => String::new(),
            };
            let text = match (&report.first_break, unchained) {
                (None, 0) => format!(
                    "audit log intact: {} entries{pruned}, last hash {}",
                    report.entries,
                    report.last_hash.as_deref().unwrap_or("-")
                ),
                (Some(b), _) => format!("audit log broken at entry {}: {}", b.seq, b.reason),
                (None, n) => format!(
                    "audit log chain intact ({} entries{pruned}), but {n} row(s) are outside the chain (inserted behind Latchkey's back)",
                    report.entries
                ),
            };
            print(&out, &report, &text)?;
            if !report.intact {
                std::process::exit(1);
            }
            Ok(())
        }
        AuditCommand::Prune { before, out } => {
            let Some(kek) = existing_kek(config)? else {
                anyhow::bail!(
                    "pruning signs a checkpoint under the key-encryption key, and none is configured: set LATCHKEY_KEK or kek_file (or run where <data_dir>/kek is)"
                );
            };
            let cp = store
                .prune_audit(before, chain::checkpoint_key(&kek), "cli")
                .await?;
            match cp {
                Some(cp) => print(
                    &out,
                    &serde_json::json!({"pruned": cp.pruned, "through_seq": cp.seq, "checkpoint": cp}),
                    &format!(
                        "pruned {} entries (up to entry {}); the chain now starts after a checkpoint signed under the key-encryption key",
                        cp.pruned, cp.seq
                    ),
                ),
                None => print(
                    &out,
                    &serde_json::json!({"pruned": 0, "through_seq": null, "checkpoint": null}),
                    &format!("nothing to prune: no entry before {before} except the newest"),
                ),
            }
        }
        AuditCommand::Export { since } => {
            let (chain, _) = store.audit_chain().await?;
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

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn before_accepts_unix_seconds_dates_and_rfc3339() {
        assert_eq!(parse_time("1764288000"), Ok(1_764_288_000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2025-11-28"), Ok(1_764_288_000));
        assert_eq!(parse_time("2025-11-28T00:00:00Z"), Ok(1_764_288_000));
        assert_eq!(
            parse_time("2025-11-28T01:30:00.25+01:30"),
            Ok(1_764_288_000)
        );
        assert_eq!(parse_time("2000-03-01T00:00:00-00:00"), Ok(951_868_800));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2025-13-01").is_err());
        assert!(
            parse_time("2025-11-28T10:00:00").is_err(),
            "an offset is required"
        );
    }
}
