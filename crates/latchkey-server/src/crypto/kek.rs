//! The key-encryption key (KEK): AES-256-GCM over private signing keys at rest.
//!
//! Where it comes from, in order: `LATCHKEY_KEK` / config `kek`, config `kek_file`, else a key
//! generated on first start at `<data_dir>/kek` with mode 0600 (and a loud warning: production
//! should supply its own, kept apart from the database and its backups).

use crate::secret::random_bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::fmt;
use std::path::Path;

pub struct Kek {
    key: LessSafeKey,
    /// Seed for keys derived from the KEK (HMAC keys for CSRF tokens), so every node that
    /// shares the KEK derives the same keys.
    seed: ring::hmac::Key,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the key-encryption key must be 32 bytes, base64url-encoded")]
    BadKey,
    #[error("could not read or create the key-encryption key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("a private key could not be decrypted: wrong key-encryption key or corrupted data")]
    Decrypt,
}

/// Where the KEK came from, so the caller can warn about a generated one.
#[derive(Debug, PartialEq, Eq)]
pub enum KekSource {
    Configured,
    File,
    Generated,
}

impl Kek {
    pub fn from_b64(s: &str) -> Result<Kek, KekError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim().trim_end_matches('='))
            .map_err(|_| KekError::BadKey)?;
        Kek::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Kek, KekError> {
        if bytes.len() != 32 {
            return Err(KekError::BadKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KekError::BadKey)?;
        Ok(Kek {
            key: LessSafeKey::new(key),
            seed: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes),
        })
    }

    /// Reads the KEK at `path`, or creates one there (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<(Kek, KekSource), KekError> {
        let io = |source| KekError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(s) => Ok((Kek::from_b64(&s)?, KekSource::File)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_bytes(32);
                write_private_file(path, URL_SAFE_NO_PAD.encode(&bytes).as_bytes()).map_err(io)?;
                Ok((Kek::from_bytes(&bytes)?, KekSource::Generated))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Derives a 32-byte key for another purpose, named by `label`.
    pub fn derive(&self, label: &[u8]) -> Vec<u8> {
        ring::hmac::sign(&self.seed, label).as_ref().to_vec()
    }

    /// Encrypts `plaintext`; `aad` binds the ciphertext to its owner (the key id).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes(NONCE_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&nonce_bytes);
        let mut buf = plaintext.to_vec();
        // Sealing only fails for inputs larger than AES-GCM allows (64 GiB).
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .is_err()
        {
            return Vec::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        if sealed.len() < NONCE_LEN {
            return Err(KekError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| KekError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

/// Writes a file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// The associated data a user's sealed TOTP secret is bound to: a secret copied onto another
/// user's row does not open.
pub(crate) fn totp_aad(user_id: &str) -> Vec<u8> {
    format!("latchkey totp v1 {user_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let sealed = kek.seal(b"kid-1", b"private key");
        assert_eq!(kek.open(b"kid-1", &sealed).unwrap(), b"private key");
        assert!(kek.open(b"kid-2", &sealed).is_err());
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open(b"kid-1", &sealed).is_err());
    }

    #[test]
    fn generated_kek_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let (_, source) = Kek::load_or_create(&path).unwrap();
        assert_eq!(source, KekSource::Generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (_, source) = Kek::load_or_create(&path).unwrap();
        assert_eq!(source, KekSource::File);
    }
}
