//! Backups (`docs/backups.md`): `create` writes one consistent snapshot of the database into
//! one encrypted, checksummed file ([`format`]); `restore` writes such a file into an empty
//! database of either kind in one transaction; `verify` restores it into a scratch SQLite
//! database and checks what a restore needs: the checksum, the key, the schema, the audit
//! chain, and that every sealed secret opens under the key-encryption key. [`schedule`] runs
//! them from `serve`.
//!
//! The plaintext inside is a deflate stream of JSON Lines:
//! `{"counts":[["labs",2],…]}`, then per table `{"table":"labs","columns":[…]}` and one JSON
//! array per row, then `{"end":{"rows":N}}`.

pub mod format;
pub mod schedule;

use crate::audit::chain;
use crate::crypto::Kek;
use crate::store::backup::{Dumped, Restoring, TABLES};
use crate::store::{Store, StoreError};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use format::{BackupKey, FormatError, Header, Opener, Sealer};
use serde::Serialize;
use serde_json::Value;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The longest line the reader accepts (a row is a few KiB at most).
const MAX_LINE: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
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
        tokio::task::spawn_blocking(move || write_lines(sealer, rx, progress.as_ref()))
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
    std::fs::rename(&partial, path)?;
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

type Written = (Vec<(String, u64)>, u64, u64);

/// The writer thread: JSON Lines, deflated, sealed, synced.
fn write_lines(
    sealer: Sealer<BufWriter<std::fs::File>>,
    mut rx: mpsc::Receiver<Dumped>,
    progress: &dyn Progress,
) -> Result<Written, BackupError> {
    let mut out =
        BufWriter::with_capacity(256 * 1024, DeflateEncoder::new(sealer, Compression::fast()));
    let mut tables = Vec::new();
    let mut rows = 0u64;
    while let Some(item) = rx.blocking_recv() {
        match item {
            Dumped::Counts(counts) => {
                let total = counts.iter().map(|(_, n)| n).sum();
                progress.start(total);
                tables = counts.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
                let line = serde_json::json!({ "counts": counts });
                writeln!(out, "{line}")?;
            }
            Dumped::Table(name) => {
                let columns = TABLES
                    .iter()
                    .find(|(t, _)| *t == name)
                    .map(|(_, c)| *c)
                    .unwrap_or_default();
                let line = serde_json::json!({ "table": name, "columns": columns });
                writeln!(out, "{line}")?;
            }
            Dumped::Rows(batch) => {
                for row in &batch {
                    serde_json::to_writer(&mut out, row).map_err(std::io::Error::other)?;
                    out.write_all(b"\n")?;
                }
                rows += batch.len() as u64;
                progress.advance(batch.len() as u64);
            }
        }
    }
    if tables.is_empty() {
        // The snapshot failed before it began: the caller reports the store's error.
        return Err(BackupError::Malformed("no snapshot".into()));
    }
    writeln!(out, "{}", serde_json::json!({ "end": { "rows": rows } }))?;
    let sealer = out.into_inner().map_err(|e| e.into_error())?.finish()?;
    let (file, written) = sealer.finish()?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((tables, rows, written))
}

/// What a backup file holds, read and checked (`verify`, and `restore` before it writes).
#[derive(Debug, Clone, Serialize)]
pub struct Contents {
    pub header: Header,
    pub tables: Vec<(String, u64)>,
    pub rows: u64,
    /// Sealed values opened under the KEK (signing keys, TOTP secrets, server secrets).
    pub sealed_checked: u64,
}

