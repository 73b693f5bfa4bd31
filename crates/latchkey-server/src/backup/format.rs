//! The backup file format, version 1 (`docs/backups.md` describes it for other tools):
//!
//! ```text
//! "LATCHKEY-BACKUP\n"          16 bytes, the magic
//! header length                u32, big-endian, at most 64 KiB
//! header                       JSON (Header): readable without the key, authenticated by it
//! chunk*                       flag u8 (0 more, 1 last) | length u32 BE | AES-256-GCM ciphertext
//! SHA-256                      32 bytes over everything before it
//! ```
//!
//! The chunks carry a deflate stream of JSON Lines ([`super::Line`]). Each file has its own
//! AES-256-GCM key, HKDF-SHA256 of the backup key with the header's random salt; chunk `i`
//! (from 0) is sealed with the nonce `i` (11 bytes, big-endian) followed by its flag byte, and
//! the SHA-256 of the magic, length and header as associated data (the STREAM construction:
//! chunks cannot be reordered, dropped or cut off at the end, and the header cannot be
//! changed). The trailing SHA-256 lets a copy be checked without the key.

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

pub use crate::crypto::backup_key::BackupKey;

pub const MAGIC: &[u8; 16] = b"LATCHKEY-BACKUP\n";
pub const FORMAT: u32 = 1;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1 << 20;
const MAX_HEADER: u32 = 64 * 1024;
const TAG: usize = 16;
const KDF_INFO: &[u8] = b"latchkey backup v1";

