//! Scheduled backups in `serve` (`[backup] dir`): every `interval_secs` one node (whichever
//! claims the interval's `backup_runs` row first) writes a backup into `dir`, verifies it
//! (restored into a scratch database, audit chain and sealed secrets checked), then deletes
//! all but the newest `keep` verified ones. A failure is logged as an error, counted, and
//! raised as a `backup_failed` alert (audit entry, webhook) like an intrusion.

use super::format::BackupKey;
use super::{Quiet, create, verify};
use crate::protocol::detect::{Detector, Finding};
use crate::state::AppState;
use crate::store::backup_runs::Finished;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The file names scheduled backups take: `latchkey-<UTC time>.lkbackup`.
const PREFIX: &str = "latchkey-";
const SUFFIX: &str = ".lkbackup";

/// The background task; returns at once when no `backup.dir` is set.
pub async fn run(state: Arc<AppState>) {
    let cfg = &state.config.backup;
    let Some(dir) = cfg.dir.clone() else {
        return;
    };
    let key = match cfg.key() {
        Ok(Some(k)) => k,
        // Config::validate refuses a dir without a key; this is only belt and braces.
        _ => {
            tracing::error!("scheduled backups are off: backup.dir is set but no backup key is");
            return;
        }
    };
    let interval = cfg.interval_secs.max(60) as i64;
    let node = node_name();
    loop {
        let now = crate::store::now();
        let slot = now / interval;
        match state.store.claim_backup(slot, &node, now).await {
            Ok(true) => once(&state, &key, &dir, slot).await,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "scheduled backup: cannot claim the interval; will retry")
            }
        }
        // Wake at the next interval (a little after, so clocks a second apart agree).
        let next = (slot + 1) * interval + 1;
        let wait = (next - crate::store::now()).clamp(1, interval);
        tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    }
}

/// This node's name in `backup_runs`.
fn node_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!("{host}:{}", std::process::id())
}

/// One scheduled backup: write, verify, prune, record.
async fn once(state: &AppState, key: &BackupKey, dir: &Path, slot: i64) {
    let outcome = write_and_verify(state, key, dir).await;
    let now = crate::store::now();
    let finished = match &outcome {
        Ok((path, bytes, rows)) => Finished {
            ok: true,
            file: Some(path.display().to_string()),
            bytes: Some(*bytes as i64),
            rows: Some(*rows as i64),
            error: None,
        },
        Err(e) => Finished {
            ok: false,
            file: None,
            bytes: None,
            rows: None,
            error: Some(e.clone()),
        },
    };
    if let Err(e) = state.store.finish_backup(slot, now, finished).await {
        tracing::error!(error = %e, "scheduled backup: cannot record the run");
    }
    match outcome {
        Ok((path, bytes, rows)) => {
            state.metrics.backup("ok");
            tracing::info!(file = %path.display(), bytes, rows, "scheduled backup written and verified");
            prune(dir, state.config.backup.keep, &path);
        }
        Err(error) => {
            state.metrics.backup("failed");
            tracing::error!(%error, dir = %dir.display(), "scheduled backup failed");
            let f = Finding {
                detector: Detector::BackupFailed,
                subject: dir.display().to_string(),
                key: format!("backup_failed:{slot}"),
                target: "system".into(),
                source: None,
                user_agent: None,
                details: serde_json::json!({ "error": error, "dir": dir.display().to_string() }),
            };
            if let Err(e) = crate::alerts::raise(state, &f, now).await {
                tracing::error!(error = %e, "scheduled backup: cannot raise the alert");
            }
        }
    }
}

async fn write_and_verify(
    state: &AppState,
    key: &BackupKey,
    dir: &Path,
) -> Result<(PathBuf, u64, u64), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    remove_stale_partials(dir);
    let path = dir.join(file_name(crate::store::now()));
    let written = create(&state.store, key, &state.kek, &path, Arc::new(Quiet))
        .await
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    // The scratch database goes to the data directory, never beside the backups (which may
    // be shared, or copied off the machine).
    let scratch = &state.config.data_dir;
    match verify(&path, key, &state.kek, scratch).await {
        Ok(v) if v.audit_intact => Ok((path, written.bytes, written.rows)),
        Ok(v) => {
            // Kept as evidence, under a name that pruning neither counts nor deletes.
            let mut kept = path.clone().into_os_string();
            kept.push(".audit-broken");
            let _ = std::fs::rename(&path, &kept);
            Err(format!(
                "{} was written, but its audit chain does not verify ({}): the live log is likely damaged too; run `latchkey audit verify`",
                PathBuf::from(kept).display(),
                v.audit_break.unwrap_or_default()
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(format!(
                "{} did not verify and was removed: {e}",
                path.display()
            ))
        }
    }
}

/// `.partial` files a killed run left behind (an hour old or more), removed.
fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let partial = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.strip_suffix(".partial").is_some_and(is_backup_name));
        let old = e.metadata().is_ok_and(|m| {
            m.is_file()
                && m.modified()
                    .is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() >= 3600))
        });
        if partial && old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether `name` is exactly what [`file_name`] makes: `latchkey-YYYYMMDDTHHMMSSZ.lkbackup`.
pub fn is_backup_name(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(PREFIX)
        .and_then(|n| n.strip_suffix(SUFFIX))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// `latchkey-20261203T101500Z.lkbackup`: sorts by time.
pub fn file_name(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{PREFIX}{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z{SUFFIX}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Deletes all but the newest `keep` scheduled backups in `dir` (never `newest`, never a file
/// of another name). Returns the files deleted.
pub fn prune(dir: &Path, keep: usize, newest: &Path) -> Vec<PathBuf> {
    let mut deleted = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return deleted;
    };
    // Regular files of exactly our name (not a folder, not a symlink, not a note).
    let mut ours: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.file_name().to_str().is_some_and(is_backup_name))
        .map(|e| e.path())
        .collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep.max(1));
    for old in ours.into_iter().take(excess).filter(|p| p != newest) {
        match std::fs::remove_file(&old) {
            Ok(()) => {
                tracing::info!(file = %old.display(), "old scheduled backup deleted");
                deleted.push(old);
            }
            Err(e) => {
                tracing::warn!(file = %old.display(), error = %e, "cannot delete an old backup")
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_time() {
        assert_eq!(file_name(0), "latchkey-19700101T000000Z.lkbackup");
        assert_eq!(
            file_name(1_796_292_915),
            "latchkey-20261203T101515Z.lkbackup"
        );
        assert!(file_name(1_796_292_915) < file_name(1_796_292_916));
    }

    #[test]
    fn pruning_keeps_the_newest_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for t in [1, 2, 3, 4] {
            std::fs::write(dir.path().join(file_name(t)), b"x").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("latchkey-zzz-notes.lkbackup"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("latchkey-19690101T000000Z.lkbackup")).unwrap();
        prune(dir.path(), 2, &dir.path().join(file_name(4)));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                "latchkey-19690101T000000Z.lkbackup".to_owned(),
                file_name(3),
                file_name(4),
                "latchkey-zzz-notes.lkbackup".to_owned(),
                "notes.txt".to_owned()
            ]
        );
        assert!(is_backup_name(&file_name(1_796_292_915)));
        assert!(!is_backup_name("latchkey-2026120XT101515Z.lkbackup"));
    }
}
