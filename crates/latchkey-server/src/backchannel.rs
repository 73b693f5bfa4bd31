//! OpenID Connect Back-Channel Logout 1.0, the sending side. When a session ends (sign-out at
//! `/logout`, the user ending it on the account page, an administrator ending the user's
//! sessions, disabling or erasing the account), the transaction that ends it queues one
//! delivery per client that got tokens from it and registered a `backchannel_logout_uri`
//! (`crate::store::logout_deliveries`). Every node then sends what is due: a POST of
//! `logout_token=<JWT>` (section 2.5), the token signed at each attempt with the client's ID
//! token algorithm and naming both the user (`sub`) and the session (`sid`, as in its ID
//! tokens). A 2xx answer delivers it; anything else (an error status, a redirect, a timeout)
//! is retried after `backchannel_logout.retry_secs`, doubling up to an hour, until
//! `backchannel_logout.max_attempts` attempts have failed. Each attempt's result is stored
//! (the console's client page lists them), logged and counted.

use crate::alerts::webhook::{redacted, retry_delay};
use crate::state::AppState;
use crate::store::logout_deliveries::{Attempted, LogoutDelivery};
use crate::token::jwt::{LogoutInput, logout_token};
use std::sync::Arc;
use std::time::Duration;

/// Deliveries taken per tick.
const BATCH: i64 = 50;

/// The background task: send what is due, every `backchannel_logout.interval_ms`.
pub async fn run(state: Arc<AppState>) {
    let sender = match Sender::new(&state) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout disabled: cannot set up its HTTP client");
            return;
        }
    };
    let every = Duration::from_millis(state.config.backchannel_logout.interval_ms);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sender.deliver_due(&state).await;
    }
}

/// Sends logout tokens: the HTTP client and the retry policy.
pub struct Sender {
    client: reqwest::Client,
    timeout: i64,
}

impl Sender {
    pub fn new(state: &AppState) -> anyhow::Result<Sender> {
        let c = &state.config.backchannel_logout;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(c.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender {
            client,
            timeout: i64::try_from(c.timeout_secs).unwrap_or(60),
        })
    }

    /// Sends every delivery due now that no other node has taken, all at once.
    pub async fn deliver_due(&self, state: &AppState) {
        let now = crate::store::now();
        let due = match state.store.due_logouts(now, BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "back-channel logout: cannot read due deliveries; will retry");
                return;
            }
        };
        let attempts = due.into_iter().map(|d| self.attempt(state, d, now));
        futures_util::future::join_all(attempts).await;
    }

    async fn attempt(&self, state: &AppState, d: LogoutDelivery, now: i64) {
        // Taken for longer than an attempt can last: no other node sends it meanwhile.
        match state.store.claim_logout(&d, now + self.timeout + 30).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "back-channel logout: cannot take a delivery; will retry");
                return;
            }
        }
        let result = match self.send(state, &d).await {
            Ok(r) => r,
            Err(result) => result,
        };
        let delivered = result.starts_with("HTTP 2");
        let done = crate::store::now();
        let attempts = d.attempts + 1;
        let max = state.config.backchannel_logout.max_attempts;
        let url = redacted(&d.url);
        let outcome = if delivered {
            state.metrics.backchannel_logout("delivered");
            tracing::info!(client = %d.client_id, session = %d.session_id, %url, "logout token delivered");
            Attempted::Delivered { at: done, result }
        } else if attempts >= max {
            state.metrics.backchannel_logout("failed");
            tracing::error!(client = %d.client_id, session = %d.session_id, %url, %result, attempts, "back-channel logout failed for good");
            Attempted::Failed { result }
        } else {
            state.metrics.backchannel_logout("retry");
            let retry = state.config.backchannel_logout.retry_secs;
            let next_at = done + retry_delay(retry, attempts);
            tracing::warn!(client = %d.client_id, session = %d.session_id, %url, %result, attempts, next_at, "back-channel logout failed; will retry");
            Attempted::Retry { next_at, result }
        };
        if let Err(e) = state.store.record_logout_attempt(&d.id, outcome).await {
            tracing::error!(error = %e, delivery = %d.id, "back-channel logout: cannot record an attempt");
        }
    }

    /// One POST of a fresh logout token: `HTTP <status>`, or why there was no answer.
    async fn send(&self, state: &AppState, d: &LogoutDelivery) -> Result<String, String> {
        // The client's ID token algorithm, as it is now (a deleted client gets ES256: its
        // URL was registered when the session ended).
        let alg = match state.client(&d.client_id).await {
            Ok(Some(c)) => c.id_token_alg,
            Ok(None) => latchkey_core::SigningAlg::ES256,
            Err(_) => return Err("database unavailable".to_owned()),
        };
        let token = logout_token(
            &state.keys.current(),
            alg,
            &LogoutInput {
                issuer: &state.issuer,
                client_id: &d.client_id,
                subject: &d.user_id,
                sid: &d.session_id,
                now: crate::store::now(),
            },
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let sent = self
            .client
            .post(&d.url)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match sent {
            Ok(r) => Ok(format!("HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Err("timed out".to_owned()),
            Err(e) if e.is_connect() => Err("could not connect".to_owned()),
            Err(_) => Err("request failed".to_owned()),
        }
    }
}
