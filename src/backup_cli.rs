//! `latchkey backup keygen | create | verify | restore | list` (`docs/backups.md`).

use crate::audit::existing_kek;
use crate::{Output, print};
use clap::Subcommand;
use latchkey_server::Config;
use latchkey_server::backup::format::BackupKey;
use latchkey_server::backup::{self, Progress, Quiet, schedule};
use latchkey_server::store::Store;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Make a new backup key (32 random bytes, base64url) and write it to a new file, readable
    /// by its owner only. Keep it apart from the database, its backups and the KEK.
    Keygen {
        /// The file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a consistent snapshot of the database (safe while the service runs) to a new
    /// file, encrypted under the backup key.
    Create {
        /// The file to create (it must not exist), or a directory to create
        /// `latchkey-<UTC time>.lkbackup` in.
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        /// Then verify it as `backup verify` does (needs the KEK); one that fails is deleted.
        #[arg(long)]
        verify: bool,
        /// With a directory: then keep only the newest N `latchkey-*.lkbackup` files in it.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        #[command(flatten)]
        out: Output,
    },
    /// Check a backup as far as a restore would: checksum, key, schema, every row restored
    /// into a scratch database, the audit chain, and every sealed secret opened under the KEK.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        /// Where the scratch database goes (removed after); default: the data directory
        /// (writable in the container image, whose root filesystem is read-only).
        #[arg(long)]
        scratch_dir: Option<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Write a backup into this configuration's database, which must be new and empty (SQLite
    /// or PostgreSQL, whichever made the backup). All or nothing: one transaction.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        out: Output,
    },
    /// The scheduled backups (`[backup] dir`) of every node, newest first.
    List {
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(clap::Args)]
pub struct KeyArg {
    /// File holding the backup key; default: `backup.key_file` or `LATCHKEY_BACKUP__KEY`.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

impl KeyArg {
    /// The backup key, refused when it is the KEK.
    fn load(&self, config: &Config) -> anyhow::Result<BackupKey> {
        let key = self.read(config)?;
        if let Some(kek) = existing_kek(config)?
            && key.is_kek(&kek)
        {
            anyhow::bail!(
                "the backup key is the key-encryption key: backups must be encrypted under a key of their own (make one with `latchkey backup keygen`)"
            );
        }
        Ok(key)
    }

    fn read(&self, config: &Config) -> anyhow::Result<BackupKey> {
        let Some(path) = self.key_file.as_ref().or(config.backup.key_file.as_ref()) else {
            return config.backup.key()?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no backup key: pass --key-file, or set backup.key_file or LATCHKEY_BACKUP__KEY (make one with `latchkey backup keygen --out FILE`)"
                )
            });
        };
        warn_if_readable(path);
        if self.key_file.is_none() {
            return config
                .backup
                .key()?
                .ok_or_else(|| anyhow::anyhow!("no backup key"));
        }
        let s = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--key-file {}: {e}", path.display()))?;
        BackupKey::from_b64(&s).ok_or_else(|| {
            anyhow::anyhow!(
                "--key-file {}: a backup key is 32 bytes, base64url-encoded (make one with `latchkey backup keygen`)",
                path.display()
            )
        })
    }
}

/// A key file others may read is said, not refused (it may be a mounted secret).
fn warn_if_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: the backup key file {} can be read by other users (mode {:o}): chmod 0600 it",
            path.display(),
            m.permissions().mode() & 0o777
        );
    }
}

/// A progress bar on standard error when it is a terminal and the output is for people.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn start(&self, total_rows: u64) {
        self.0.set_length(total_rows);
    }
    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }
}

fn progress(out: &Output, verb: &str) -> (Arc<dyn Progress>, Option<indicatif::ProgressBar>) {
    if out.json || !std::io::stderr().is_terminal() {
        return (Arc::new(Quiet), None);
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{verb} {{bar:40}} {{pos}}/{{len}} rows ({{elapsed}}, {{eta}} left)"
    )) {
        bar.set_style(style);
    }
    (Arc::new(Bar(bar.clone())), Some(bar))
}

