//! Intrusion detection and alerting, on every node: every `detection.interval_secs` the node
//! reads the sign-in and refusal entries appended to the audit log since its last read (the
//! log is shared, so every node sees every node's traffic), runs the detectors
//! ([`crate::protocol::detect`]) over the last window, and raises what they find. An alert is
//! one `security_alerts` row (its key makes it once per detector, subject and window, on
//! whichever node is first), a `security.alert` audit entry, a log line, a Prometheus counter
//! and one webhook delivery per receiver ([`webhook`]), all committed together; deliveries
//! are then sent (and retried) by whichever node takes them.

pub mod webhook;

use crate::audit::{Action, Event};
use crate::protocol::detect::{Finding, Kind, Seen, Thresholds, detect};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::alerts::{Entry, NewAlert, Order};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The background task: scan, raise, deliver, every `detection.interval_secs`.
pub async fn run(state: Arc<AppState>) {
    let mut scanner = Scanner::default();
    let sender = match webhook::Sender::new(&state.config.alerts) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: cannot set up their HTTP client");
            None
        }
    };
    let every = Duration::from_secs(state.config.detection.interval_secs);
    // Two loops: a slow receiver never delays detection.
    let detecting = async {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = scanner.scan(&state).await {
                tracing::error!(error = %e, "intrusion detection: reading the audit log failed; will retry");
            }
        }
    };
    let delivering = async {
        let Some(sender) = &sender else {
            return std::future::pending::<()>().await;
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sender.deliver_due(&state).await;
        }
    };
    tokio::join!(detecting, delivering);
}

