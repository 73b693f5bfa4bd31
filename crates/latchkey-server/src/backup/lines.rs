//! The plaintext inside a backup: a deflate stream of JSON Lines, written by [`write_lines`]
//! beside the database's snapshot and read back by [`read_lines`] beside a restore.
//!
//! ```text
//! {"counts":[["labs",2],…]}
//! {"table":"labs","columns":["id","name","created_at"]}
//! ["0193…","Lab 42",1796292915]
//! {"end":{"rows":5210,"mac":"<hex>"}}
//! ```
//!
//! `mac` is HMAC-SHA256, under a key derived from the key-encryption key, of every line before
//! the end line: whoever holds only the backup key can read a backup but cannot make one that
//! a service with this KEK accepts.

use super::format::{Header, Opener, Sealer};
use super::{BackupError, Progress};
use crate::crypto::Kek;
use crate::store::backup::{Dumped, Restoring, TABLES};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use ring::hmac;
use serde::Serialize;
use serde_json::Value;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use tokio::sync::mpsc;

/// The longest line the reader accepts: a row is a few KiB at most.
const MAX_LINE: u64 = 1 << 20;
/// Rows read are handed to the database in batches of at most this many rows or bytes, so a
/// crafted file cannot make the reader hold more than a few of them.
const BATCH_ROWS: usize = 500;
const BATCH_BYTES: usize = 4 << 20;

/// The key of a backup's MAC, derived from the KEK.
pub fn mac_key(kek: &Kek) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &kek.derive(b"latchkey backup mac v1"))
}

/// What the writer wrote: the tables with their row counts, the rows, the file's bytes.
pub type Written = (Vec<(String, u64)>, u64, u64);

/// A writer that also feeds what it writes to the MAC.
struct Signed<W: Write> {
    out: W,
    mac: hmac::Context,
}

