//! The state every request handler shares: configuration, the store, the signing keys, the
//! password hasher, and small caches of what the token endpoint reads on every request.
//! Built by [`crate::app::App`]; used by every layer above the store (`signin`, `token`,
//! `admin`, `http`), and it imports none of them.

use crate::config::Config;
use crate::crypto::Kek;
use crate::keys::Keys;
use crate::password::PasswordHasher;
use crate::store::Store;
use crate::store::clients::Client;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Everything a request handler needs; shared by all workers.
pub struct AppState {
    pub config: Config,
    pub issuer: String,
    pub store: Store,
    pub keys: Keys,
    pub kek: Arc<Kek>,
    pub hasher: PasswordHasher,
    /// This node's Prometheus metrics (`/metrics`).
    pub metrics: crate::metrics::Metrics,
    pub csrf_key: ring::hmac::Key,
    /// Keys recovery codes' stored hashes (derived from the KEK, not in the database).
    pub recovery_key: crate::factors::RecoveryKey,
    /// Keys the account names in throttle counters and the known-device cookies.
    pub throttle_key: ring::hmac::Key,
    /// Password budgets this node saw spent: attempts on them are refused before any read.
    pub spent: SpentBudgets,
    pub insecure_cookies: bool,
    /// The WebAuthn relying party (passkeys and security keys); `None` when the issuer's host
    /// cannot be one (an IP address) and no `authentication.webauthn_rp_id` is set.
    pub webauthn: Option<webauthn_rs::Webauthn>,
    /// The WebAuthn attestation roots this node trusts (`amr` hwk).
    pub attestation: crate::attestation::Roots,
    pub(crate) clients: ClientCache,
    /// Verifies the admin API's bearer tokens (audience `latchkey:admin`) with
    /// `latchkey-client`, from this node's own published keys.
    pub(crate) admin_verifier: latchkey_client::Verifier,
    /// Whether a lab has any MFA policy (lab minimum or role minimums), cached like clients:
    /// refreshes of labs without policy then cost no extra query.
    pub(crate) lab_policies: RwLock<HashMap<String, (bool, Instant)>>,
    /// Wakes this node's mail sender after a commit that queued mail (`mail::wake`).
    pub mail_wake: Arc<tokio::sync::Notify>,
    /// `private_key_jwt` clients' public keys (registered, or fetched from their `jwks_uri`).
    pub(crate) client_keys: crate::client_keys::ClientKeyCache,
    /// Verified access tokens and live grants, for UserInfo and introspection.
    pub(crate) access: crate::access_cache::AccessCache,
}

/// Clients change rarely and are read on every token request; a short-lived cache keeps the
/// token endpoint off the database. A change made on another node applies within `CLIENT_TTL`.
pub(crate) struct ClientCache {
    pub(crate) map: RwLock<HashMap<String, (Arc<Client>, Instant)>>,
}

const CLIENT_TTL: Duration = Duration::from_secs(5);

/// Budgets this node saw spent (a counter at its limit), so that the attempts an attacker
/// keeps sending on them are refused from memory, without a database read. An entry is
/// trusted for at most [`SPENT_TTL`] seconds: an administrator's reset on another node, or
/// an attempt given back, applies here within that time.
#[derive(Default)]
pub struct SpentBudgets {
    /// key → (trusted until, the budget's window ends)
    map: std::sync::Mutex<HashMap<String, (i64, i64)>>,
}

/// How long a node trusts what it saw of a spent budget, in seconds.
pub const SPENT_TTL: i64 = 10;
/// Entries kept at most (an attacker with many addresses fills it; then it starts over).
const SPENT_MAX: usize = 100_000;

impl SpentBudgets {
    /// `key` is spent until its window ends at `window_end`.
    pub fn note(&self, key: &str, window_end: i64, now: i64) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= SPENT_MAX {
                m.retain(|_, (until, _)| *until > now);
                if m.len() >= SPENT_MAX {
                    m.clear();
                }
            }
            m.insert(
                key.to_owned(),
                ((now + SPENT_TTL).min(window_end), window_end),
            );
        }
    }

    /// Seconds until the longest-spent of `keys` has room again, if any is known spent.
    pub fn check<'a>(&self, keys: impl IntoIterator<Item = &'a str>, now: i64) -> Option<i64> {
        let m = self.map.lock().ok()?;
        keys.into_iter()
            .filter_map(|k| m.get(k))
            .filter(|(until, _)| *until > now)
            .map(|(_, end)| (end - now).max(1))
            .max()
    }

    /// Forgets `keys` and every key starting with one of `prefixes` (an administrator's reset).
    pub fn forget(&self, keys: &[String], prefixes: &[String]) {
        if let Ok(mut m) = self.map.lock() {
            m.retain(|k, _| !keys.contains(k) && !prefixes.iter().any(|p| k.starts_with(p)));
        }
    }
}