fn kek(config: &Config, doing: &str) -> anyhow::Result<Arc<latchkey_server::crypto::Kek>> {
    existing_kek(config)?.map(Arc::new).ok_or_else(|| {
        anyhow::anyhow!(
            "{doing} needs the service's key-encryption key (backups are signed under it, and its signing keys and secrets are sealed under it): set LATCHKEY_KEK or kek_file"
        )
    })
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub async fn backup_command(config: &Config, cmd: BackupCommand) -> anyhow::Result<()> {
    match cmd {
        BackupCommand::Keygen { out } => {
            if out.exists() {
                anyhow::bail!("{} exists: choose a new file name", out.display());
            }
            let key = BackupKey::generate();
            latchkey_server::crypto::kek::write_private_file(&out, key.to_b64().as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            eprintln!(
                "wrote backup key {} to {}: keep a copy apart from the database and its backups; without it no backup can be restored",
                key.id(),
                out.display()
            );
            Ok(())
        }
        BackupCommand::Create {
            file,
            key,
            verify,
            keep,
            out,
        } => {
            let key = key.load(config)?;
            let into_dir = file.is_dir();
            if keep.is_some() && !into_dir {
                anyhow::bail!(
                    "--keep needs a directory to prune, and {} is not one",
                    file.display()
                );
            }
            if keep == Some(0) {
                anyhow::bail!("--keep must be at least 1");
            }
            if keep.is_some() && !verify {
                anyhow::bail!(
                    "--keep deletes older backups, so it needs --verify: an unverified backup must not replace verified ones"
                );
            }
            let file = if into_dir {
                file.join(schedule::file_name(latchkey_server::store::now()))
            } else {
                file
            };
            // The backup is signed under a key derived from the KEK.
            let kek = kek(config, "create")?;
            let store = Store::open(config).await?;
            let (progress, bar) = progress(&out, "backing up");
            let s = backup::create(&store, &key, &kek, &file, progress).await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let s = s?;
            let mut summary = serde_json::to_value(&s)?;
            if verify {
                // The scratch database goes to the data directory, not beside the backups.
                let scratch = config.data_dir.clone();
                std::fs::create_dir_all(&scratch)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", scratch.display()))?;
                match backup::verify(&file, &key, &kek, &scratch).await {
                    Ok(v) if v.audit_intact => summary["verified"] = true.into(),
                    Ok(v) => anyhow::bail!(
                        "wrote {}, but its audit chain does not verify ({}): run `latchkey audit verify`",
                        file.display(),
                        v.audit_break.unwrap_or_default()
                    ),
                    Err(e) => {
                        let _ = std::fs::remove_file(&file);
                        anyhow::bail!("{} did not verify and was deleted: {e}", file.display());
                    }
                }
            }
            if let (Some(n), Some(dir)) = (keep, file.parent()) {
                summary["deleted"] = schedule::prune(dir, n, &file)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .into();
            }
            print(
                &out,
                &summary,
                &format!(
                    "wrote {} ({}): {} rows of {} tables from {} at schema {}, backup key {}, in {} ms",
                    s.file.display(),
                    size(s.bytes),
                    s.rows,
                    s.tables.len(),
                    s.backend,
                    s.schema,
                    s.key_id,
                    s.millis
                ),
            )
        }
        BackupCommand::Verify {
            file,
            key,
            scratch_dir,
            out,
        } => {
            let key = key.load(config)?;
            let kek = kek(config, "verify")?;
            let scratch = scratch_dir.unwrap_or_else(|| config.data_dir.clone());
            std::fs::create_dir_all(&scratch)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", scratch.display()))?;
            let v = backup::verify(&file, &key, &kek, &scratch).await?;
            let h = &v.contents.header;
            let audit = match &v.audit_break {
                None => format!("audit chain intact ({} entries)", v.audit_entries),
                Some(b) => format!("AUDIT CHAIN BROKEN at {b}"),
            };
            print(
                &out,
                &v,
                &format!(
                    "{}: checksum ok, decrypts under backup key {}, {} rows of {} tables restore at schema {} (made by latchkey {} from {} at {}), {} sealed secrets open under the KEK, {audit}",
                    file.display(),
                    h.key_id,
                    v.contents.rows,
                    v.contents.tables.len(),
                    h.schema,
                    h.latchkey,
                    h.backend,
                    h.created_at,
                    v.contents.sealed_checked,
                ),
            )?;
            if !v.audit_intact {
                std::process::exit(1);
            }
            Ok(())
        }
        BackupCommand::Restore { file, key, out } => {
            let key = key.load(config)?;
            let kek = kek(config, "restore")?;
            check_readable(&file)?;
            let store = Store::open(config).await?;
            let started = std::time::Instant::now();
            let (progress, bar) = progress(&out, "restoring");
            let c = backup::restore(&store, &key, &kek, &file, progress).await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let c = c?;
            print(
                &out,
                &serde_json::json!({
                    "file": file,
                    "backend": store.backend(),
                    "from_backend": c.header.backend,
                    "schema": c.header.schema,
                    "created_at": c.header.created_at,
                    "tables": c.tables,
                    "rows": c.rows,
                    "sealed_checked": c.sealed_checked,
                    "millis": started.elapsed().as_millis() as u64,
                }),
                &format!(
                    "restored {} rows of {} tables from {} (a {} backup of {}) into {}; run `latchkey audit verify`, then start the service",
                    c.rows,
                    c.tables.len(),
                    file.display(),
                    c.header.backend,
                    c.header.created_at,
                    store.backend()
                ),
            )
        }
        BackupCommand::List { limit, out } => {
            let store = Store::open(config).await?;
            let runs = store.backup_runs(limit).await?;
            let mut text = format!(
                "{:<20} {:<8} {:<24} {}",
                "STARTED", "STATUS", "NODE", "FILE / ERROR"
            );
            for r in &runs {
                text.push_str(&format!(
                    "\n{:<20} {:<8} {:<24} {}",
                    r.started_at,
                    r.status,
                    r.node,
                    r.file.as_deref().or(r.error.as_deref()).unwrap_or("-")
                ));
            }
            if runs.is_empty() {
                text = "no scheduled backups yet (set [backup] dir to have serve make them)".into();
            }
            print(&out, &runs, &text)
        }
    }
}

/// Fails before the database is opened (and migrated) when the file cannot be read.
fn check_readable(file: &Path) -> anyhow::Result<()> {
    std::fs::File::open(file)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))
}