/// Reads `path` on a blocking thread and feeds its tables to `tx`; sends nothing more once
/// something is wrong, and [`Restoring::End`] only after the whole file checked out.
fn read_lines(
    path: &Path,
    key: &BackupKey,
    kek: Option<&Kek>,
    expect_schema: Option<&str>,
    tx: mpsc::Sender<Restoring>,
    progress: &dyn Progress,
) -> Result<Contents, BackupError> {
    let mut file = BufReader::new(std::fs::File::open(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
    })?);
    let (header, raw) = format::read_header(&mut file)?;
    if let Some(here) = expect_schema
        && header.schema != here
    {
        return Err(BackupError::Schema {
            backup: header.schema.clone(),
            here: here.to_owned(),
            made_by: header.latchkey.clone(),
        });
    }
    let opener = Opener::new(file, key, &header, &raw)?;
    let mut lines = BufReader::with_capacity(256 * 1024, DeflateDecoder::new(opener));
    let malformed = |why: String| BackupError::Malformed(why);
    let mut line = Vec::new();
    let mut next = |lines: &mut BufReader<DeflateDecoder<Opener<BufReader<std::fs::File>>>>|
     -> Result<Option<Value>, BackupError> {
        line.clear();
        let n = lines.by_ref().take(MAX_LINE).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            return Err(malformed("a line is unterminated or longer than 16 MiB".into()));
        }
        serde_json::from_slice(&line)
            .map(Some)
            .map_err(|e| malformed(format!("a line is not JSON: {e}")))
    };
    let send = |item| {
        tx.blocking_send(item)
            .map_err(|_| BackupError::Malformed("the database stopped reading".into()))
    };
    let counts: Vec<(String, u64)> = match next(&mut lines)? {
        Some(v) => serde_json::from_value(v.get("counts").cloned().unwrap_or_default())
            .map_err(|_| malformed("it does not start with the table counts".into()))?,
        None => return Err(malformed("it is empty".into())),
    };
    progress.start(counts.iter().map(|(_, n)| n).sum());
    let mut rows = 0u64;
    let mut sealed_checked = 0u64;
    let mut table: Option<(String, u64)> = None;
    let mut seen: Vec<(String, u64)> = Vec::new();
    let mut batch: Vec<Vec<Value>> = Vec::new();
    let end_rows = loop {
        let Some(v) = next(&mut lines)? else {
            return Err(malformed("it ends before its end marker".into()));
        };
        match v {
            Value::Array(row) => {
                let Some((name, n)) = table.as_mut() else {
                    return Err(malformed("a row comes before any table".into()));
                };
                if let Some(kek) = kek {
                    sealed_checked += check_sealed(name, &row, kek)?;
                }
                *n += 1;
                batch.push(row);
                if batch.len() == 500 {
                    rows += batch.len() as u64;
                    progress.advance(batch.len() as u64);
                    send(Restoring::Rows(std::mem::take(&mut batch)))?;
                }
            }
            Value::Object(o) => {
                if !batch.is_empty() {
                    rows += batch.len() as u64;
                    progress.advance(batch.len() as u64);
                    send(Restoring::Rows(std::mem::take(&mut batch)))?;
                }
                seen.extend(table.take());
                if let Some(end) = o.get("end") {
                    break end.get("rows").and_then(Value::as_u64);
                }
                let name = o.get("table").and_then(Value::as_str);
                let columns: Option<Vec<String>> = o
                    .get("columns")
                    .and_then(|c| serde_json::from_value(c.clone()).ok());
                let (Some(name), Some(columns)) = (name, columns) else {
                    return Err(malformed(
                        "a line is neither a row, a table nor the end".into(),
                    ));
                };
                send(Restoring::Table {
                    name: name.to_owned(),
                    columns,
                })?;
                table = Some((name.to_owned(), 0));
            }
            _ => {
                return Err(malformed(
                    "a line is neither a row, a table nor the end".into(),
                ));
            }
        }
    };
    if next(&mut lines)?.is_some() {
        return Err(malformed("there are lines after the end marker".into()));
    }
    // Reading on to the end of the deflate stream checked the last chunk and the checksum.
    let mut rest = Vec::new();
    lines.read_to_end(&mut rest)?;
    if end_rows != Some(rows) || seen != counts {
        return Err(malformed(format!(
            "it holds {rows} rows, and its counts say {}",
            end_rows.map_or("nothing".to_owned(), |n| n.to_string())
        )));
    }
    send(Restoring::End { rows })?;
    Ok(Contents {
        header,
        tables: counts,
        rows,
        sealed_checked,
    })
}

/// Opens a row's value sealed under the KEK, if its table has one. Returns 1 if it checked one.
fn check_sealed(table: &str, row: &[Value], kek: &Kek) -> Result<u64, BackupError> {
    use crate::store::backup::Portable;
    let (label, aad, sealed) = match table {
        "signing_keys" => {
            let kid = text(row, 0)?;
            (
                format!("signing key {kid}"),
                kid.clone().into_bytes(),
                row.get(3),
            )
        }
        "totp_credentials" => {
            let user = text(row, 0)?;
            let aad = crate::crypto::kek::totp_aad(&user);
            (format!("the TOTP secret of user {user}"), aad, row.get(1))
        }
        "server_secrets" => {
            let name = text(row, 0)?;
            let aad = crate::store::secrets::secret_aad(&name);
            (format!("server secret {name}"), aad, row.get(1))
        }
        _ => return Ok(0),
    };
    let sealed = Vec::<u8>::from_json(sealed.cloned().unwrap_or_default())
        .map_err(|e| BackupError::Malformed(format!("{label}: {e}")))?;
    kek.open(&aad, &sealed)
        .map_err(|_| BackupError::Sealed(label))?;
    Ok(1)
}

fn text(row: &[Value], i: usize) -> Result<String, BackupError> {
    row.get(i)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BackupError::Malformed(format!("column {} is not text", i + 1)))
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
    let (tx, rx) = mpsc::channel::<Restoring>(8);
    let reader = {
        let (path, key, kek) = (path.to_owned(), key.clone(), kek.clone());
        tokio::task::spawn_blocking(move || {
            read_lines(&path, &key, Some(&kek), Some(&here), tx, progress.as_ref())
        })
    };
    let restored = store.restore(rx).await;
    let read = reader
        .await
        .map_err(|_| BackupError::Malformed("the reader failed".into()))?;
    // The reader's error says what is wrong with the file; the store's is then only that the
    // file ended early.
    let contents = read?;
    restored?;
    Ok(contents)
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
    let dir = tempfile::Builder::new()
        .prefix("latchkey-verify-")
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
