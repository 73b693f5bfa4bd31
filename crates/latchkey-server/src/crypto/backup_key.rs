//! The backup key: 32 bytes that backups are encrypted under (`backup::format`), kept apart
//! from the database and from the key-encryption key.

use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use std::io;

const KEY_ID_LABEL: &[u8] = b"latchkey backup key id";

/// The key backups are encrypted under: 32 bytes, kept apart from the database and from the
/// key-encryption key.
#[derive(Clone)]
pub struct BackupKey([u8; 32]);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupKey({})", self.id())
    }
}

impl BackupKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<BackupKey> {
        Some(BackupKey(bytes.try_into().ok()?))
    }

    /// Base64url (padding optional), as `latchkey backup keygen` writes it.
    pub fn from_b64(s: &str) -> Option<BackupKey> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim().trim_end_matches('='))
            .ok()?;
        BackupKey::from_bytes(&bytes)
    }

    pub fn generate() -> BackupKey {
        let mut k = [0u8; 32];
        k.copy_from_slice(&crate::secret::random_bytes(32));
        BackupKey(k)
    }

    pub fn to_b64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 16 hex digits of HMAC-SHA256(key, label): tells keys apart, reveals nothing of them.
    pub fn id(&self) -> String {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        hex::encode(&ring::hmac::sign(&k, KEY_ID_LABEL).as_ref()[..8])
    }

    /// Whether this is the key-encryption key (which must not double as the backup key).
    pub fn is_kek(&self, kek: &super::Kek) -> bool {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        ring::hmac::sign(&k, KEY_ID_LABEL).as_ref() == kek.derive(KEY_ID_LABEL).as_slice()
    }

    /// The AES-256-GCM key of one file: HKDF-SHA256 of this key with the file's salt.
    pub fn file_key(&self, salt: &[u8], info: &[u8]) -> io::Result<LessSafeKey> {
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(&self.0);
        // 32 bytes is far below HKDF's limit of 255 blocks: this cannot fail.
        let info = [info];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| io::Error::other("key derivation failed"))?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }
}
