//! Webhook deliveries: each alert is POSTed as JSON to every receiver, with
//! `Latchkey-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the shared
//! secret (a receiver recomputes it, compares in constant time and refuses an old `t`), and
//! `Latchkey-Delivery` (the same on every retry of a delivery: receivers deduplicate on it).
//! A 2xx answer delivers it; anything else (an error status, a redirect, a timeout) is
//! retried after `alerts.webhook_retry_secs`, doubling each time up to an hour, until
//! `alerts.webhook_max_attempts` attempts have failed. Each attempt's result is stored and
//! shown on the console's security page.

use crate::config::AlertsConfig;
use crate::state::AppState;
use crate::store::alerts::{Attempted, Delivery};
use std::time::Duration;

/// Deliveries taken per tick.
const BATCH: i64 = 20;
/// The longest wait between two attempts, in seconds.
const MAX_DELAY: i64 = 3600;

/// A receiver's URL as logs and pages show it: without a user, password, query or fragment
/// (which may hold a token).
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// The header value signing `body` at time `t`.
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mac = ring::hmac::sign(&key, format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.as_ref()))
}

/// The wait before the attempt after `attempts` failed ones.
pub fn retry_delay(first: i64, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    first.saturating_mul(1i64 << doublings).min(MAX_DELAY)
}

/// Sends deliveries: the HTTP client and the secret.
pub struct Sender {
    client: reqwest::Client,
    secret: String,
    max_attempts: i64,
    retry_secs: i64,
    timeout: i64,
}

impl Sender {
    /// `None` when no secret is configured (this node sends nothing; another may).
    pub fn new(c: &AlertsConfig) -> anyhow::Result<Option<Sender>> {
        let Some(secret) = c.secret()? else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(c.webhook_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Sender {
            client,
            secret,
            max_attempts: c.webhook_max_attempts,
            retry_secs: c.webhook_retry_secs,
            timeout: i64::try_from(c.webhook_timeout_secs).unwrap_or(60),
        }))
    }

    /// Sends every delivery due now that no other node has taken, all at once.
    pub async fn deliver_due(&self, state: &AppState) {
        let now = crate::store::now();
        let due = match state.store.due_deliveries(now, BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot read due deliveries; will retry");
                return;
            }
        };
        let attempts = due.into_iter().map(|d| self.attempt(state, d, now));
        futures_util::future::join_all(attempts).await;
    }

    async fn attempt(&self, state: &AppState, d: Delivery, now: i64) {
        // Taken for longer than an attempt can last: no other node sends it meanwhile.
        match state
            .store
            .claim_delivery(&d, now + self.timeout + 30)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot take a delivery; will retry");
                return;
            }
        }
        let t = crate::store::now();
        let sent = self
            .client
            .post(&d.url)
            .header("Content-Type", "application/json")
            .header(
                "Latchkey-Signature",
                signature(self.secret.as_bytes(), t, &d.payload),
            )
            .header("Latchkey-Delivery", &d.id)
            .header("Latchkey-Attempt", (d.attempts + 1).to_string())
            .body(d.payload.clone())
            .send()
            .await;
        let result = match &sent {
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            Err(e) if e.is_timeout() => "timed out".to_owned(),
            Err(e) if e.is_connect() => "could not connect".to_owned(),
            Err(_) => "request failed".to_owned(),
        };
        let done = crate::store::now();
        let attempts = d.attempts + 1;
        let outcome = if sent.as_ref().is_ok_and(|r| r.status().is_success()) {
            state.metrics.webhook("delivered");
            Attempted::Delivered { at: done, result }
        } else if attempts >= self.max_attempts {
            state.metrics.webhook("failed");
            tracing::error!(url = %redacted(&d.url), delivery = %d.id, %result, attempts, "webhook delivery failed for good");
            Attempted::Failed { result }
        } else {
            state.metrics.webhook("retry");
            let next_at = done + retry_delay(self.retry_secs, attempts);
            tracing::warn!(url = %redacted(&d.url), delivery = %d.id, %result, attempts, next_at, "webhook delivery failed; will retry");
            Attempted::Retry { next_at, result }
        };
        if let Err(e) = state.store.record_attempt(&d.id, outcome).await {
            tracing::error!(error = %e, delivery = %d.id, "webhooks: cannot record an attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body_in_hex() {
        // Checked with: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature(b"secret", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        assert_eq!(
            redacted("https://bot:s3cret@hooks.example/x?token=abc#f"),
            "https://hooks.example/x"
        );
    }

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_an_hour() {
        let d: Vec<i64> = (1..=10).map(|a| retry_delay(10, a)).collect();
        assert_eq!(d, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
    }
}
