//! The key cache behind a verifier. It honours the source's `Cache-Control` lifetime and
//! refreshes in the background once 80% of it has passed; on an unknown `kid` it refetches at
//! most once per `min_refetch_interval` (a client spraying random kids cannot make it hammer
//! the issuer); when the issuer is unreachable it keeps serving the last good keys and says so.

use crate::keys::{FetchError, JwkSet, KeySource, VerificationKey};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How the key cache is doing, for health checks and dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// Keys currently usable.
    pub keys: usize,
    /// Time since the last successful fetch.
    pub age: Option<Duration>,
    /// True when the cached keys are past their lifetime (the issuer could not be reached).
    pub stale: bool,
    /// The last fetch error, cleared by the next success.
    pub last_error: Option<String>,
    /// Fetches attempted so far.
    pub fetches: u64,
}

struct State {
    keys: Arc<JwkSet>,
    fetched_at: Option<Instant>,
    expires_at: Instant,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

pub(crate) struct KeyCache {
    source: Box<dyn KeySource>,
    state: RwLock<State>,
    fetch_lock: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
    fetches: AtomicU64,
    default_max_age: Duration,
    min_refetch_interval: Duration,
    max_stale: Duration,
}

/// Longest lifetime accepted from `Cache-Control`: a key set is rechecked at least daily.
const MAX_AGE_CAP: Duration = Duration::from_secs(24 * 3600);

/// Clears the in-flight flag however the background refresh ends (even if its runtime dies).
struct Refreshing(Arc<KeyCache>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

impl KeyCache {
    pub(crate) fn new(
        source: Box<dyn KeySource>,
        default_max_age: Duration,
        min_refetch_interval: Duration,
        max_stale: Duration,
    ) -> KeyCache {
        KeyCache {
            source,
            state: RwLock::new(State {
                keys: Arc::new(JwkSet::default()),
                fetched_at: None,
                expires_at: Instant::now(),
                last_attempt: None,
                last_error: None,
            }),
            fetch_lock: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            default_max_age,
            min_refetch_interval,
            max_stale,
        }
    }

    pub(crate) fn seed(&self, keys: JwkSet, max_age: Duration) {
        if let Ok(mut s) = self.state.write() {
            let now = Instant::now();
            s.keys = Arc::new(keys);
            s.fetched_at = Some(now);
            s.expires_at = now
                .checked_add(max_age)
                .unwrap_or(now + Duration::from_secs(1 << 30));
        }
    }

    /// A cached key, without waiting; schedules a background refresh when the set is aging.
    /// Keys more than `max_stale` past their lifetime are not used: a revoked key must not stay
    /// trusted forever just because the issuer cannot be reached.
    pub(crate) fn cached(self: &Arc<Self>, kid: &str) -> Option<Arc<VerificationKey>> {
        let (key, refresh_due) = {
            let s = self.state.read().ok()?;
            let now = Instant::now();
            let lifetime = s.fetched_at.map_or(Duration::ZERO, |f| {
                s.expires_at.saturating_duration_since(f)
            });
            let refresh_at = s.fetched_at.map_or(now, |f| f + lifetime.mul_f32(0.8));
            let too_stale = s
                .expires_at
                .checked_add(self.max_stale)
                .is_some_and(|limit| now > limit);
            let key = if too_stale {
                None
            } else {
                s.keys.get(kid).cloned()
            };
            // Retry spacing for a refresh that is due: never more often than a fifth of the
            // key set's lifetime, nor than `min_refetch_interval` (so a short-lived key set still
            // refreshes in time, and an unreachable issuer is not hammered).
            let spacing = self.min_refetch_interval.min(lifetime / 5);
            (key, (now >= refresh_at).then_some(spacing))
        };
        if let Some(spacing) = refresh_due
            && !self.refreshing.swap(true, Ordering::AcqRel)
        {
            let guard = Refreshing(self.clone());
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = guard.0.fetch(Some(spacing)).await;
                    drop(guard);
                });
            }
        }
        key
    }

    /// A key, refetching once (rate-limited) when the kid is unknown.
    pub(crate) async fn get(self: &Arc<Self>, kid: &str) -> Option<Arc<VerificationKey>> {
        if let Some(k) = self.cached(kid) {
            return Some(k);
        }
        let _ = self.fetch(Some(self.min_refetch_interval)).await;
        self.cached(kid)
    }

    /// Fetches the key set. With `Some(spacing)`, does nothing when the last attempt was less
    /// than `spacing` ago. Failures keep the previous keys.
    pub(crate) async fn fetch(&self, spacing: Option<Duration>) -> Result<(), FetchError> {
        let _guard = self.fetch_lock.lock().await;
        if let Some(spacing) = spacing {
            let recent = self
                .state
                .read()
                .ok()
                .and_then(|s| s.last_attempt)
                .is_some_and(|t| t.elapsed() < spacing);
            if recent {
                return Ok(());
            }
        }
        if let Ok(mut s) = self.state.write() {
            s.last_attempt = Some(Instant::now());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.source.fetch().await;
        let mut s = self
            .state
            .write()
            .map_err(|_| FetchError::new("key cache lock poisoned"))?;
        match result {
            Ok(jwks) => {
                let now = Instant::now();
                let max_age = jwks
                    .max_age
                    .unwrap_or(self.default_max_age)
                    .clamp(Duration::from_secs(1), MAX_AGE_CAP);
                s.keys = Arc::new(jwks.keys);
                s.fetched_at = Some(now);
                s.expires_at = now
                    .checked_add(max_age)
                    .unwrap_or(now + Duration::from_secs(1 << 30));
                s.last_error = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching the issuer's keys failed; keeping the last good set");
                s.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    pub(crate) fn status(&self) -> KeyStatus {
        let fetches = self.fetches.load(Ordering::Relaxed);
        match self.state.read() {
            Ok(s) => KeyStatus {
                keys: s.keys.len(),
                age: s.fetched_at.map(|f| f.elapsed()),
                stale: Instant::now() > s.expires_at,
                last_error: s.last_error.clone(),
                fetches,
            },
            Err(_) => KeyStatus {
                keys: 0,
                age: None,
                stale: true,
                last_error: Some("key cache lock poisoned".into()),
                fetches,
            },
        }
    }
}
