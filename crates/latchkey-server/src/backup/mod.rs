//! Backups (`docs/backups.md`): `create` writes one consistent snapshot of the database into
//! one encrypted, checksummed file ([`format`]); `restore` writes such a file into an empty
//! database of either kind in one transaction; `verify` restores it into a scratch SQLite
//! database and checks what a restore needs: the checksum, the key, the schema, the audit
//! chain, and that every sealed secret opens under the key-encryption key. [`schedule`] runs
//! them from `serve`.
//!
//! The plaintext inside is a deflate stream of JSON Lines, signed under a key derived from the
//! KEK ([`lines`]).

pub mod format;
mod lines;
pub mod schedule;

pub use lines::{Contents, mac_key};

use crate::audit::chain;
use crate::crypto::Kek;
use crate::store::backup::{Dumped, Restoring};
use crate::store::{Store, StoreError};
use format::{BackupKey, FormatError, Header, Sealer};
use serde::Serialize;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The reader stopped because the database refused what it was given (its error says why).
    #[error("the database stopped reading the backup")]
    Stopped,
    #[error(
        "the backup is not signed under this service's key-encryption key: it was made by another service, or by someone holding only the backup key"
    )]
    Unsigned,
    #[error(
        "the backup was made at database schema {backup}, and this latchkey's is {here}: restore it with the release that made it (latchkey {made_by}), then upgrade"
    )]
    Schema {
        backup: String,
        here: String,
        made_by: String,
    },
    #[error("the backup's contents are malformed: {0}")]
    Malformed(String),
    #[error(
        "{0} does not decrypt under the configured key-encryption key: restore needs the KEK of the service that made the backup"
    )]
    Sealed(String),
}

/// Told how far a backup or restore has come (a progress bar on a terminal).
pub trait Progress: Send + Sync {
    fn start(&self, _total_rows: u64) {}
    fn advance(&self, _rows: u64) {}
}

/// No progress shown.
pub struct Quiet;
impl Progress for Quiet {}

/// What `create` wrote, or `restore` read.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub file: PathBuf,
    pub created_at: i64,
    pub backend: String,
    pub schema: String,
    pub key_id: String,
    pub tables: Vec<(String, u64)>,
    pub rows: u64,
    pub bytes: u64,
    pub millis: u64,
}

/// Writes a snapshot of `store` to `path` (which must not exist): first to
/// `<path>.partial`, synced, then renamed, so `path` only ever names a whole backup.
pub async fn create(
    store: &Store,
    key: &BackupKey,
    kek: &Kek,
    path: &Path,
    progress: Arc<dyn Progress>,
) -> Result<Summary, BackupError> {
    let started = std::time::Instant::now();
    if path.exists() {
        return Err(BackupError::Io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists: choose a new file name", path.display()),
        )));
    }
    let schema = store.schema_version().await?.unwrap_or_default();
    let header = format::new_header(key, crate::store::now(), store.backend(), &schema);
    let partial = partial_path(path);
    let file = open_new(&partial)?;
    let sealer = Sealer::new(BufWriter::new(file), key, &header)?;
    let (tx, rx) = mpsc::channel::<Dumped>(8);
    let writer = {
        let progress = progress.clone();
        let mac = mac_key(kek);
        tokio::task::spawn_blocking(move || lines::write_lines(sealer, &mac, rx, progress.as_ref()))
    };
    let dumped = store.dump(tx).await;
    let written = writer
        .await
        .map_err(|_| BackupError::Malformed("the writer failed".into()));
    let outcome = match (dumped, written) {
        (Ok(()), Ok(Ok(w))) => Ok(w),
        (Err(e), _) => Err(BackupError::Store(e)),
        (_, Ok(Err(e))) => Err(e),
        (_, Err(e)) => Err(e),
    };
    let (tables, rows, bytes) = match outcome {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    // A hard link fails if `path` appeared meanwhile (or is a dangling symlink): never replaced.
    let linked = std::fs::hard_link(&partial, path);
    let _ = std::fs::remove_file(&partial);
    linked.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
    })?;
    sync_dir(path);
    Ok(Summary {
        file: path.to_owned(),
        created_at: header.created_at,
        backend: header.backend,
        schema: header.schema,
        key_id: header.key_id,
        tables,
        rows,
        bytes,
        millis: started.elapsed().as_millis() as u64,
    })
}

