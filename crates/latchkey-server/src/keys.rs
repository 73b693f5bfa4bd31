//! The service's signing keys: loaded from the store, unsealed with the KEK, created on first
//! start (one active key per algorithm: RS256 for ID tokens by default, ES256 for access
//! tokens, EdDSA for clients that choose it), rotated on schedule or on demand
//! (`protocol::rotation` decides, the store applies under a lock), and reloaded periodically so
//! every node follows what any node did.

use crate::config::Config;
use crate::crypto::jwk::PublicJwk;
use crate::crypto::{Kek, SigningKey};
use crate::protocol::rotation::{Action, Policy};
use crate::store::keys::{Applied, KeyRow};
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

fn key_err(kid: &str, reason: impl ToString) -> KeysError {
    KeysError::Key {
        kid: kid.to_owned(),
        reason: reason.to_string(),
    }
}

/// A consistent snapshot: the keys that sign, and every key a verifier may meet.
#[derive(Debug, Default)]
pub struct KeySet {
    active: HashMap<SigningAlg, Arc<SigningKey>>,
    published: Vec<PublicJwk>,
    /// (kid, state) of every published key: what a reload compares.
    fingerprint: Vec<(String, String)>,
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

/// Shared, swappable key set (a rotation replaces the snapshot atomically).
#[derive(Clone)]
pub struct Keys {
    current: Arc<RwLock<Arc<KeySet>>>,
    /// Unsealed private keys by kid, so reloads don't decrypt and parse again.
    unsealed: Arc<RwLock<HashMap<String, Arc<SigningKey>>>>,
}

/// A freshly generated key, sealed, ready for the store.
pub fn new_sealed_key(alg: SigningAlg, kek: &Kek) -> Result<KeyRow, KeysError> {
    let (key, der) = SigningKey::generate(alg).map_err(|e| key_err("-", e))?;
    let t = now();
    Ok(KeyRow {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        state: "staged".into(),
        private_key: kek.seal(key.kid().as_bytes(), &der),
        public_jwk: serde_json::to_string(&key.jwk).unwrap_or_default(),
        created_at: t,
        activate_at: None,
        activated_at: Some(t),
        retired_at: None,
    })
}

async fn generate(
    algs: Vec<SigningAlg>,
    kek: Arc<Kek>,
) -> Result<HashMap<SigningAlg, KeyRow>, KeysError> {
    tokio::task::spawn_blocking(move || {
        algs.into_iter()
            .map(|alg| new_sealed_key(alg, &kek).map(|k| (alg, k)))
            .collect::<Result<HashMap<_, _>, _>>()
    })
    .await
    .map_err(|e| key_err("-", e))?
}

/// The rotation policy the configuration implies. A retiring key stays published for the
/// longest lifetime any token it signed can have: the largest of the configured lifetimes and
/// the largest per-client access-token lifetime provisioning allows (so lowering a client's
/// lifetime later cannot strand tokens it already holds), plus leeway.
pub fn policy(config: &Config) -> Policy {
    let t = &config.tokens;
    Policy {
        interval: config.keys.rotation_interval_secs,
        lead: config.keys.staged_lead_secs,
        retire_after: t
            .access_token_ttl_secs
            .max(t.id_token_ttl_secs)
            .max(crate::provision::MAX_CLIENT_ACCESS_TOKEN_TTL)
            + config.keys.retire_leeway_secs,
    }
}

impl Keys {
    /// Loads the keys, creating any missing active key first.
    pub async fn load_or_create(store: &Store, kek: &Arc<Kek>) -> Result<Keys, KeysError> {
        let rows = store.list_keys().await?;
        let missing: Vec<SigningAlg> = SigningAlg::ALL
            .into_iter()
            .filter(|alg| {
                !rows
                    .iter()
                    .any(|r| r.alg == alg.as_str() && r.state == "active")
            })
            .collect();
        for (_, mut row) in generate(missing, kek.clone()).await? {
            row.state = "active".into();
            store.insert_active_key_if_missing(row).await?;
        }
        let keys = Keys {
            current: Arc::new(RwLock::new(Arc::new(KeySet::default()))),
            unsealed: Arc::new(RwLock::new(HashMap::new())),
        };
        keys.reload(store, kek).await?;
        Ok(keys)
    }

