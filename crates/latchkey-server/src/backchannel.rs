//! OpenID Connect Back-Channel Logout 1.0, the sending side. When a session ends (sign-out at
//! `/logout`, the user ending it on the account page, an administrator ending the user's
//! sessions, disabling or erasing the account), the transaction that ends it queues one
//! delivery per client that got tokens from it and registered a `backchannel_logout_uri`
//! (`crate::store::logout_deliveries`). Every node then sends what is due: a POST of
//! `logout_token=<JWT>` (section 2.5) to the client's `backchannel_logout_uri` as it is at
//! that attempt (a client deleted, disabled or without one since is sent nothing), the token
//! signed at each attempt with the client's ID token algorithm and naming both the user
//! (`sub`) and the session (`sid`, as in its ID tokens). A 2xx answer delivers it; anything else (an error status, a redirect, a timeout)
//! is retried after `backchannel_logout.retry_secs`, doubling up to an hour, until
//! `backchannel_logout.max_attempts` attempts have failed. Each attempt's result is stored
//! (the console's client page lists them), logged and counted.

use crate::alerts::webhook::{redacted, retry_delay};
use crate::state::AppState;
use crate::store::logout_deliveries::{Attempted, LogoutDelivery};
use crate::token::jwt::{LogoutInput, logout_token};
use std::sync::Arc;
use std::time::Duration;

/// Attempts in flight on one node at most: a receiver that hangs holds one of these for up
/// to `backchannel_logout.timeout_secs`, never the whole queue.
const IN_FLIGHT: usize = 32;

/// The background task: every `backchannel_logout.interval_ms`, start an attempt for each
/// due delivery (as many as free slots); attempts run on their own, so one slow receiver does
/// not hold back the next tick.
pub async fn run(state: Arc<AppState>) {
    let sender = match Sender::new(&state) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout disabled: cannot set up its HTTP client");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let every = Duration::from_millis(state.config.backchannel_logout.interval_ms);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let free = slots.available_permits();
        if free == 0 {
            continue;
        }
        let now = crate::store::now();
        let limit = i64::try_from(free).unwrap_or(1);
        let due = match state.store.due_logouts(now, limit).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "back-channel logout: cannot read due deliveries; will retry");
                continue;
            }
        };
        for d in due {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break;
            };
            let (sender, state) = (sender.clone(), state.clone());
            tokio::spawn(async move {
                sender.attempt(&state, d, now).await;
                drop(slot);
            });
        }
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
        let sent = self.send(state, &d).await;
        let done = crate::store::now();
        let attempts = d.attempts + 1;
        let max = state.config.backchannel_logout.max_attempts;
        let url = redacted(&d.url);
        let outcome = match sent {
            Sent::Answered(result) if result.starts_with("HTTP 2") => {
                state.metrics.backchannel_logout("delivered");
                tracing::info!(client = %d.client_id, session = %d.session_id, %url, "logout token delivered");
                Attempted::Delivered { at: done, result }
            }
            Sent::Dropped(result) => {
                state.metrics.backchannel_logout("failed");
                tracing::warn!(client = %d.client_id, session = %d.session_id, %result, "back-channel logout dropped");
                Attempted::Failed { result }
            }
            Sent::Answered(result) | Sent::NoAnswer(result) if attempts >= max => {
                state.metrics.backchannel_logout("failed");
                tracing::error!(client = %d.client_id, session = %d.session_id, %url, %result, attempts, "back-channel logout failed for good");
                Attempted::Failed { result }
            }
            Sent::Answered(result) | Sent::NoAnswer(result) => {
                state.metrics.backchannel_logout("retry");
                let retry = state.config.backchannel_logout.retry_secs;
                let next_at = done + retry_delay(retry, attempts);
                tracing::warn!(client = %d.client_id, session = %d.session_id, %url, %result, attempts, next_at, "back-channel logout failed; will retry");
                Attempted::Retry { next_at, result }
            }
        };
        if let Err(e) = state.store.record_logout_attempt(&d.id, outcome).await {
            tracing::error!(error = %e, delivery = %d.id, "back-channel logout: cannot record an attempt");
        }
    }

    /// One POST of a fresh logout token to the client's `backchannel_logout_uri` as it is now:
    /// a client deleted or disabled since, or that no longer has one, is not sent anything.
    async fn send(&self, state: &AppState, d: &LogoutDelivery) -> Sent {
        let client = match state.client(&d.client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Sent::Dropped("the client is deleted or disabled".to_owned()),
            Err(_) => return Sent::NoAnswer("database unavailable".to_owned()),
        };
        let Some(url) = client.backchannel_logout_uri.as_deref() else {
            return Sent::Dropped("the client no longer has a backchannel_logout_uri".to_owned());
        };
        let token = logout_token(
            &state.keys.current(),
            client.id_token_alg,
            &LogoutInput {
                issuer: &state.issuer,
                client_id: &d.client_id,
                subject: &d.user_id,
                sid: &d.session_id,
                now: crate::store::now(),
            },
        );
        let token = match token {
            Ok(t) => t,
            Err(e) => return Sent::NoAnswer(format!("cannot sign: {e}")),
        };
        let sent = self
            .client
            .post(url)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match sent {
            Ok(r) => Sent::Answered(format!("HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Sent::NoAnswer("timed out".to_owned()),
            Err(e) if e.is_connect() => Sent::NoAnswer("could not connect".to_owned()),
            Err(_) => Sent::NoAnswer("request failed".to_owned()),
        }
    }
}

/// What one attempt came to, before the retry policy.
enum Sent {
    /// The client answered with this status (`HTTP 204`).
    Answered(String),
    /// No answer: why (retried).
    NoAnswer(String),
    /// Not sent, for good: why.
    Dropped(String),
}
