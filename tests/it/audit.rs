//! The tamper-evident audit log: the chain verifies after real activity; altering, deleting,
//! reordering or inserting rows directly in the database is caught at the first bad entry (on
//! both databases, and by `latchkey audit verify`); and no entry carries a secret.

use crate::both;
use crate::common::*;
use crate::mfa::{account_csrf, account_sign_in, enrol_totp};
use crate::refusals::authorize_url;
use latchkey_core::Acr;
use latchkey_server::audit_chain;

/// Runs SQL straight against the app's database, behind Latchkey's back.
async fn tamper(app: &TestApp, sql: &str) {
    let url = app.state.config.database_url();
    if url.starts_with("postgres") {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = task.await;
    } else {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let path = url.trim_start_matches("sqlite://").to_owned();
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut c = diesel::SqliteConnection::establish(&path).unwrap();
            c.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
            c.batch_execute(&sql).unwrap();
        })
        .await
        .unwrap();
    }
}

async fn first_break(app: &TestApp) -> Option<audit_chain::Break> {
    let (chain, _) = app.state.store.audit_chain().await.unwrap();
    audit_chain::verify(&chain)
}

/// Real activity: policy changes, a TOTP enrolment, recovery codes, a step-up, key events.
async fn activity(app: &TestApp) -> (String, Vec<String>) {
    let store = &app.state.store;
    store
        .audit(
            "cli",
            "policy.lab",
            &app.lab_id,
            serde_json::json!({"min_acr": "pwd"}),
        )
        .await
        .unwrap();
    let b = Browser::new(app);
    account_sign_in(&b).await;
    let key = enrol_totp(&b).await;
    let csrf = account_csrf(&b).await;
    let html = b
        .post_form("/account/recovery-codes", &[("csrf", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("#recovery-codes code").unwrap();
    let codes: Vec<String> = doc.select(&sel).map(|e| e.text().collect()).collect();
    store
        .set_lab_policy(&app.lab_id, Some(Acr::Mfa), None, None)
        .await
        .unwrap();
    let c = app.client(|c| c.skip_consent = true).await;
    let b2 = Browser::new(app);
    let (flow, csrf) = b2.open_login(&authorize_url(app, &c.client_id, &[])).await;
    let r = b2.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    let loc = location(&r);
    let html = b2.get(&loc).await.text().await.unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    let r = b2
        .post_form(
            "/login/verify",
            &[
                ("flow", &flow),
                ("csrf", &csrf),
                ("method", "recovery"),
                ("code", &codes[0]),
            ],
        )
        .await;
    assert!(location(&r).starts_with(CALLBACK));
    (key, codes)
}

both!(
    audit_chain_catches_alteration_deletion_reordering_and_insertion,
    async |app: &TestApp| {
        activity(app).await;
        let (chain, unchained) = app.state.store.audit_chain().await.unwrap();
        assert!(chain.len() >= 8, "{} entries", chain.len());
        assert_eq!(unchained, 0);
        assert_eq!(first_break(app).await, None, "intact after real activity");

        // Altered: one entry's details changed.
        tamper(
            app,
            "UPDATE audit_events SET details = '{\"min_acr\":\"phr\"}' WHERE seq = 3",
        )
        .await;
        let b = first_break(app).await.unwrap();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("altered"), "{b:?}");
        let original = &chain[2].entry.details.replace('\'', "''");
        tamper(
            app,
            &format!("UPDATE audit_events SET details = '{original}' WHERE seq = 3"),
        )
        .await;
        assert_eq!(first_break(app).await, None, "restored");

        // Reordered: entries 4 and 5 swap places.
        tamper(
            app,
            "UPDATE audit_events SET seq = -5 WHERE seq = 5; \
             UPDATE audit_events SET seq = 5 WHERE seq = 4; \
             UPDATE audit_events SET seq = 4 WHERE seq = -5;",
        )
        .await;
        let b = first_break(app).await.unwrap();
        assert_eq!(b.seq, 4);
        assert!(b.reason.contains("link"), "{b:?}");
        tamper(
            app,
            "UPDATE audit_events SET seq = -4 WHERE seq = 4; \
             UPDATE audit_events SET seq = 4 WHERE seq = 5; \
             UPDATE audit_events SET seq = 5 WHERE seq = -4;",
        )
        .await;
        assert_eq!(first_break(app).await, None, "restored");

        // Deleted: entry 6 removed.
        tamper(app, "DELETE FROM audit_events WHERE seq = 6").await;
        let b = first_break(app).await.unwrap();
        assert_eq!(b.seq, 7);
        assert!(b.reason.contains("missing"), "{b:?}");

        // Inserted behind Latchkey's back: outside the chain, and reported.
        tamper(
            app,
            "INSERT INTO audit_events (id, at, actor, action, target, details) \
             VALUES ('forged', 1, 'cli', 'policy.lab', 'x', '{}')",
        )
        .await;
        let (_, unchained) = app.state.store.audit_chain().await.unwrap();
        assert_eq!(unchained, 1);
    }
);

both!(
    audit_entries_never_contain_secrets,
    async |app: &TestApp| {
        let (key, codes) = activity(app).await;
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        let text: String = chain.iter().map(|s| format!("{:?}\n", s.entry)).collect();
        let compact_key = key.replace(' ', "");
        for secret in [PASSWORD, compact_key.as_str()]
            .into_iter()
            .chain(codes.iter().map(String::as_str))
        {
            assert!(!text.contains(secret), "audit log contains a secret");
        }
        for prefix in ["lk_ac_", "lk_rt_", "lk_cs_", "lk_ss_", "lk_br_", "eyJ"] {
            assert!(
                !text.contains(prefix),
                "audit log contains a token ({prefix}…)"
            );
        }
        for action in [
            "factor.enrolled",
            "recovery_codes.generated",
            "login.password",
            "login.recovery_code",
            "key.created",
        ] {
            assert!(
                chain.iter().any(|s| s.entry.action == action),
                "{action} is audited"
            );
        }
    }
);
