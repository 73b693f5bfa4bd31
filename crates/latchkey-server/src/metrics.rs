//! The service's Prometheus metrics: one registry per node, rendered in the text exposition
//! format by `GET /metrics` (`http::metrics`). Counters are bumped where things happen
//! (requests by the `http` middleware, logins by `signin`, tokens by `token`, alerts and
//! webhook deliveries by `alerts`, logout tokens by `backchannel`); gauges that describe a state (the Argon2 queue, key
//! ages, the connection pools) are read when the endpoint is scraped. Labels only ever take
//! values from small fixed sets (route patterns, outcomes, grant types, detectors), never
//! from what a client sends, so no request can grow the registry.
//!
//! `docs/security-monitoring.md` lists every metric.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// A login's outcome, the `outcome` label of `latchkey_logins_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// A sign-in step succeeded (first factor or step-up); `acr` is the level reached.
    Success,
    /// A wrong password or code, or an unknown e-mail.
    Failure,
    /// Refused unchecked: a budget is spent or the factor is locked.
    Throttled,
    /// Refused unchecked: the hashing queue for anonymous attempts is full.
    Shed,
}

impl Login {
    fn as_str(self) -> &'static str {
        match self {
            Login::Success => "success",
            Login::Failure => "failure",
            Login::Throttled => "throttled",
            Login::Shed => "shed",
        }
    }
}

