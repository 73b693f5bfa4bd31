//! "Your data" on the account page: the person downloads everything Latchkey holds about
//! them, and asks for their account's deletion, which they can cancel and which the grace
//! period completes.

use crate::common::smtp::no_tweak;
use crate::common::*;
use crate::with_mail;

with_mail!(
    a_person_downloads_their_own_data,
    no_tweak,
    async |app: &TestApp, _smtp: &SmtpServer| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let csrf = account_csrf(&b).await;
        let r = b.post_form("/account/data", &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
        );
        let data: serde_json::Value = r.json().await.unwrap();
        assert_eq!(data["user"]["email"], EMAIL);
        assert_eq!(data["user"]["id"], app.user().as_str());
        assert!(!data["sessions"].as_array().unwrap().is_empty());
        assert!(
            data["user"].get("password_hash").is_none(),
            "never the hash"
        );
        let audit = app
            .state
            .store
            .audit_for(app.user().as_str())
            .await
            .unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "user.exported" && e.details.contains("self"))
        );
        // Without the account page's CSRF token: refused.
        let r = b.post_form("/account/data", &[("csrf", "forged")]).await;
        assert_eq!(r.status(), 400);
    }
);

with_mail!(
    a_deletion_request_is_cancellable_and_the_grace_period_completes_it,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form("/account/delete", &[("csrf", &csrf), ("password", "wrong")])
            .await;
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("The current password is not correct")
        );
        let user = app
            .state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap();
        assert!(
            user.deletion_requested_at.is_none(),
            "a wrong password asks nothing"
        );
        let r = b
            .post_form(
                "/account/delete",
                &[("csrf", &csrf), ("password", PASSWORD)],
            )
            .await;
        let page = r.text().await.unwrap();
        assert!(page.contains("Your account will be deleted on"), "{page}");
        assert!(page.contains("Keep my account"), "{page}");
        let mail = smtp.wait_for(EMAIL, 1).await.remove(0);
        assert_eq!(mail.subject, "Your account will be deleted");
        // Cancelled: nothing happens when the grace period ends.
        let r = b
            .post_form("/account/delete/cancel", &[("csrf", &csrf)])
            .await;
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Your account will not be deleted")
        );
        let user = app
            .state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap();
        assert!(user.deletion_requested_at.is_none());
        let n = latchkey_server::signin::own_data::complete_due_deletions(&app.state)
            .await
            .unwrap();
        assert_eq!(n, 0);
        // Asked again, and the grace period over: erased.
        b.post_form(
            "/account/delete",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
        tamper(
            app,
            "UPDATE users SET deletion_requested_at = 1 WHERE deletion_requested_at IS NOT NULL",
        )
        .await;
        let n = latchkey_server::signin::own_data::complete_due_deletions(&app.state)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert!(
            app.state
                .store
                .find_user_by_email(EMAIL)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            b.get("/account").await.status(),
            303,
            "signed out: the account is gone"
        );
        let audit = app
            .state
            .store
            .audit_for(app.user().as_str())
            .await
            .unwrap();
        let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
        for a in [
            "user.deletion_requested",
            "user.deletion_cancelled",
            "user.erased",
        ] {
            assert!(actions.contains(&a), "{a}: {actions:?}");
        }
    }
);

with_mail!(
    a_person_made_a_system_administrator_after_asking_is_not_erased_by_the_grace_period,
    no_tweak,
    async |app: &TestApp, _smtp: &SmtpServer| {
        use latchkey_server::admin::{Admin, ops};
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let csrf = account_csrf(&b).await;
        b.post_form(
            "/account/delete",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
        ops::set_system_admin(&app.state, &Admin::cli(), &app.user(), true)
            .await
            .unwrap();
        tamper(
            app,
            "UPDATE users SET deletion_requested_at = 1 WHERE deletion_requested_at IS NOT NULL",
        )
        .await;
        let n = latchkey_server::signin::own_data::complete_due_deletions(&app.state)
            .await
            .unwrap();
        assert_eq!(n, 0, "another system administrator erases them, or nobody");
        assert!(
            app.state
                .store
                .find_user_by_email(EMAIL)
                .await
                .unwrap()
                .is_some()
        );
    }
);