impl<W: Write> Write for Signed<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(data)?;
        self.mac.update(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The writer thread: JSON Lines, signed, deflated, sealed, synced.
pub fn write_lines(
    sealer: Sealer<BufWriter<std::fs::File>>,
    mac: &hmac::Key,
    mut rx: mpsc::Receiver<Dumped>,
    progress: &dyn Progress,
) -> Result<Written, BackupError> {
    let deflate = DeflateEncoder::new(sealer, Compression::fast());
    let mut out = BufWriter::with_capacity(
        256 * 1024,
        Signed {
            out: deflate,
            mac: hmac::Context::with_key(mac),
        },
    );
    let mut tables = Vec::new();
    let mut rows = 0u64;
    while let Some(item) = rx.blocking_recv() {
        match item {
            Dumped::Counts(counts) => {
                progress.start(counts.iter().map(|(_, n)| n).sum());
                tables = counts.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
                writeln!(out, "{}", serde_json::json!({ "counts": counts }))?;
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
    let signed = out.into_inner().map_err(|e| e.into_error())?;
    let tag = hex::encode(signed.mac.sign().as_ref());
    let mut deflate = signed.out;
    let end = serde_json::json!({ "end": { "rows": rows, "mac": tag } });
    writeln!(deflate, "{end}")?;
    let (file, written) = deflate.finish()?.finish()?;
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

fn malformed(why: impl Into<String>) -> BackupError {
    BackupError::Malformed(why.into())
}

/// Control characters removed: header fields are shown before anything vouches for them.
pub fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

type Plain = BufReader<DeflateDecoder<Opener<BufReader<std::fs::File>>>>;

/// One line as JSON and its length, or `None` at the end of the stream.
fn next_line(
    lines: &mut Plain,
    buf: &mut Vec<u8>,
    mac: &mut hmac::Context,
) -> Result<Option<(Value, usize)>, BackupError> {
    buf.clear();
    let n = lines.by_ref().take(MAX_LINE).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(malformed("a line is unterminated or longer than 1 MiB"));
    }
    let v: Value =
        serde_json::from_slice(buf).map_err(|e| malformed(format!("a line is not JSON: {e}")))?;
    // The end line carries the MAC of every line before it.
    if !v.get("end").is_some_and(Value::is_object) {
        mac.update(buf);
    }
    Ok(Some((v, n)))
}

/// Reads `path` on a blocking thread and feeds its tables to `tx`. Nothing of a header is
/// trusted (the schema compared) before its first chunk decrypts; nothing is sent once
/// something is wrong; [`Restoring::End`] only after the whole file, its MAC under `kek`, its
/// counts and its checksum checked out.
pub fn read_lines(
    path: &Path,
    key: &super::format::BackupKey,
    kek: &Kek,
    expect_schema: &str,
    tx: mpsc::Sender<Restoring>,
    progress: &dyn Progress,
) -> Result<Contents, BackupError> {
    let mut file = BufReader::new(std::fs::File::open(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
    })?);
    let (header, raw) = super::format::read_header(&mut file)?;
    let opener = Opener::new(file, key, &header, &raw)?;
    let mut lines: Plain = BufReader::with_capacity(256 * 1024, DeflateDecoder::new(opener));
    let mut mac = hmac::Context::with_key(&mac_key(kek));
    let mut buf = Vec::new();
    let send = |item| tx.blocking_send(item).map_err(|_| BackupError::Stopped);
    // The first line decrypts the first chunk, which authenticates the header.
    let counts: Vec<(String, u64)> = match next_line(&mut lines, &mut buf, &mut mac)? {
        Some((v, _)) => serde_json::from_value(v.get("counts").cloned().unwrap_or_default())
            .map_err(|_| malformed("it does not start with the table counts"))?,
        None => return Err(malformed("it is empty")),
    };
    if header.schema != expect_schema {
        return Err(BackupError::Schema {
            backup: printable(&header.schema),
            here: expect_schema.to_owned(),
            made_by: printable(&header.latchkey),
        });
    }
    progress.start(
        counts
            .iter()
            .fold(0u64, |sum, (_, n)| sum.saturating_add(*n)),
    );
    let mut rows = 0u64;
    let mut sealed_checked = 0u64;
    // The table being read: its name, its width, the rows read of it.
    let mut table: Option<(String, usize, u64)> = None;
    let mut seen: Vec<(String, u64)> = Vec::new();
    let mut batch: Vec<Vec<Value>> = Vec::new();
    let mut batch_bytes = 0usize;
    let (end_rows, end_mac) = loop {
        let Some((v, len)) = next_line(&mut lines, &mut buf, &mut mac)? else {
            return Err(malformed("it ends before its end marker"));
        };
        match v {
            Value::Array(row) => {
                let Some((name, width, n)) = table.as_mut() else {
                    return Err(malformed("a row comes before any table"));
                };
                if row.len() != *width {
                    return Err(malformed(format!(
                        "row {} of table {name} has {} values for {width} columns",
                        *n + 1,
                        row.len()
                    )));
                }
                sealed_checked += check_sealed(name, &row, kek)?;
                *n += 1;
                batch.push(row);
                batch_bytes += len;
                if batch.len() == BATCH_ROWS || batch_bytes >= BATCH_BYTES {
                    rows += batch.len() as u64;
                    progress.advance(batch.len() as u64);
                    send(Restoring::Rows(std::mem::take(&mut batch)))?;
                    batch_bytes = 0;
                }
            }
            Value::Object(o) => {
                if !batch.is_empty() {
                    rows += batch.len() as u64;
                    progress.advance(batch.len() as u64);
                    send(Restoring::Rows(std::mem::take(&mut batch)))?;
                    batch_bytes = 0;
                }
                seen.extend(table.take().map(|(name, _, n)| (name, n)));
                if let Some(end) = o.get("end") {
                    let mac = end
                        .get("mac")
                        .and_then(Value::as_str)
                        .and_then(|m| hex::decode(m).ok());
                    break (end.get("rows").and_then(Value::as_u64), mac);
                }
                let name = o.get("table").and_then(Value::as_str);
                let columns: Option<Vec<String>> = o
                    .get("columns")
                    .and_then(|c| serde_json::from_value(c.clone()).ok());
                let (Some(name), Some(columns)) = (name, columns) else {
                    return Err(malformed("a line is neither a row, a table nor the end"));
                };
                let Some((known, cols)) = TABLES.iter().find(|(t, _)| *t == name) else {
                    return Err(malformed(format!(
                        "it has a table this latchkey does not know: `{}`",
                        printable(name)
                    )));
                };
                if columns.iter().map(String::as_str).ne(cols.iter().copied()) {
                    return Err(malformed(format!(
                        "table {known}: its columns are not this schema's ({})",
                        cols.join(", ")
                    )));
                }
                if seen.iter().any(|(t, _)| t == known) {
                    return Err(malformed(format!("table {known} appears twice")));
                }
                send(Restoring::Table {
                    name: (*known).to_owned(),
                    columns,
                })?;
                table = Some(((*known).to_owned(), cols.len(), 0));
            }
            _ => return Err(malformed("a line is neither a row, a table nor the end")),
        }
    };
    if next_line(&mut lines, &mut buf, &mut mac)?.is_some() {
        return Err(malformed("there are lines after the end marker"));
    }
    // Reading to the end of the deflate stream checks the last chunk and the checksum.
    let mut rest = Vec::new();
    lines.read_to_end(&mut rest)?;
    let signed = {
        use subtle::ConstantTimeEq;
        let computed = mac.sign();
        end_mac.is_some_and(|tag| bool::from(computed.as_ref().ct_eq(&tag)))
    };
    if !signed {
        return Err(BackupError::Unsigned);
    }
    if end_rows != Some(rows) {
        return Err(malformed(format!(
            "it holds {rows} rows, and its end marker says {}",
            end_rows.map_or("nothing".to_owned(), |n| n.to_string())
        )));
    }
    if let Some((t, n)) = seen
        .iter()
        .zip(&counts)
        .find_map(|(s, c)| (s != c).then_some(s))
    {
        return Err(malformed(format!(
            "table {t} holds {n} rows, and the counts at its start say otherwise"
        )));
    }
    if seen.len() != counts.len() {
        return Err(malformed("its tables are not the ones its counts name"));
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
            let label = format!("signing key {}", printable(kid));
            (label, kid.as_bytes().to_vec(), row.get(3))
        }
        "totp_credentials" => {
            let user = text(row, 0)?;
            let label = format!("the TOTP secret of user {}", printable(user));
            (label, crate::crypto::kek::totp_aad(user), row.get(1))
        }
        "server_secrets" => {
            let name = text(row, 0)?;
            let label = format!("server secret {}", printable(name));
            (label, crate::store::secrets::secret_aad(name), row.get(1))
        }
        _ => return Ok(0),
    };
    let sealed = Vec::<u8>::from_json(sealed.cloned().unwrap_or_default())
        .map_err(|e| malformed(format!("{label}: {e}")))?;
    kek.open(&aad, &sealed)
        .map_err(|_| BackupError::Sealed(label))?;
    Ok(1)
}

fn text(row: &[Value], i: usize) -> Result<&str, BackupError> {
    row.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(format!("column {} is not text", i + 1)))
}
