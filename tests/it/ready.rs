//! `GET /ready`, the readiness probe: ready while the database answers at the schema this
//! build migrates to and every signing algorithm has an active key; `503` with what is wrong
//! otherwise (e.g. a node of an older build beside a database an upgrade migrated further).

use crate::both;
use crate::common::*;
use serde_json::Value;

async fn ready(app: &TestApp) -> (u16, Value, String) {
    let r = reqwest::get(app.url("/ready")).await.unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, r.json().await.unwrap(), cache)
}

both!(
    ready_needs_the_database_at_this_builds_schema_and_active_keys,
    async |app: &TestApp| {
        let (status, body, cache) = ready(app).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "ready");
        assert_eq!(
            body["checks"],
            serde_json::json!({"database": "ok", "migrations": "ok", "signing_keys": "ok"})
        );
        assert_eq!(cache, "no-store");
        // A newer build migrated the database further: this node is not ready.
        tamper(
            app,
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('99991231000000')",
        )
        .await;
        let (status, body, _) = ready(app).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not ready");
        let m = body["checks"]["migrations"].as_str().unwrap();
        assert!(
            m.starts_with("the database is at 99991231000000, this build at 2026"),
            "{m}"
        );
        assert_eq!(body["checks"]["database"], "ok");
        tamper(
            app,
            "DELETE FROM __diesel_schema_migrations WHERE version = '99991231000000'",
        )
        .await;
        assert_eq!(ready(app).await.0, 200);
        // The liveness probe says nothing about the database.
        let r = reqwest::get(app.url("/health")).await.unwrap();
        assert_eq!(r.status(), 200);
    }
);
