//! The audit log: security events appended to `audit_events` (key lifecycle, factor
//! enrolment and removal, recovery-code use, counter regressions, policy changes). Events
//! never carry secrets, codes or tokens.

use super::schema::audit_events;
use super::{Store, StoreError, now};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

impl Store {
    /// Appends one event. `actor` is a user id, `cli` or `system`.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (actor, action, target) = (actor.to_owned(), action.to_owned(), target.to_owned());
        let details = details.to_string();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::insert_into(audit_events::table)
                    .values((
                        audit_events::id.eq(uuid::Uuid::now_v7().to_string()),
                        audit_events::at.eq(t),
                        audit_events::actor.eq(&actor),
                        audit_events::action.eq(&action),
                        audit_events::target.eq(&target),
                        audit_events::details.eq(&details),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Events about one target, oldest first.
    pub async fn audit_for(&self, target: &str) -> Result<Vec<AuditEvent>, StoreError> {
        let db = self.db.clone();
        let target = target.to_owned();
        let rows: Vec<(i64, String, String, String, String)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => audit_events::table
                    .filter(audit_events::target.eq(&target))
                    .order((audit_events::at.asc(), audit_events::id.asc()))
                    .select((
                        audit_events::at,
                        audit_events::actor,
                        audit_events::action,
                        audit_events::target,
                        audit_events::details,
                    ))
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                at: r.0,
                actor: r.1,
                action: r.2,
                target: r.3,
                details: r.4,
            })
            .collect())
    }
}