    /// Rebuilds the snapshot from the database when the set of keys or their states changed.
    pub async fn reload(&self, store: &Store, kek: &Kek) -> Result<bool, KeysError> {
        let rows = store.list_keys().await?;
        let fingerprint: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.kid.clone(), r.state.clone()))
            .collect();
        if self.current().fingerprint == fingerprint && !fingerprint.is_empty() {
            return Ok(false);
        }
        let mut set = KeySet {
            fingerprint,
            ..KeySet::default()
        };
        let cache = self.unsealed.read().map(|c| c.clone()).unwrap_or_default();
        let mut fresh = HashMap::new();
        for row in rows {
            let alg: SigningAlg = row.alg.parse().map_err(|e| key_err(&row.kid, e))?;
            let jwk: PublicJwk =
                serde_json::from_str(&row.public_jwk).map_err(|e| key_err(&row.kid, e))?;
            if row.state == "active" {
                let key = match cache.get(&row.kid) {
                    Some(k) => k.clone(),
                    None => {
                        let der = kek
                            .open(row.kid.as_bytes(), &row.private_key)
                            .map_err(|e| key_err(&row.kid, e))?;
                        let key =
                            SigningKey::from_pkcs8(alg, &der).map_err(|e| key_err(&row.kid, e))?;
                        if key.jwk != jwk {
                            return Err(key_err(
                                &row.kid,
                                "private key does not match its published JWK",
                            ));
                        }
                        Arc::new(key)
                    }
                };
                fresh.insert(row.kid.clone(), key.clone());
                set.active.insert(alg, key);
            }
            set.published.push(jwk);
        }
        if let Ok(mut c) = self.unsealed.write() {
            *c = fresh;
        }
        if let Ok(mut cur) = self.current.write() {
            *cur = Arc::new(set);
        }
        Ok(true)
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// One rotation step (scheduled, or `manual` for `latchkey keys rotate`), then a reload.
    pub async fn rotate(
        &self,
        config: &Config,
        store: &Store,
        kek: &Arc<Kek>,
        manual: bool,
        actor: &str,
    ) -> Result<Applied, KeysError> {
        let policy = policy(config);
        let t = now();
        // Plan once without keys to learn what to generate (key generation, RSA especially,
        // stays outside the lock), then apply under the lock with the keys prepared.
        let infos: Vec<_> = store
            .list_keys()
            .await?
            .iter()
            .filter_map(KeyRow::info)
            .collect();
        let plan = if manual {
            crate::protocol::rotation::plan_manual(&infos, policy, t)
        } else {
            crate::protocol::rotation::plan(&infos, policy, t)
        };
        let algs: Vec<SigningAlg> = plan
            .iter()
            .filter_map(|a| match a {
                Action::Stage { alg, .. } => Some(*alg),
                _ => None,
            })
            .collect();
        if plan.is_empty() {
            return Ok(Applied::default());
        }
        let prepared = generate(algs, kek.clone()).await?;
        let applied = store
            .rotate_keys(policy, manual, t, actor, prepared)
            .await?;
        for a in &applied.actions {
            tracing::info!(action = ?a, "signing-key rotation");
        }
        self.reload(store, kek).await?;
        Ok(applied)
    }

    /// Emergency revocation of `kid`; returns the kid that now signs in its place, if any.
    pub async fn revoke(
        &self,
        store: &Store,
        kek: &Arc<Kek>,
        kid: &str,
        actor: &str,
    ) -> Result<Option<String>, KeysError> {
        let rows = store.list_keys().await?;
        let row = rows.iter().find(|r| r.kid == kid).ok_or_else(|| {
            KeysError::Store(StoreError::NotFound(format!(
                "no published key with kid `{kid}`"
            )))
        })?;
        let alg: SigningAlg = row.alg.parse().map_err(|e| key_err(kid, e))?;
        let mut replacement = generate(vec![alg], kek.clone())
            .await?
            .remove(&alg)
            .ok_or_else(|| key_err(kid, "no replacement generated"))?;
        replacement.state = "active".into();
        let successor = store.revoke_key(kid, replacement, now(), actor).await?;
        tracing::warn!(kid, successor = ?successor, "signing key revoked");
        self.reload(store, kek).await?;
        Ok(successor)
    }
}

impl Keys {
    /// An empty key set, for the command line's state (`App::for_command_line`): it signs
    /// nothing and publishes nothing.
    pub fn unloaded() -> Keys {
        Keys {
            current: Arc::new(RwLock::new(Arc::new(KeySet::default()))),
            unsealed: Arc::new(RwLock::new(HashMap::new())),
        }
    }
}