/// What `/metrics` reads at scrape time, besides the counters.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Password hashes queued or running.
    pub argon2_queue_depth: usize,
    /// `(kid, alg, state, age in seconds)` of every signing key the store holds.
    pub keys: Vec<(String, String, String, f64)>,
    /// `(pool, size, available, max)` of each database connection pool.
    pub pools: Vec<(&'static str, usize, usize, usize)>,
    /// When the newest scheduled backup that was written and verified finished (any node).
    pub last_backup: Option<i64>,
    /// Messages in the mail outbox, by state (`queued`, `sending`, `sent`, `failed`).
    pub outbox: Vec<(String, i64)>,
}

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    logins: IntCounterVec,
    tokens: IntCounterVec,
    throttled: IntCounterVec,
    alerts: IntCounterVec,
    webhooks: IntCounterVec,
    logouts: IntCounterVec,
    argon2_depth: IntGauge,
    key_age: GaugeVec,
    pool: IntGaugeVec,
    backups: IntCounterVec,
    last_backup: IntGauge,
    mail: IntCounterVec,
    outbox: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("latchkey".into()), None)?;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let http_requests = counter(
            "http_requests_total",
            "HTTP requests answered, by route pattern, method and status code.",
            &["route", "method", "status"],
        )?;
        let logins = counter(
            "logins_total",
            "Sign-in steps by outcome (success, failure, throttled, shed) and, for successes, the level reached (acr).",
            &["outcome", "acr"],
        )?;
        let tokens = counter(
            "tokens_issued_total",
            "Token responses issued, by grant type.",
            &["grant_type"],
        )?;
        let throttled = counter(
            "throttled_total",
            "Requests refused before any work, by what was spent (password, code, flows, shed).",
            &["kind"],
        )?;
        let alerts = counter(
            "security_alerts_total",
            "Security alerts raised, by detector.",
            &["detector"],
        )?;
        let webhooks = counter(
            "webhook_deliveries_total",
            "Webhook delivery attempts, by outcome (delivered, retry, failed).",
            &["outcome"],
        )?;
        let logouts = counter(
            "backchannel_logouts_total",
            "Back-channel logout delivery attempts, by outcome (delivered, retry, failed).",
            &["outcome"],
        )?;
        let backups = counter(
            "backups_total",
            "Scheduled backups this node made, by outcome (ok: written and verified; failed).",
            &["outcome"],
        )?;
        let mail = counter(
            "mail_total",
            "E-mail send attempts by this node, by outcome (sent, retry, failed).",
            &["outcome"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to response, by route pattern.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(http_duration.clone()))?;
        let argon2_depth =
            IntGauge::new("argon2_queue_depth", "Password hashes waiting or running.")?;
        registry.register(Box::new(argon2_depth.clone()))?;
        let key_age = GaugeVec::new(
            Opts::new(
                "signing_key_age_seconds",
                "Age of each signing key in the store, by kid, algorithm and state.",
            ),
            &["kid", "alg", "state"],
        )?;
        registry.register(Box::new(key_age.clone()))?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database connections by pool and state (open, idle, max).",
            ),
            &["pool", "state"],
        )?;
        registry.register(Box::new(pool.clone()))?;
        let last_backup = IntGauge::new(
            "backup_last_success_timestamp_seconds",
            "Unix time the newest scheduled backup was written and verified, by any node (0: none yet).",
        )?;
        registry.register(Box::new(last_backup.clone()))?;
        let outbox = IntGaugeVec::new(
            Opts::new(
                "mail_outbox_messages",
                "Messages in the mail outbox (every node's), by state (queued, sending, sent, failed).",
            ),
            &["state"],
        )?;
        registry.register(Box::new(outbox.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            logins,
            tokens,
            throttled,
            alerts,
            webhooks,
            logouts,
            argon2_depth,
            key_age,
            pool,
            backups,
            last_backup,
            mail,
            outbox,
        })
    }

    /// One answered request: `route` is the matched pattern (`/invite/{token}`), never the
    /// path itself.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(seconds);
    }

    /// A sign-in step's outcome; `acr` only for a success.
    pub fn login(&self, outcome: Login, acr: Option<&str>) {
        self.logins
            .with_label_values(&[outcome.as_str(), acr.unwrap_or("")])
            .inc();
    }

    /// A token response of `grant_type` (one of the grant types the token endpoint serves).
    pub fn token_issued(&self, grant_type: &'static str) {
        self.tokens.with_label_values(&[grant_type]).inc();
    }

    /// A request refused before any work.
    pub fn throttled(&self, kind: &'static str) {
        self.throttled.with_label_values(&[kind]).inc();
    }

    /// An alert raised by `detector`.
    pub fn alert(&self, detector: &str) {
        self.alerts.with_label_values(&[detector]).inc();
    }

    /// A webhook delivery attempt's outcome: `delivered`, `retry` or `failed`.
    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks.with_label_values(&[outcome]).inc();
    }

    /// A back-channel logout delivery attempt's outcome: `delivered`, `retry` or `failed`.
    pub fn backchannel_logout(&self, outcome: &'static str) {
        self.logouts.with_label_values(&[outcome]).inc();
    }

    /// A scheduled backup's outcome: `ok` or `failed`.
    pub fn backup(&self, outcome: &'static str) {
        self.backups.with_label_values(&[outcome]).inc();
    }

    /// An e-mail send attempt's outcome: `sent`, `retry` or `failed`.
    pub fn mail(&self, outcome: &'static str) {
        self.mail.with_label_values(&[outcome]).inc();
    }

    /// The text exposition format of every metric, gauges set from `snap`.
    pub fn render(&self, snap: &Snapshot) -> Result<String, prometheus::Error> {
        self.argon2_depth
            .set(i64::try_from(snap.argon2_queue_depth).unwrap_or(i64::MAX));
        self.last_backup.set(snap.last_backup.unwrap_or(0));
        self.outbox.reset();
        for st in ["queued", "sending", "sent", "failed"] {
            let n = snap
                .outbox
                .iter()
                .find(|(s, _)| s == st)
                .map_or(0, |(_, n)| *n);
            self.outbox.with_label_values(&[st]).set(n);
        }
        // Keys come and go: only the ones that exist now are reported.
        self.key_age.reset();
        for (kid, alg, state, age) in &snap.keys {
            self.key_age
                .with_label_values(&[kid.as_str(), alg.as_str(), state.as_str()])
                .set(*age);
        }
        for (name, size, available, max) in &snap.pools {
            for (state, v) in [("open", size), ("idle", available), ("max", max)] {
                self.pool
                    .with_label_values(&[*name, state])
                    .set(i64::try_from(*v).unwrap_or(i64::MAX));
            }
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_name_their_labels() -> Result<(), prometheus::Error> {
        let m = Metrics::new()?;
        m.request("/token", "POST", 200, 0.003);
        m.login(Login::Success, Some("mfa"));
        let text = m.render(&Snapshot {
            argon2_queue_depth: 3,
            ..Snapshot::default()
        })?;
        assert!(text.contains(
            r#"latchkey_http_requests_total{method="POST",route="/token",status="200"} 1"#
        ));
        assert!(text.contains(r#"latchkey_logins_total{acr="mfa",outcome="success"} 1"#));
        assert!(text.contains("latchkey_argon2_queue_depth 3"));
        Ok(())
    }
}