/// What one node has read of the audit log.
#[derive(Default)]
pub struct Scanner {
    /// Entries of the current window, in seq order.
    window: VecDeque<Seen>,
    last_seq: i64,
    /// Keys of the findings this node already raised (or saw raised), with when.
    raised: HashMap<String, i64>,
    /// Alerts this node raised per detector and window: at most [`MAX_PER_WINDOW`] each.
    per_window: HashMap<(&'static str, i64), usize>,
}

/// At most this many entries per read: a scan catches up over several ticks.
const READ_LIMIT: i64 = 50_000;

/// The most alerts one detector raises per window on one node: an attacker with many
/// addresses (each a spraying subject) cannot turn into as many pages; the window's
/// `credential_stuffing` alert and the audit log tell the rest.
pub const MAX_PER_WINDOW: usize = 20;

impl Scanner {
    /// Reads what is new, detects, raises. Returns the alerts this node raised.
    pub async fn scan(&mut self, state: &AppState) -> Result<Vec<Finding>, StoreError> {
        let d = &state.config.detection;
        let now = crate::store::now();
        let since = now - d.window_secs;
        let actions = Kind::ACTIONS.iter().map(|a| (*a).to_owned()).collect();
        let entries = state
            .store
            .audit_entries(
                actions,
                self.last_seq,
                since,
                Order::OldestFirst,
                READ_LIMIT,
            )
            .await?;
        for e in &entries {
            self.last_seq = self.last_seq.max(e.seq);
            if let Some(s) = seen(e) {
                self.window.push_back(s);
            }
        }
        while self.window.front().is_some_and(|s| s.at <= since) {
            self.window.pop_front();
        }
        self.raised.retain(|_, at| *at > now - 2 * d.window_secs);
        let t = Thresholds {
            window_secs: d.window_secs,
            spraying_accounts: d.spraying_accounts,
            stuffing_failures: d.stuffing_failures,
            stuffing_sources: d.stuffing_sources,
            stuffing_accounts: d.stuffing_accounts,
            stuffing_failure_percent: d.stuffing_failure_percent,
            brute_force_failures: d.brute_force_failures,
        };
        let seen: &[Seen] = self.window.make_contiguous();
        let mut raised = Vec::new();
        let mut suppressed: HashMap<&'static str, Vec<String>> = HashMap::new();
        let bucket = now / d.window_secs;
        self.per_window.retain(|(_, b), _| *b >= bucket - 1);
        for f in detect(seen, &t, now) {
            if self.raised.contains_key(&f.key) {
                continue;
            }
            let n = self
                .per_window
                .entry((f.detector.as_str(), bucket))
                .or_default();
            if *n >= MAX_PER_WINDOW {
                suppressed
                    .entry(f.detector.as_str())
                    .or_default()
                    .push(f.subject.clone());
                continue;
            }
            if raise(state, &f, now).await? {
                *n += 1;
                raised.push(f.clone());
            }
            self.raised.insert(f.key, now);
        }
        // Past the limit, one more alert per detector and window names who else was found.
        for (detector, subjects) in suppressed {
            let key = format!("{detector}:more:{bucket}");
            if self.raised.contains_key(&key) {
                continue;
            }
            tracing::warn!(
                detector,
                more = subjects.len(),
                "more alerts of this detector in this window are summed up in one"
            );
            let f = Finding {
                detector: crate::protocol::detect::Detector::ALL
                    .iter()
                    .copied()
                    .find(|d| d.as_str() == detector)
                    .unwrap_or(crate::protocol::detect::Detector::CredentialStuffing),
                subject: format!("{} more", subjects.len()),
                key: key.clone(),
                target: "unknown".into(),
                source: None,
                user_agent: None,
                details: serde_json::json!({
                    "more": subjects.len(),
                    "subjects": subjects.iter().take(50).collect::<Vec<_>>(),
                }),
            };
            if raise(state, &f, now).await? {
                raised.push(f);
            }
            self.raised.insert(key, now);
        }
        Ok(raised)
    }
}

/// An audit entry as the detectors read it (its details hold `source`, `user_agent` and, for
/// a failed sign-in, the `account` pseudonym).
fn seen(e: &Entry) -> Option<Seen> {
    let kind = Kind::of(&e.action)?;
    let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
    let text = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    // Grouped as the budgets group them: an IPv6 source by its /64.
    let source = text("source").map(|s| match s.parse::<std::net::IpAddr>() {
        Ok(ip) => crate::protocol::throttle::source_of(ip),
        Err(_) => s,
    });
    Some(Seen {
        seq: e.seq,
        at: e.at,
        kind,
        target: e.target.clone(),
        source,
        user_agent: text("user_agent"),
        account: text("account"),
    })
}

/// Raises `f` unless another node did: the alert, its deliveries and its audit entry in one
/// transaction, then the log line and the counter.
pub(crate) async fn raise(state: &AppState, f: &Finding, now: i64) -> Result<bool, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let detector = f.detector.as_str();
    let payload = serde_json::json!({
        "id": id,
        "type": "security.alert",
        "issuer": state.issuer,
        "detector": detector,
        "subject": f.subject,
        "at": now,
        "window_secs": state.config.detection.window_secs,
        "source": f.source,
        "user_agent": f.user_agent,
        "details": f.details,
    });
    let mut details = f.details.clone();
    details["detector"] = detector.into();
    details["subject"] = f.subject.clone().into();
    details["alert"] = id.clone().into();
    details["source"] = f.source.clone().into();
    details["user_agent"] = f.user_agent.clone().into();
    let raised = state
        .store
        .raise_alert(NewAlert {
            id,
            key: f.key.clone(),
            at: now,
            detector: detector.to_owned(),
            subject: f.subject.clone(),
            payload: payload.to_string(),
            urls: state.config.alerts.webhook_urls.clone(),
            event: Event::new("system", Action::SecurityAlert, &f.target, details),
        })
        .await?;
    if raised {
        tracing::warn!(
            detector,
            subject = %f.subject,
            source = f.source.as_deref().unwrap_or("-"),
            details = %f.details,
            "security alert"
        );
        state.metrics.alert(detector);
    }
    Ok(raised)
}