fn partial_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// A new file readable by its owner only (a backup is as sensitive as the database).
fn open_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
    })
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Writes the backup at `path` into `store`, which must be an empty database at the same
/// schema. Every sealed value must open under `kek` (the restored service's KEK).
pub async fn restore(
    store: &Store,
    key: &BackupKey,
    kek: &Arc<Kek>,
    path: &Path,
    progress: Arc<dyn Progress>,
) -> Result<Contents, BackupError> {
    let here = store.schema_version().await?.unwrap_or_default();
    let occupied = store.occupied_tables().await?;
    if let Some((t, n)) = occupied.first() {
        return Err(BackupError::Store(StoreError::Conflict(format!(
            "the database is not empty (table {t} has {n} row(s)): restore into a new database"
        ))));
    }
    let (tx, rx) = mpsc::channel::<Restoring>(4);
    let reader = {
        let (path, key, kek) = (path.to_owned(), key.clone(), kek.clone());
        tokio::task::spawn_blocking(move || {
            lines::read_lines(&path, &key, &kek, &here, tx, progress.as_ref())
        })
    };
    let restored = store.restore(rx).await;
    let read = reader
        .await
        .map_err(|_| BackupError::Malformed("the reader failed".into()))?;
    match (read, restored) {
        (Ok(contents), Ok(_)) => Ok(contents),
        // The database refused a row: its error says which and why.
        (Err(BackupError::Stopped), Err(e)) => Err(BackupError::Store(e)),
        // The file is wrong: the database's error is then only that it ended early.
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(BackupError::Store(e)),
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    #[serde(flatten)]
    pub contents: Contents,
    pub audit_entries: usize,
    pub audit_checkpoints: usize,
    pub audit_intact: bool,
    /// Where the chain breaks, when it does.
    pub audit_break: Option<String>,
}

/// Checks the backup at `path` as far as a restore would: checksum, key, schema, every row
/// written into a scratch SQLite database (in `scratch_dir`, removed after), every sealed
/// value opened under `kek`, and the audit chain verified there.
pub async fn verify(
    path: &Path,
    key: &BackupKey,
    kek: &Arc<Kek>,
    scratch_dir: &Path,
) -> Result<Verified, BackupError> {
    {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || -> Result<Header, BackupError> {
            let f = std::fs::File::open(&path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
            })?;
            Ok(format::check_sum(BufReader::new(f))?)
        })
        .await
        .map_err(|_| BackupError::Malformed("the checksum reader failed".into()))??;
    }
    remove_stale_scratch(scratch_dir);
    // Mode 0700: the scratch database holds every row in clear while it exists.
    let dir = tempfile::Builder::new()
        .prefix(SCRATCH_PREFIX)
        .permissions(private_dir())
        .tempdir_in(scratch_dir)?;
    let mut config = crate::Config {
        data_dir: dir.path().to_owned(),
        database_url: Some(format!(
            "sqlite://{}",
            dir.path().join("verify.db").display()
        )),
        ..crate::Config::default()
    };
    config.database.max_connections = 1;
    let scratch = Store::open(&config).await?;
    let contents = restore(&scratch, key, kek, path, Arc::new(Quiet)).await?;
    let snap = scratch.audit_snapshot().await?;
    let broken =
        chain::verify_with_checkpoints(&snap.checkpoints, &snap.chain, &chain::checkpoint_key(kek));
    let audit_break = match (&broken, snap.unchained) {
        (Some(b), _) => Some(format!("entry {}: {}", b.seq, b.reason)),
        (None, 0) => None,
        (None, n) => Some(format!("{n} row(s) outside the chain")),
    };
    drop(scratch);
    Ok(Verified {
        contents,
        audit_entries: snap.chain.len(),
        audit_checkpoints: snap.checkpoints.len(),
        audit_intact: audit_break.is_none(),
        audit_break,
    })
}

const SCRATCH_PREFIX: &str = "latchkey-verify-";

fn private_dir() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o700)
}

/// Scratch databases a killed `verify` left behind (a day old or more), removed.
fn remove_stale_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let day = std::time::Duration::from_secs(86_400);
    for e in entries.filter_map(Result::ok) {
        let stale = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(SCRATCH_PREFIX))
            && e.metadata().is_ok_and(|m| {
                m.is_dir()
                    && m.modified()
                        .is_ok_and(|t| t.elapsed().is_ok_and(|a| a > day))
            });
        if stale {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
