//! Retention: deletes what can no longer be used, so the database does not grow with every
//! login. Authorization codes, sessions, grants (with their refresh tokens, by cascade),
//! login flows and throttle counters (windows are at most a day) are kept for a grace period
//! after they expire or are revoked, long enough to answer a late replay with "already used"
//! rather than "unknown". Security alerts (and their webhook deliveries, by cascade) are kept
//! for [`ALERT_DAYS`]; the audit log keeps its own entry of each for as long as it keeps entries.
//! Mailed links go after the same grace; sent and failed messages, and back-channel logout
//! deliveries, after [`MAIL_DAYS`].

use super::schema::{
    account_links, authorization_codes as ac, client_assertions, device_authorizations,
    dpop_proofs, grants, login_flows, logout_deliveries, mail_outbox, security_alerts, sessions,
    throttle_counters, webhook_deliveries,
};
use super::{Store, StoreError};
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

/// How long dead rows are kept, in seconds.
pub const GRACE_SECS: i64 = 24 * 3600;

/// How long security alerts and their delivery records are kept, in days.
pub const ALERT_DAYS: i64 = 90;

/// How long sent and failed messages stay listed in the outbox, in days.
pub const MAIL_DAYS: i64 = 30;

/// Rows deleted by one purge.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub codes: usize,
    pub grants: usize,
    pub sessions: usize,
    pub flows: usize,
    /// Throttle counters whose window began before the grace period.
    pub throttle_counters: usize,
    /// Security alerts older than [`ALERT_DAYS`].
    pub alerts: usize,
    /// Mailed links expired for longer than the grace period.
    pub links: usize,
    /// Sent and failed messages older than [`MAIL_DAYS`].
    pub mail: usize,
    /// Records of used client assertions (`jti`) whose assertion has expired: it is refused
    /// for its `exp` already, so no grace applies.
    pub client_assertions: usize,
    /// Device authorizations (RFC 8628) past their expiry: nothing polls them any more.
    pub device_authorizations: usize,
    /// DPoP proofs too old to be accepted (RFC 9449): their `jti` need not be remembered.
    pub dpop_proofs: usize,
    /// Back-channel logout deliveries done (delivered or failed) more than [`MAIL_DAYS`] ago.
    pub logout_deliveries: usize,
}

impl Store {
    /// Deletes codes, grants, sessions and flows dead for longer than [`GRACE_SECS`] at `now`.
    pub async fn purge_expired(&self, now: i64) -> Result<Purged, StoreError> {
        let db = self.db.clone();
        let before = now - GRACE_SECS;
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let codes = diesel::delete(ac::table.filter(ac::expires_at.lt(before)))
                    .execute(conn)
                    .await?;
                let grants = diesel::delete(grants::table.filter(
                    grants::expires_at.lt(before).or(grants::revoked_at.lt(before)),
                ))
                .execute(conn)
                .await?;
                let sessions = diesel::delete(sessions::table.filter(
                    sessions::expires_at.lt(before).or(sessions::ended_at.lt(before)),
                ))
                .execute(conn)
                .await?;
                let flows = diesel::delete(login_flows::table.filter(login_flows::expires_at.lt(before)))
                    .execute(conn)
                    .await?;
                let throttle_counters = diesel::delete(
                    throttle_counters::table.filter(throttle_counters::window_start.lt(before)),
                )
                .execute(conn)
                .await?;
                let old = now - ALERT_DAYS * 86_400;
                let old_alerts = security_alerts::table
                    .filter(security_alerts::at.lt(old))
                    .select(security_alerts::id);
                diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::alert_id.eq_any(old_alerts)))
                    .execute(conn)
                    .await?;
                let alerts = diesel::delete(security_alerts::table.filter(security_alerts::at.lt(old)))
                    .execute(conn)
                    .await?;
                let links = diesel::delete(account_links::table.filter(account_links::expires_at.lt(before)))
                    .execute(conn)
                    .await?;
                let mail = diesel::delete(
                    mail_outbox::table
                        .filter(mail_outbox::state.eq_any(["sent", "failed"]))
                        .filter(mail_outbox::created_at.lt(now - MAIL_DAYS * 86_400)),
                )
                .execute(conn)
                .await?;
                let client_assertions = diesel::delete(
                    client_assertions::table.filter(client_assertions::expires_at.lt(now)),
                )
                .execute(conn)
                .await?;
                let device_authorizations = diesel::delete(
                    device_authorizations::table.filter(device_authorizations::expires_at.lt(before)),
                )
                .execute(conn)
                .await?;
                let dpop_proofs = diesel::delete(dpop_proofs::table.filter(dpop_proofs::expires_at.lt(now)))
                    .execute(conn)
                    .await?;
                let logout_deliveries = diesel::delete(
                    logout_deliveries::table
                        .filter(logout_deliveries::status.eq_any(["delivered", "failed"]))
                        .filter(logout_deliveries::created_at.lt(now - MAIL_DAYS * 86_400)),
                )
                .execute(conn)
                .await?;
                Ok(Purged {
                    codes, grants, sessions, flows, throttle_counters, alerts, links, mail,
                    client_assertions, device_authorizations, dpop_proofs, logout_deliveries,
                })
            })
        })
        .await
    }
}
