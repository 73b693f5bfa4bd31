//! Each node's sender: claims due messages from the outbox for a lease, sends them, and
//! records the outcome. Woken at once after a local commit that queued mail
//! ([`super::wake`]), and polling every few seconds for messages other nodes queued or a
//! retry that came due.
//!
//! Delivery is at least once, and at most once as far as a database can tell: a message is
//! marked sent right after the server accepted it. A node that dies between the two leaves
//! it `sending`; when the lease runs out another node (or this one, restarted) sends it
//! again with the same `Message-ID`. Temporary failures are retried with doubling delays
//! (from [`FIRST_RETRY`] seconds up to an hour) until `mail.give_up_after_secs`; a
//! permanent refusal (5xx) fails the message at once. A failed message keeps its error for
//! the console and is counted in `/metrics`.

use super::Bodies;
use super::transport::{Outgoing, Transport};
use crate::state::AppState;
use crate::store::outbox::{Claimed, MailOutcome};
use std::sync::Arc;
use std::time::Duration;

/// Seconds before the first retry; each next one waits twice as long, at most an hour.
pub const FIRST_RETRY: i64 = 5;
/// How long a claim holds a message (a send times out after 30 s): a message whose node
/// died while sending it is sent again once this has passed.
const LEASE_SECS: i64 = 60;
/// Poll interval for messages queued elsewhere and retries that came due.
const POLL: Duration = Duration::from_secs(3);
/// Messages claimed at a time: one, so that a node that dies holds at most the message it
/// was sending.
const BATCH: i64 = 1;

/// The delay before retry number `attempts` (1 for the first).
pub fn retry_delay(attempts: i64) -> i64 {
    let shift = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    FIRST_RETRY.saturating_mul(1i64 << shift).min(3600)
}

/// Runs until the server stops.
pub async fn run(state: Arc<AppState>) {
    let transport = match Transport::new(&state.config) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "e-mail disabled: cannot set up the transport; messages stay queued");
            return;
        }
    };
    if let Transport::Outbox(dir) = &transport {
        tracing::info!(outbox = %dir.display(), "no mail.smtp_host: e-mail is written to the outbox directory");
    }
    loop {
        if let Err(e) = drain(&state, &transport).await {
            tracing::error!(error = %e, "mail: reading the outbox failed; will retry");
        }
        let _ = tokio::time::timeout(POLL, state.mail_wake.notified()).await;
    }
}

/// Sends every message due now. Also used by `latchkey mail test`.
pub async fn drain(
    state: &AppState,
    transport: &Transport,
) -> Result<usize, crate::store::StoreError> {
    let mut sent = 0;
    loop {
        let now = crate::store::now();
        let claimed = state.store.claim_mail(now, now + LEASE_SECS, BATCH).await?;
        if claimed.is_empty() {
            return Ok(sent);
        }
        for m in claimed {
            let outcome = send_one(state, transport, &m).await;
            let label = match &outcome {
                MailOutcome::Sent { .. } => {
                    sent += 1;
                    "sent"
                }
                MailOutcome::Retry { .. } => "retry",
                MailOutcome::Failed { .. } => "failed",
            };
            state.metrics.mail(label);
            if let MailOutcome::Failed { error } | MailOutcome::Retry { error, .. } = &outcome {
                tracing::warn!(id = %m.id, kind = %m.kind, outcome = label, error = %error, "mail not sent");
            }
            state.store.record_mail(&m.id, outcome).await?;
        }
    }
}

async fn send_one(state: &AppState, transport: &Transport, m: &Claimed) -> MailOutcome {
    let now = crate::store::now();
    let Some(sealed) = &m.sealed_body else {
        return MailOutcome::Failed {
            error: "the message has no body".into(),
        };
    };
    let bodies: Option<Bodies> = state
        .kek
        .open(&super::body_aad(&m.id), sealed)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(bodies) = bodies else {
        return MailOutcome::Failed {
            error: "the body does not open under this key-encryption key".into(),
        };
    };
    let result = transport
        .send(
            &state.config.mail,
            &state.issuer,
            Outgoing {
                id: &m.id,
                to: &m.to,
                subject: &m.subject,
                text: bodies.text,
                html: bodies.html,
                created_at: m.created_at,
            },
        )
        .await;
    match result {
        Ok(()) => MailOutcome::Sent { at: now },
        Err(e) if e.permanent => MailOutcome::Failed { error: e.message },
        Err(e) => {
            let next_at = now + retry_delay(m.attempts + 1);
            if next_at - m.created_at > state.config.mail.give_up_after_secs {
                MailOutcome::Failed {
                    error: format!("given up after {} attempts: {}", m.attempts + 1, e.message),
                }
            } else {
                MailOutcome::Retry {
                    next_at,
                    error: e.message,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_double_up_to_an_hour() {
        assert_eq!(super::retry_delay(1), 5);
        assert_eq!(super::retry_delay(2), 10);
        assert_eq!(super::retry_delay(5), 80);
        assert_eq!(super::retry_delay(15), 3600);
        assert_eq!(super::retry_delay(1000), 3600);
    }
}
