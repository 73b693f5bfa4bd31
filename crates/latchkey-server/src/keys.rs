//! The service's signing keys: loaded from the store, unsealed with the KEK, created on first
//! start (one active key per algorithm: RS256 for ID tokens by default, ES256 for access
//! tokens, EdDSA for clients that choose it).

use crate::crypto::jwk::PublicJwk;
use crate::crypto::{Kek, SigningKey};
use crate::store::keys::KeyRow;
use crate::store::{Store, StoreError, now};
use latchkey_core::SigningAlg;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {reason}")]
    Key { kid: String, reason: String },
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
}

/// A consistent snapshot: the keys that sign, and every key a verifier may meet.
#[derive(Debug, Default)]
pub struct KeySet {
    active: HashMap<SigningAlg, Arc<SigningKey>>,
    published: Vec<PublicJwk>,
}

impl KeySet {
    pub fn signer(&self, alg: SigningAlg) -> Result<&SigningKey, KeysError> {
        self.active
            .get(&alg)
            .map(|k| k.as_ref())
            .ok_or(KeysError::NoActiveKey(alg))
    }

    pub fn published(&self) -> &[PublicJwk] {
        &self.published
    }

    pub fn public_key(&self, kid: &str) -> Option<&PublicJwk> {
        self.published.iter().find(|k| k.kid == kid)
    }
}

/// Shared, swappable key set (rotation replaces the snapshot atomically).
#[derive(Clone)]
pub struct Keys {
    current: Arc<RwLock<Arc<KeySet>>>,
}

impl Keys {
    /// Loads the keys, creating any missing active key first.
    pub async fn load_or_create(store: &Store, kek: &Kek) -> Result<Keys, KeysError> {
        let rows = store.list_keys().await?;
        for alg in SigningAlg::ALL {
            let has = rows
                .iter()
                .any(|r| r.alg == alg.as_str() && r.state == "active");
            if !has {
                let row = tokio::task::spawn_blocking(move || new_key_row(alg))
                    .await
                    .map_err(|e| KeysError::Key {
                        kid: "-".into(),
                        reason: e.to_string(),
                    })??;
                let row = seal(row, kek);
                store.insert_active_key_if_missing(row).await?;
            }
        }
        let set = Self::build(store, kek).await?;
        Ok(Keys {
            current: Arc::new(RwLock::new(Arc::new(set))),
        })
    }

    async fn build(store: &Store, kek: &Kek) -> Result<KeySet, KeysError> {
        let mut set = KeySet::default();
        for row in store.list_keys().await? {
            let alg: SigningAlg =
                row.alg
                    .parse()
                    .map_err(|e: latchkey_core::alg::UnsupportedAlg| KeysError::Key {
                        kid: row.kid.clone(),
                        reason: e.to_string(),
                    })?;
            let jwk: PublicJwk =
                serde_json::from_str(&row.public_jwk).map_err(|e| KeysError::Key {
                    kid: row.kid.clone(),
                    reason: e.to_string(),
                })?;
            if row.state == "active" {
                let der = kek
                    .open(row.kid.as_bytes(), &row.private_key)
                    .map_err(|e| KeysError::Key {
                        kid: row.kid.clone(),
                        reason: e.to_string(),
                    })?;
                let key = SigningKey::from_pkcs8(alg, &der).map_err(|e| KeysError::Key {
                    kid: row.kid.clone(),
                    reason: e.to_string(),
                })?;
                if key.jwk != jwk {
                    return Err(KeysError::Key {
                        kid: row.kid,
                        reason: "private key does not match its published JWK".into(),
                    });
                }
                set.active.insert(alg, Arc::new(key));
            }
            set.published.push(jwk);
        }
        Ok(set)
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

struct NewKey {
    kid: String,
    alg: SigningAlg,
    der: Vec<u8>,
    jwk: String,
}

fn new_key_row(alg: SigningAlg) -> Result<NewKey, KeysError> {
    let (key, der) = SigningKey::generate(alg).map_err(|e| KeysError::Key {
        kid: "-".into(),
        reason: e.to_string(),
    })?;
    Ok(NewKey {
        kid: key.kid().to_owned(),
        alg,
        der,
        jwk: serde_json::to_string(&key.jwk).unwrap_or_default(),
    })
}

fn seal(k: NewKey, kek: &Kek) -> KeyRow {
    let t = now();
    KeyRow {
        private_key: kek.seal(k.kid.as_bytes(), &k.der),
        kid: k.kid,
        alg: k.alg.as_str().to_owned(),
        state: "active".into(),
        public_jwk: k.jwk,
        created_at: t,
        activated_at: Some(t),
    }
}
