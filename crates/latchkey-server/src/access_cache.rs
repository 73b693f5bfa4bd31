//! The per-node caches behind [`crate::token::access`]: verified access tokens and live
//! grants. The rules (what is kept, for how long, what discards it) are that module's; this
//! one only holds the entries, so that [`crate::state::AppState`] can own them.

use latchkey_core::AccessTokenClaims;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Entries each cache keeps at most: past it, expired entries go, and if that frees nothing
/// the cache starts over (an attacker presenting many valid tokens only costs re-checks).
const MAX_ENTRIES: usize = 10_000;

/// The user an access token speaks for, as UserInfo releases it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// This node's caches of [`crate::token::access::check_access_token`]'s two halves (see that
/// module's docs).
#[derive(Default)]
pub(crate) struct AccessCache {
    /// SHA-256 of a token → its verified claims and the kid of the key that signed it.
    verified: RwLock<HashMap<[u8; 32], Arc<Verified>>>,
    /// Grant id → what was found live.
    live: RwLock<HashMap<String, Live>>,
}

pub(crate) struct Verified {
    pub(crate) claims: AccessTokenClaims,
    pub(crate) kid: String,
}

pub(crate) struct Live {
    pub(crate) user: Arc<Subject>,
    /// The grant's own end (a live grant expires without any change being made).
    pub(crate) grant_expires_at: i64,
    /// [`crate::store::Store::access_epoch`] read before the database was.
    pub(crate) epoch: u64,
    pub(crate) at: Instant,
}

impl AccessCache {
    pub(crate) fn verified(&self, key: &[u8; 32]) -> Option<Arc<Verified>> {
        self.verified.read().ok()?.get(key).cloned()
    }

    pub(crate) fn keep_verified(&self, key: [u8; 32], v: Verified, now: i64) {
        if let Ok(mut m) = self.verified.write() {
            if m.len() >= MAX_ENTRIES {
                m.retain(|_, v| v.claims.exp > now);
                if m.len() >= MAX_ENTRIES {
                    m.clear();
                }
            }
            m.insert(key, Arc::new(v));
        }
    }

    pub(crate) fn live(
        &self,
        grant: &str,
        epoch: u64,
        ttl: Duration,
        now: i64,
    ) -> Option<Arc<Subject>> {
        let m = self.live.read().ok()?;
        let l = m.get(grant)?;
        (l.epoch == epoch && l.at.elapsed() < ttl && l.grant_expires_at > now)
            .then(|| l.user.clone())
    }

    pub(crate) fn keep_live(&self, grant: &str, live: Live, ttl: Duration) {
        if let Ok(mut m) = self.live.write() {
            if m.len() >= MAX_ENTRIES {
                m.retain(|_, l| l.at.elapsed() < ttl);
                if m.len() >= MAX_ENTRIES {
                    m.clear();
                }
            }
            m.insert(grant.to_owned(), live);
        }
    }
}
