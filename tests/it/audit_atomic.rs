//! An administrative change and its audit entry commit together or not at all: with a failure
//! injected into the audit append (a trigger that aborts every insert into `audit_events`),
//! every mutating admin API call answers an error and leaves the database exactly as it was,
//! and the chain still verifies. Both databases.

use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SQLITE_FAIL: &str = "CREATE TRIGGER lk_injected BEFORE INSERT ON audit_events \
     BEGIN SELECT RAISE(ABORT, 'injected'); END;";
const SQLITE_HEAL: &str = "DROP TRIGGER lk_injected;";
const PG_FAIL: &str = "CREATE FUNCTION lk_injected() RETURNS trigger LANGUAGE plpgsql AS \
     $$ BEGIN RAISE EXCEPTION 'injected'; END $$; \
     CREATE TRIGGER lk_injected BEFORE INSERT ON audit_events \
     FOR EACH ROW EXECUTE FUNCTION lk_injected();";
const PG_HEAL: &str = "DROP TRIGGER lk_injected ON audit_events; DROP FUNCTION lk_injected();";

fn is_pg(app: &TestApp) -> bool {
    app.state.config.database_url().starts_with("postgres")
}

/// Everything the calls below could change, as the API reads it, plus the audit chain's length.
async fn snapshot(app: &TestApp, token: &str) -> Value {
    let lab = &app.lab_id;
    let user = &app.user_id;
    let mut out = serde_json::Map::new();
    for path in [
        "/api/v1/labs".to_owned(),
        format!("/api/v1/labs/{lab}/members"),
        format!("/api/v1/labs/{lab}/roles"),
        format!("/api/v1/labs/{lab}/policy"),
        format!("/api/v1/labs/{lab}/invitations"),
        "/api/v1/users".to_owned(),
        format!("/api/v1/users/{user}"),
        "/api/v1/clients".to_owned(),
    ] {
        let (status, body) = call(app, Some(token), Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        out.insert(path, body);
    }
    let (chain, _) = app.state.store.audit_chain().await.unwrap();
    out.insert("audit entries".into(), json!(chain.len()));
    Value::Object(out)
}

both!(
    admin_change_and_its_audit_entry_commit_together,
    async |app: &TestApp| {
        let token = client_token(app, "*").await;
        let (lab, user) = (app.lab_id.clone(), app.user_id.clone());
        // Something to delete and to assign.
        let (s, b) = call(
            app,
            Some(&token),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/roles/reader"),
            Some(json!({"features": ["orders:read"]})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, inv) = call(
            app,
            Some(&token),
            Method::POST,
            &format!("/api/v1/labs/{lab}/invitations"),
            Some(json!({"email": "invitee@lab.example"})),
        )
        .await;
        assert!(s == 200 || s == 201, "{inv}");
        let inv_id = inv["id"].as_str().unwrap().to_owned();

        let before = snapshot(app, &token).await;
        tamper(app, if is_pg(app) { PG_FAIL } else { SQLITE_FAIL }).await;

        let calls: Vec<(Method, String, Option<Value>)> = vec![
            (
                Method::POST,
                "/api/v1/labs".into(),
                Some(json!({"name": "Lab 43"})),
            ),
            (
                Method::POST,
                format!("/api/v1/labs/{lab}/members"),
                Some(json!({"email": "newcomer@lab.example", "roles": ["reader"]})),
            ),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/roles/writer"),
                Some(json!({"features": ["orders:write"], "min_acr": "mfa"})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/labs/{lab}/roles/reader"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/policy"),
                Some(json!({"min_acr": "mfa", "grace_days": 7})),
            ),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/members/{user}/roles"),
                Some(json!({"roles": ["reader"]})),
            ),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/members/{user}/admin"),
                Some(json!({"admin": true})),
            ),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/members/{user}/features/orders:write"),
                Some(json!({"allow": true})),
            ),
            (
                Method::POST,
                format!("/api/v1/labs/{lab}/invitations"),
                Some(json!({"email": "second@lab.example"})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/labs/{lab}/invitations/{inv_id}"),
                None,
            ),
            (Method::POST, format!("/api/v1/users/{user}/disable"), None),
            (
                Method::POST,
                format!("/api/v1/users/{user}/end-sessions"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/users/{user}/reset-factors"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/users/{user}/system-admin"),
                Some(json!({"admin": true})),
            ),
            (
                Method::POST,
                "/api/v1/clients".into(),
                Some(json!({"name": "bot", "grant_types": ["client_credentials"]})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/labs/{lab}/members/{user}"),
                None,
            ),
            (Method::DELETE, format!("/api/v1/users/{user}"), None),
        ];
        for (method, path, body) in calls {
            let (status, answer) = call(app, Some(&token), method.clone(), &path, body).await;
            assert!(
                status >= 500,
                "{method} {path} must fail when its audit entry cannot be written: {status} {answer}"
            );
            assert_eq!(
                snapshot(app, &token).await,
                before,
                "{method} {path} left a change without its audit entry"
            );
        }

        tamper(app, if is_pg(app) { PG_HEAL } else { SQLITE_HEAL }).await;
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        assert!(latchkey_server::audit::chain::verify(&chain).is_none());
        // Healed, the same change goes through with its entry.
        let (s, b) = call(
            app,
            Some(&token),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/policy"),
            Some(json!({"min_acr": "mfa"})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        assert_eq!(
            chain.len(),
            before["audit entries"].as_u64().unwrap() as usize + 1
        );
        assert_eq!(
            chain.last().unwrap().entry.action,
            latchkey_server::audit::Action::PolicyLab.as_str()
        );
        assert!(latchkey_server::audit::chain::verify(&chain).is_none());
    }
);

// Sign-in's writes that change state carry their entry in the same transaction too: a spent
// recovery code and the code lock that follows too many wrong codes. With the append failing, neither
// change stands; healed, each commits with its entry.
both!(
    signin_change_and_its_audit_entry_commit_together,
    async |app: &TestApp| {
        use latchkey_server::audit::{Action, Event};
        use latchkey_server::protocol::throttle::{Attempt, CodeLock};
        use latchkey_server::signin::throttle;
        let who = requester("192.0.2.1");
        let store = &app.state.store;
        let user = app.user_id.clone();
        let seeded = Event::new("test", Action::RecoveryCodesGenerated, &user, json!({}));
        let code = app.state.recovery_key.hash(&user, "abcd-efgh-ijkl");
        store
            .replace_recovery_codes(&user, vec![code.clone()], &seeded)
            .await
            .unwrap();
        let now = 1_900_000_000;
        for _ in 1..5 {
            assert_eq!(
                throttle::code_fail(&app.state, &user, &who, now)
                    .await
                    .unwrap(),
                None
            );
        }
        let entries = store.audit_chain().await.unwrap().0.len();

        tamper(app, if is_pg(app) { PG_FAIL } else { SQLITE_FAIL }).await;
        let recovery_event = {
            let user = user.clone();
            move |left| {
                Event::new(
                    &user,
                    Action::LoginRecoveryCode,
                    &user,
                    json!({"unused_left": left}),
                )
            }
        };
        assert!(
            store
                .use_recovery_code(&user, code.clone(), vec![], recovery_event.clone())
                .await
                .is_err(),
            "a recovery code cannot be spent without its entry"
        );
        assert_eq!(store.recovery_status(&user).await.unwrap().unused, 1);
        assert!(
            throttle::code_fail(&app.state, &user, &who, now)
                .await
                .is_err(),
            "a lock cannot start without its entry"
        );
        assert_eq!(
            store.failures(&user, Attempt::Code).await.unwrap(),
            Some((4, 0)),
            "the failed lock left the count and the lock as they were"
        );

        tamper(app, if is_pg(app) { PG_HEAL } else { SQLITE_HEAL }).await;
        assert!(
            store
                .use_recovery_code(&user, code, vec![], recovery_event)
                .await
                .unwrap()
        );
        assert_eq!(store.recovery_status(&user).await.unwrap().unused, 0);
        assert_eq!(
            throttle::code_fail(&app.state, &user, &who, now)
                .await
                .unwrap(),
            Some(CodeLock::For(30))
        );
        let (chain, _) = store.audit_chain().await.unwrap();
        let actions: Vec<&str> = chain[entries..]
            .iter()
            .map(|e| e.entry.action.as_str())
            .collect();
        assert_eq!(
            actions,
            [
                Action::LoginRecoveryCode.as_str(),
                Action::FactorLocked.as_str()
            ]
        );
        let details: Value = serde_json::from_str(&chain[entries].entry.details).unwrap();
        assert_eq!(details["unused_left"], 0);
        assert!(latchkey_server::audit::chain::verify(&chain).is_none());
    }
);

// Accepting an invitation creates an account, a membership and roles with its
// `invitation.accept` entry in one transaction: with the append failing, the acceptance
// fails, no account exists and the link still works; healed, it goes through with its entry.
both!(
    invitation_acceptance_and_its_audit_entry_commit_together,
    async |app: &TestApp| {
        let token = client_token(app, "*").await;
        let lab = &app.lab_id;
        let (s, inv) = call(
            app,
            Some(&token),
            Method::POST,
            &format!("/api/v1/labs/{lab}/invitations"),
            Some(json!({"email": "invitee@lab.example"})),
        )
        .await;
        assert_eq!(s, 200, "{inv}");
        let path = inv["link"]
            .as_str()
            .unwrap()
            .strip_prefix(&app.base)
            .unwrap()
            .to_owned();
        let b = Browser::new(app);
        let html = b.get(&path).await.text().await.unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let entries = app.state.store.audit_chain().await.unwrap().0.len();

        tamper(app, if is_pg(app) { PG_FAIL } else { SQLITE_FAIL }).await;
        let r = b
            .post_form(&path, &[("csrf", &csrf), ("password", PASSWORD)])
            .await;
        assert!(r.status().is_server_error(), "{}", r.status());
        assert!(
            app.state
                .store
                .find_user_by_email("invitee@lab.example")
                .await
                .unwrap()
                .is_none(),
            "no account without its entry"
        );
        let (_, open) = call(
            app,
            Some(&token),
            Method::GET,
            &format!("/api/v1/labs/{lab}/invitations"),
            None,
        )
        .await;
        assert_eq!(
            open.as_array().unwrap().len(),
            1,
            "the invitation is still open"
        );

        tamper(app, if is_pg(app) { PG_HEAL } else { SQLITE_HEAL }).await;
        assert_eq!(b.get(&path).await.status(), 200, "the link still works");
        let r = b
            .post_form(&path, &[("csrf", &csrf), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status(), 200);
        let u = app
            .state
            .store
            .find_user_by_email("invitee@lab.example")
            .await
            .unwrap()
            .unwrap();
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        // The acceptance, then (the link was shown to an administrator, so it confirms
        // nothing) the confirmation link mailed to the address.
        assert_eq!(chain.len(), entries + 2);
        let accepted = &chain[entries].entry;
        assert_eq!(
            (accepted.actor.as_str(), accepted.action.as_str()),
            (u.id.as_str(), "invitation.accept")
        );
        assert_eq!(chain[entries + 1].entry.action, "email.confirm_requested");
        assert!(latchkey_server::audit::chain::verify(&chain).is_none());
    }
);
