//! The console's security page, for system administrators: a chart of failed sign-ins per
//! hour over the last day, the sources they came from, and the latest intrusion alerts with
//! each webhook delivery's status (`admin::ops::security_overview`).

use super::pages::{Head, when};
use super::{console, html, refusal};
use crate::admin::ops;
use crate::http::State;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

/// The chart's drawing area, in SVG units.
const WIDTH: i64 = 720;
const HEIGHT: i64 = 160;

/// One hour's bar.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub count: i64,
    /// "14:00 UTC"
    pub label: String,
    /// Whether to print its label under the axis (every sixth hour).
    pub tick: bool,
}

/// An alert as the page lists it.
pub struct AlertRow {
    pub when: String,
    pub detector: String,
    pub subject: String,
    pub source: String,
    /// "delivered (HTTP 204) after 2 attempts", per receiver.
    pub deliveries: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "admin/security.html")]
pub struct SecurityPage {
    pub head: Head,
    pub bars: Vec<Bar>,
    pub total: i64,
    pub max: i64,
    pub width: i64,
    pub height: i64,
    pub top_sources: Vec<(String, i64)>,
    pub alerts: Vec<AlertRow>,
    /// The newest failed sign-ins only were read: the oldest hours are undercounted.
    pub truncated: bool,
    pub read: i64,
}

pub async fn page(state: State, req: HttpRequest) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let now = crate::store::now();
    let v = match ops::security_overview(&state, &c.admin, now).await {
        Ok(v) => v,
        Err(e) => return refusal(&req, &e),
    };
    let max = v.failed_per_hour.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let slot = WIDTH / i64::try_from(v.failed_per_hour.len().max(1)).unwrap_or(1);
    let bars = v
        .failed_per_hour
        .iter()
        .enumerate()
        .map(|(i, (hour, count))| {
            let height = if max == 0 { 0 } else { count * HEIGHT / max };
            let i = i64::try_from(i).unwrap_or(0);
            Bar {
                x: i * slot + 1,
                y: HEIGHT - height,
                width: slot - 2,
                height,
                count: *count,
                label: format!("{:02}:00", (hour % 86_400) / 3600),
                tick: (hour % 86_400) / 3600 % 6 == 0,
            }
        })
        .collect();
    let alerts = v
        .alerts
        .into_iter()
        .map(|a| {
            let p: serde_json::Value = serde_json::from_str(&a.payload).unwrap_or_default();
            AlertRow {
                when: when(a.at),
                detector: a.detector,
                subject: a.subject,
                source: p["source"].as_str().unwrap_or("—").to_owned(),
                deliveries: a
                    .deliveries
                    .into_iter()
                    .map(|d| {
                        let tries = if d.attempts == 1 {
                            "attempt"
                        } else {
                            "attempts"
                        };
                        let result = d.last_result.unwrap_or_else(|| "not tried yet".into());
                        let next = d
                            .next_attempt_at
                            .filter(|_| d.status == "pending")
                            .map(|t| format!(", next try {}", when(t)))
                            .unwrap_or_default();
                        (
                            crate::alerts::webhook::redacted(&d.url),
                            d.status,
                            format!("{result} after {} {tries}{next}", d.attempts),
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    html(&SecurityPage {
        head: c.head(&req),
        total: v.failed_per_hour.iter().map(|(_, n)| n).sum(),
        bars,
        max,
        width: WIDTH,
        height: HEIGHT,
        top_sources: v.top_sources,
        alerts,
        truncated: v.truncated,
        read: ops::READ,
    })
}
