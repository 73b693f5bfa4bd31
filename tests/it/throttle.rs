//! The lockout under parallel guesses (NIST SP 800-63B 5.2.2): a guess whose check finishes
//! after the lock started is answered as locked, right or wrong, so requests racing past the
//! first read learn nothing once the threshold is reached; one audit entry per lock; a success
//! clears failures that racing requests recorded. Both databases.

use crate::both;
use crate::common::*;
use latchkey_server::audit::Action;
use latchkey_server::protocol::throttle::Attempt;
use latchkey_server::signin::throttle;

both!(
    nist_800_63b_5_2_2_a_right_answer_checked_while_a_lock_started_is_refused,
    async |app: &TestApp| {
        let user = app.user_id.clone();
        let now = 1_900_000_000;
        // This attempt read an open standing, then other guesses failed while it was checked.
        assert_eq!(
            throttle::standing(&app.state, &user, Attempt::Password, now)
                .await
                .unwrap()
                .locked_for,
            None
        );
        for _ in 0..12 {
            throttle::fail(&app.state, &user, Attempt::Password, now)
                .await
                .unwrap();
        }
        assert!(
            throttle::settle(&app.state, &user, Attempt::Password, now)
                .await
                .unwrap()
                .is_err(),
            "the right password, checked while the lock started, is refused"
        );
        // One audit entry for the lock, not one per failure past the threshold.
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        let locks = chain
            .iter()
            .filter(|e| e.entry.action == Action::LoginLocked.as_str())
            .count();
        assert_eq!(locks, 1);
    }
);

both!(
    a_success_clears_failures_recorded_by_racing_requests,
    async |app: &TestApp| {
        let user = app.user_id.clone();
        let now = 1_900_000_000;
        for _ in 0..3 {
            throttle::fail(&app.state, &user, Attempt::Code, now)
                .await
                .unwrap();
        }
        assert_eq!(
            throttle::settle(&app.state, &user, Attempt::Code, now)
                .await
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            app.state
                .store
                .failures(&user, Attempt::Code)
                .await
                .unwrap(),
            None
        );
    }
);

both!(
    parallel_wrong_passwords_get_one_lock_and_never_a_wrong_answer_for_the_right_one,
    async |app: &TestApp| {
        // 30 wrong passwords and the right one at once, on one account. Before, every
        // failure past the threshold wrote its own lock entry (21 here), and the right one
        // could sign in after 30 failures were on record.
        let client = app.client(|c| c.skip_consent = true).await;
        let mut tasks = Vec::new();
        for i in 0..31 {
            let browser = Browser::new(app);
            let url = authorize_url(app, &client.client_id, &[]);
            let password = if i == 30 {
                PASSWORD.to_owned()
            } else {
                format!("wrong password number {i}")
            };
            tasks.push(tokio::spawn(async move {
                let (flow, csrf) = browser.open_login(&url).await;
                let r = browser.submit_login(&flow, &csrf, EMAIL, &password).await;
                let status = r.status().as_u16();
                (status, r.text().await.unwrap())
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        assert!(
            answers[..30].iter().all(|(s, _)| *s != 303),
            "no wrong password signs in"
        );
        let (status, body) = &answers[30];
        assert!(
            *status == 303 || body.contains("Too many failed sign-ins"),
            "the right password signs in or is told to wait, never that it is wrong: {status}"
        );
        // A success clears the count, so at most two locks: before and after it.
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        let locks = chain
            .iter()
            .filter(|e| e.entry.action == Action::LoginLocked.as_str())
            .count();
        assert!((1..=2).contains(&locks), "{locks} lock entries");
    }
);