/// What a backup says of itself before it is decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    /// Unix seconds when the snapshot was taken.
    pub created_at: i64,
    /// The `latchkey` version that wrote it.
    pub latchkey: String,
    /// The database it was taken from: `sqlite` or `postgres`.
    pub backend: String,
    /// The newest database migration of that database (e.g. `20261203000020`).
    pub schema: String,
    /// Names the backup key without revealing it (see [`BackupKey::id`]).
    pub key_id: String,
    /// HKDF salt, 32 bytes, hex.
    pub salt: String,
    pub cipher: String,
    pub compression: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a Latchkey backup (the file does not start with {MAGIC:?})")]
    NotABackup,
    #[error("backup format {0} is newer than this latchkey reads (1); use a newer release")]
    NewerFormat(u32),
    #[error("the backup's header is damaged: {0}")]
    BadHeader(String),
    #[error(
        "this backup was encrypted under backup key {backup}, and the key given is {given}: use the key that made it"
    )]
    WrongKey { backup: String, given: String },
    #[error("the backup is damaged or was altered: chunk {0} does not decrypt")]
    Tampered(u64),
    #[error("the backup is cut off: it ends before its last chunk")]
    Truncated,
    #[error("the backup's checksum does not match its contents (damaged in storage or transit)")]
    Checksum,
    #[error("the backup has data after its end")]
    TrailingData,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl From<FormatError> for io::Error {
    fn from(e: FormatError) -> io::Error {
        match e {
            FormatError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// The magic, length and header bytes, and their SHA-256 (every chunk's associated data).
fn header_bytes(header: &Header) -> (Vec<u8>, [u8; 32]) {
    let json = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(20 + json.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    let mut aad = [0u8; 32];
    aad.copy_from_slice(ring::digest::digest(&SHA256, &out).as_ref());
    (out, aad)
}

/// A header for a new backup under `key`, with a fresh salt.
pub fn new_header(key: &BackupKey, created_at: i64, backend: &str, schema: &str) -> Header {
    Header {
        format: FORMAT,
        created_at,
        latchkey: env!("CARGO_PKG_VERSION").to_owned(),
        backend: backend.to_owned(),
        schema: schema.to_owned(),
        key_id: key.id(),
        salt: hex::encode(crate::secret::random_bytes(32)),
        cipher: "AES-256-GCM".into(),
        compression: "deflate".into(),
    }
}

/// Writes the header, then seals what is written to it in chunks; [`Sealer::finish`] seals
/// the last chunk and appends the checksum.
pub struct Sealer<W: Write> {
    out: W,
    key: LessSafeKey,
    aad: [u8; 32],
    buf: Vec<u8>,
    counter: u64,
    digest: Context,
    /// Bytes written to `out`.
    pub written: u64,
}

impl<W: Write> Sealer<W> {
    pub fn new(mut out: W, key: &BackupKey, header: &Header) -> io::Result<Sealer<W>> {
        let salt = hex::decode(&header.salt)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "salt is not hex"))?;
        let (bytes, aad) = header_bytes(header);
        out.write_all(&bytes)?;
        let mut digest = Context::new(&SHA256);
        digest.update(&bytes);
        Ok(Sealer {
            out,
            key: key.file_key(&salt, KDF_INFO)?,
            aad,
            buf: Vec::with_capacity(CHUNK),
            counter: 0,
            digest,
            written: bytes.len() as u64,
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let mut chunk = std::mem::take(&mut self.buf);
        self.key
            .seal_in_place_append_tag(nonce(self.counter, last), Aad::from(self.aad), &mut chunk)
            .map_err(|_| io::Error::other("encryption failed"))?;
        let mut frame = [0u8; 5];
        frame[0] = u8::from(last);
        frame[1..].copy_from_slice(&(chunk.len() as u32).to_be_bytes());
        for part in [&frame[..], &chunk[..]] {
            self.out.write_all(part)?;
            self.digest.update(part);
            self.written += part.len() as u64;
        }
        self.counter += 1;
        chunk.clear();
        self.buf = chunk;
        Ok(())
    }

    /// Seals the last chunk, writes the checksum, and returns the inner writer and the
    /// bytes written in all.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.seal(true)?;
        let sum = self.digest.clone().finish();
        self.out.write_all(sum.as_ref())?;
        self.written += 32;
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.seal(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a backup's header (checking the magic and format).
pub fn read_header<R: Read>(input: &mut R) -> Result<(Header, Vec<u8>), FormatError> {
    let mut magic = [0u8; 16];
    read_exact_or(input, &mut magic, FormatError::NotABackup)?;
    if &magic != MAGIC {
        return Err(FormatError::NotABackup);
    }
    let mut len = [0u8; 4];
    read_exact_or(input, &mut len, FormatError::Truncated)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return Err(FormatError::BadHeader(format!(
            "{len} bytes long (at most {MAX_HEADER})"
        )));
    }
    let mut json = vec![0u8; len as usize];
    read_exact_or(input, &mut json, FormatError::Truncated)?;
    // The format number first: a newer format may have other fields.
    let v: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| FormatError::BadHeader(e.to_string()))?;
    let format = v.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
    if format > u64::from(FORMAT) {
        return Err(FormatError::NewerFormat(format as u32));
    }
    let header: Header =
        serde_json::from_value(v).map_err(|e| FormatError::BadHeader(e.to_string()))?;
    if header.format != FORMAT {
        return Err(FormatError::BadHeader(format!(
            "unknown format {}",
            header.format
        )));
    }
    let mut raw = Vec::with_capacity(20 + json.len());
    raw.extend_from_slice(&magic);
    raw.extend_from_slice(&len.to_be_bytes());
    raw.extend_from_slice(&json);
    Ok((header, raw))
}

fn read_exact_or<R: Read>(
    input: &mut R,
    buf: &mut [u8],
    short: FormatError,
) -> Result<(), FormatError> {
    match input.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(short),
        Err(e) => Err(FormatError::Io(e)),
    }
}

/// Checks a whole file's trailing checksum without the key. Returns the header.
pub fn check_sum<R: Read>(mut input: R) -> Result<Header, FormatError> {
    let (header, raw) = read_header(&mut input)?;
    let mut digest = Context::new(&SHA256);
    digest.update(&raw);
    // Hold back the last 32 bytes read: they are the checksum, not data.
    let mut tail: Vec<u8> = Vec::with_capacity(32);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 32 {
            let cut = tail.len() - 32;
            digest.update(&tail[..cut]);
            tail.drain(..cut);
        }
    }
    if tail.len() < 32 {
        return Err(FormatError::Truncated);
    }
    if digest.finish().as_ref() != tail.as_slice() {
        return Err(FormatError::Checksum);
    }
    Ok(header)
}

/// Opens the chunks after a header: a reader of the plaintext (the deflate stream). It fails
/// (as `io::ErrorKind::InvalidData` wrapping a [`FormatError`]) on a chunk that does not
/// decrypt, a missing last chunk, a bad checksum or data after the checksum.
pub struct Opener<R: Read> {
    input: R,
    key: LessSafeKey,
    aad: [u8; 32],
    digest: Context,
    counter: u64,
    plain: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> Opener<R> {
    /// `raw` is the header as read (from [`read_header`]).
    pub fn new(
        input: R,
        key: &BackupKey,
        header: &Header,
        raw: &[u8],
    ) -> Result<Opener<R>, FormatError> {
        if header.key_id != key.id() {
            return Err(FormatError::WrongKey {
                backup: header.key_id.clone(),
                given: key.id(),
            });
        }
        let salt = hex::decode(&header.salt)
            .ok()
            .filter(|s| s.len() == 32)
            .ok_or_else(|| FormatError::BadHeader("the salt is not 32 bytes of hex".into()))?;
        let mut digest = Context::new(&SHA256);
        digest.update(raw);
        let mut aad = [0u8; 32];
        aad.copy_from_slice(ring::digest::digest(&SHA256, raw).as_ref());
        Ok(Opener {
            input,
            key: key.file_key(&salt, KDF_INFO)?,
            aad,
            digest,
            counter: 0,
            plain: Vec::new(),
            pos: 0,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> Result<(), FormatError> {
        let mut frame = [0u8; 5];
        read_exact_or(&mut self.input, &mut frame, FormatError::Truncated)?;
        let last = match frame[0] {
            0 => false,
            1 => true,
            _ => return Err(FormatError::Tampered(self.counter)),
        };
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(FormatError::Tampered(self.counter));
        }
        let mut chunk = std::mem::take(&mut self.plain);
        chunk.resize(len, 0);
        read_exact_or(&mut self.input, &mut chunk, FormatError::Truncated)?;
        self.digest.update(&frame);
        self.digest.update(&chunk);
        let n = self
            .key
            .open_in_place(nonce(self.counter, last), Aad::from(self.aad), &mut chunk)
            .map_err(|_| FormatError::Tampered(self.counter))?
            .len();
        chunk.truncate(n);
        self.plain = chunk;
        self.pos = 0;
        self.counter += 1;
        if last {
            let mut sum = [0u8; 32];
            read_exact_or(&mut self.input, &mut sum, FormatError::Truncated)?;
            if self.digest.clone().finish().as_ref() != sum {
                return Err(FormatError::Checksum);
            }
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra)? != 0 {
                return Err(FormatError::TrailingData);
            }
            self.done = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seal_all(key: &BackupKey, data: &[u8]) -> Vec<u8> {
        let header = new_header(key, 1_700_000_000, "sqlite", "20261203000020");
        let mut s = Sealer::new(Vec::new(), key, &header).unwrap();
        s.write_all(data).unwrap();
        s.finish().unwrap().0
    }

    fn open_all(key: &BackupKey, file: &[u8]) -> Result<Vec<u8>, io::Error> {
        let mut r = file;
        let (header, raw) = read_header(&mut r)?;
        let mut o = Opener::new(r, key, &header, &raw)?;
        let mut out = Vec::new();
        o.read_to_end(&mut out)?;
        Ok(out)
    }

    fn kind(e: io::Error) -> String {
        e.into_inner().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn round_trip_across_chunk_boundaries() {
        let key = BackupKey::generate();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = seal_all(&key, &data);
            assert_eq!(open_all(&key, &file).unwrap(), data, "length {len}");
            assert!(check_sum(&file[..]).is_ok());
        }
    }

    #[test]
    fn a_backup_opens_only_under_its_own_key() {
        let file = seal_all(&BackupKey::generate(), b"secret rows");
        let err = kind(open_all(&BackupKey::generate(), &file).unwrap_err());
        assert!(err.contains("encrypted under backup key"), "{err}");
    }

    #[test]
    fn a_backup_cut_at_a_chunk_boundary_is_refused_as_truncated() {
        let key = BackupKey::generate();
        let data = vec![7u8; CHUNK * 2];
        let file = seal_all(&key, &data);
        // Drop the last chunk and the checksum: what remains ends on a whole chunk.
        let (_, raw) = read_header(&mut &file[..]).unwrap();
        let cut = raw.len() + 2 * (5 + CHUNK + TAG);
        let err = kind(open_all(&key, &file[..cut]).unwrap_err());
        assert!(err.contains("cut off"), "{err}");
        assert!(matches!(
            check_sum(&file[..cut]),
            Err(FormatError::Checksum)
        ));
    }

    #[test]
    fn an_edited_header_fails_every_chunk() {
        let key = BackupKey::generate();
        let file = seal_all(&key, b"rows");
        let mut edited = file.clone();
        let at = edited.windows(8).position(|w| w == b"\"sqlite\"").unwrap();
        edited[at + 1..at + 7].copy_from_slice(b"SQLITE");
        let err = kind(open_all(&key, &edited).unwrap_err());
        assert!(err.contains("does not decrypt"), "{err}");
    }

    #[test]
    fn data_after_the_checksum_is_refused() {
        let key = BackupKey::generate();
        let mut file = seal_all(&key, b"rows");
        file.push(0);
        let err = kind(open_all(&key, &file).unwrap_err());
        assert!(err.contains("after its end"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any single changed byte, and any cut, is refused: never a panic, never other data.
        #[test]
        fn any_flipped_byte_or_cut_is_refused(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
            cut in any::<prop::sample::Index>(),
        ) {
            let key = BackupKey::generate();
            let file = seal_all(&key, &data);
            let mut flipped = file.clone();
            let i = at.index(flipped.len());
            flipped[i] ^= 1 << bit;
            prop_assert!(open_all(&key, &flipped).is_err());
            prop_assert!(check_sum(&flipped[..]).is_err());
            let c = cut.index(file.len());
            prop_assert!(open_all(&key, &file[..c]).is_err());
        }

        /// Arbitrary bytes after a valid magic never panic the reader.
        #[test]
        fn garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
            let key = BackupKey::generate();
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&tail);
            let _ = open_all(&key, &file);
            let _ = check_sum(&file[..]);
        }
    }
}
