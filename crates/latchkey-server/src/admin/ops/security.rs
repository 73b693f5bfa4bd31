//! The console's security page: failed sign-ins per hour and their top sources over the last
//! day (from the audit log, so every node's traffic), and the latest alerts with the status
//! of each webhook delivery. System administrators only.

use super::super::{Admin, AdminError};
use crate::state::AppState;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

type R<T> = Result<T, AdminError>;

/// Hours the chart covers.
pub const HOURS: i64 = 24;
/// Alerts listed.
const ALERTS: i64 = 50;
/// Sources listed.
const TOP: usize = 10;
/// Failed sign-ins read, newest first: past it, older hours are undercounted.
pub const READ: i64 = 100_000;

/// What the security page shows.
#[derive(Debug, Clone)]
pub struct SecurityView {
    /// Failed sign-ins in each of the last [`HOURS`] hours, oldest first: (hour start, count).
    pub failed_per_hour: Vec<(i64, i64)>,
    /// The sources with the most failed sign-ins in that time, most first.
    pub top_sources: Vec<(String, i64)>,
    /// The newest alerts, newest first.
    pub alerts: Vec<crate::store::alerts::Alert>,
    /// More failed sign-ins than [`READ`]: the oldest hours are not all counted.
    pub truncated: bool,
}

pub async fn security_overview(state: &AppState, admin: &Admin, now: i64) -> R<SecurityView> {
    admin.require_system()?;
    let first_hour = (now / 3600 - (HOURS - 1)) * 3600;
    let failed = state
        .store
        .audit_entries(
            vec!["login.failed".into()],
            0,
            first_hour - 1,
            crate::store::alerts::Order::NewestFirst,
            READ,
        )
        .await?;
    let truncated = failed.len() as i64 >= READ;
    let mut per_hour: BTreeMap<i64, i64> = (0..HOURS).map(|h| (first_hour + h * 3600, 0)).collect();
    let mut sources: BTreeMap<String, i64> = BTreeMap::new();
    for e in &failed {
        if let Some(n) = per_hour.get_mut(&(e.at / 3600 * 3600)) {
            *n += 1;
        }
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
        if let Some(s) = d.get("source").and_then(|s| s.as_str()) {
            *sources.entry(s.to_owned()).or_default() += 1;
        }
    }
    let mut top_sources: Vec<(String, i64)> = sources.into_iter().collect();
    top_sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_sources.truncate(TOP);
    Ok(SecurityView {
        failed_per_hour: per_hour.into_iter().collect(),
        top_sources,
        alerts: state.store.recent_alerts(ALERTS).await?,
        truncated,
    })
}

/// An intrusion alert as the admin API shows it (`GET /api/v1/security/alerts`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// `password_spraying`, `credential_stuffing`, `brute_force`, `code_replay`,
    /// `refresh_token_replay` or `admin_outside_policy`.
    pub detector: String,
    pub subject: String,
    /// The JSON every receiver was sent (`docs/security-monitoring.md`).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub deliveries: Vec<DeliveryView>,
}

/// One receiver's delivery of an alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The receiver, without credentials or query.
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// The last attempt's result (`HTTP 204`, `timed out`, `could not connect`).
    pub last_result: Option<String>,
    /// When a pending delivery is tried next (Unix seconds).
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// The newest alerts with their deliveries' status (system administrators).
pub async fn list_alerts(state: &AppState, admin: &Admin) -> R<Vec<AlertView>> {
    admin.require_system()?;
    Ok(state
        .store
        .recent_alerts(ALERTS)
        .await?
        .into_iter()
        .map(|a| AlertView {
            payload: serde_json::from_str(&a.payload).unwrap_or_default(),
            id: a.id,
            at: a.at,
            detector: a.detector,
            subject: a.subject,
            deliveries: a
                .deliveries
                .into_iter()
                .map(|d| DeliveryView {
                    url: crate::alerts::webhook::redacted(&d.url),
                    next_attempt_at: d.next_attempt_at.filter(|_| d.status == "pending"),
                    status: d.status,
                    attempts: d.attempts,
                    last_result: d.last_result,
                    delivered_at: d.delivered_at,
                })
                .collect(),
        })
        .collect())
}
