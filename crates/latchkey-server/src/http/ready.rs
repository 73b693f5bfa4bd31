//! `GET /ready`: whether this node should receive traffic (a load balancer's or Kubernetes'
//! readiness probe), beside `GET /health` (the process answers). Ready means: the database
//! answers within two seconds, its schema is the one this build migrates to (not older, and
//! not newer: a node of an older version beside upgraded ones is taken out), and every
//! signing algorithm has an active key. `200 {"status":"ready","checks":{…}}` or
//! `503 {"status":"not ready","checks":{…}}`, each check `"ok"` or what is wrong. It reveals
//! no secret and needs no credentials.

use super::State;
use crate::store::latest_migration;
use actix_web::HttpResponse;
use latchkey_core::SigningAlg;
use serde_json::{Value, json};

/// How long the database may take to answer a probe.
const DATABASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /ready`.
pub async fn ready(state: State) -> HttpResponse {
    let want = latest_migration(state.store.is_sqlite());
    let (database, migrations) =
        match tokio::time::timeout(DATABASE_WAIT, state.store.schema_version()).await {
            Err(_) => (
                "no answer within 2 seconds".to_owned(),
                "unknown".to_owned(),
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the database does not answer");
                ("unreachable".to_owned(), "unknown".to_owned())
            }
            Ok(Ok(have)) => {
                let have = have.unwrap_or_default();
                let m = if have == want {
                    "ok".to_owned()
                } else {
                    format!("the database is at {have}, this build at {want}")
                };
                ("ok".to_owned(), m)
            }
        };
    let set = state.keys.current();
    let missing: Vec<&str> = SigningAlg::ALL
        .into_iter()
        .filter(|a| set.signer(*a).is_err())
        .map(|a| a.as_str())
        .collect();
    let keys = if missing.is_empty() {
        "ok".to_owned()
    } else {
        format!("no active signing key for {}", missing.join(", "))
    };
    let checks = json!({"database": database, "migrations": migrations, "signing_keys": keys});
    let ok = checks
        .as_object()
        .is_some_and(|c| c.values().all(|v| v == &Value::from("ok")));
    let body = json!({"status": if ok { "ready" } else { "not ready" }, "checks": checks});
    let mut resp = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.insert_header(("Cache-Control", "no-store")).json(body)
}