/// Whether a presented `client_id` could name a client at all. One with a NUL byte cannot
/// (PostgreSQL text cannot hold one, so no client has it): it is unknown without a query,
/// which PostgreSQL would fail, turning a refusal into a server error.
pub fn could_be_client_id(id: &str) -> bool {
    !id.contains('\0')
}

impl AppState {
    pub fn admin_verifier(&self) -> &latchkey_client::Verifier {
        &self.admin_verifier
    }

    /// The active client `id` names, if any: every protocol endpoint looks clients up here.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, crate::store::StoreError> {
        if !could_be_client_id(id) {
            return Ok(None);
        }
        if id == crate::store::clients::ADMIN_CLIENT_ID {
            return Ok(Some(Arc::new(crate::store::clients::console_client(
                &self.issuer,
                self.config.admin.min_acr,
            ))));
        }
        if let Ok(map) = self.clients.map.read()
            && let Some((c, at)) = map.get(id)
            && at.elapsed() < CLIENT_TTL
        {
            return Ok(Some(c.clone()));
        }
        let client_id = latchkey_core::names::ClientId::new(id);
        let Some(c) = self.store.get_client(&client_id).await? else {
            return Ok(None);
        };
        let c = Arc::new(c);
        if let Ok(mut map) = self.clients.map.write() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(id.to_owned(), (c.clone(), Instant::now()));
        }
        Ok(Some(c))
    }

    /// The account an e-mail names in throttle counters and known-device cookies:
    /// HMAC(throttle key, normalised e-mail), 16 bytes in hex. The same for every e-mail,
    /// account or not, and no e-mail is stored in clear.
    pub fn throttle_account(&self, email: &str) -> String {
        let mut msg = b"account\0".to_vec();
        msg.extend_from_slice(crate::store::users::normalize_email(email).as_bytes());
        let tag = ring::hmac::sign(&self.throttle_key, &msg);
        hex::encode(&tag.as_ref()[..16])
    }

    /// Whether a lab has any MFA policy (cached for `CLIENT_TTL`: a change applies within it
    /// on every node).
    pub async fn lab_has_policy(&self, lab: &str) -> Result<bool, crate::store::StoreError> {
        let cached = self.lab_policies.read().ok().and_then(|m| {
            m.get(lab)
                .filter(|(_, at)| at.elapsed() < CLIENT_TTL)
                .map(|e| e.0)
        });
        if let Some(h) = cached {
            return Ok(h);
        }
        let h = self.store.lab_has_policy(lab).await?;
        if let Ok(mut m) = self.lab_policies.write() {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(lab.to_owned(), (h, Instant::now()));
        }
        Ok(h)
    }

    /// What the user can authenticate with beyond a password, hardware keys judged by this
    /// node's trusted attestation roots.
    pub async fn enrolled(
        &self,
        user_id: &str,
    ) -> Result<crate::protocol::strength::Enrolled, crate::store::StoreError> {
        self.store.enrolled(user_id, &|r| self.is_hardware(r)).await
    }

    /// Whether a stored WebAuthn credential is a hardware key now.
    pub fn is_hardware(&self, r: &crate::store::factors::WebauthnRow) -> bool {
        self.attestation
            .is_hardware(r.attestation_root.as_deref(), r.backup_eligible)
    }

    /// The level MFA policy demands of a member's tokens now (`None`: no demand, or the
    /// member's enrolment grace is open). A change applies within `CLIENT_TTL` on every node.
    pub async fn policy_floor(
        &self,
        user_id: &str,
        lab: &str,
    ) -> Result<Option<latchkey_core::Acr>, crate::store::StoreError> {
        let has_policy = self.lab_has_policy(lab).await?;
        if !has_policy {
            return Ok(None);
        }
        self.store
            .policy_floor(
                user_id,
                lab,
                crate::protocol::strength::Rules::of(&self.config),
                &|r| self.is_hardware(r),
                crate::store::now(),
            )
            .await
    }
}
