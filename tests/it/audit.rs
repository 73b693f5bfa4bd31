//! The tamper-evident audit log: the chain verifies after real activity; altering, deleting,
//! reordering or inserting rows directly in the database is caught at the first bad entry (on
//! both databases, and by `latchkey audit verify`); and no entry carries a secret.

use crate::both;
use crate::common::*;
use latchkey_core::Acr;
use latchkey_server::audit::chain;

async fn first_break(app: &TestApp) -> Option<chain::Break> {
    let (chain, _) = app.state.store.audit_chain().await.unwrap();
    chain::verify(&chain)
}

/// Real activity: policy changes, a TOTP enrolment, recovery codes, a step-up, key events.
async fn activity(app: &TestApp) -> (String, Vec<String>) {
    let store = &app.state.store;
    store
        .audit(latchkey_server::audit::Event::new(
            "cli",
            latchkey_server::audit::Action::PolicyLab,
            &app.lab_id,
            serde_json::json!({"min_acr": "pwd"}),
        ))
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
        .set_lab_policy(&app.lab(), Some(Acr::Mfa), None, None, &[])
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

/// Verifies the chain from its latest checkpoint under `kek`.
async fn break_under(app: &TestApp, kek: &latchkey_server::crypto::Kek) -> Option<chain::Break> {
    let snap = app.state.store.audit_snapshot().await.unwrap();
    chain::verify_with_checkpoints(&snap.checkpoints, &snap.chain, &chain::checkpoint_key(kek))
}

async fn checked(app: &TestApp) -> Option<chain::Break> {
    break_under(app, &app.state.kek).await
}

/// A few policy events, so the chain has something to prune; returns the newest `seq`.
async fn some_events(app: &TestApp, n: usize) -> i64 {
    for i in 0..n {
        app.state
            .store
            .audit(latchkey_server::audit::Event::new(
                "cli",
                latchkey_server::audit::Action::PolicyLab,
                &app.lab_id,
                serde_json::json!({"min_acr": "pwd", "i": i}),
            ))
            .await
            .unwrap();
    }
    let (chain, _) = app.state.store.audit_chain().await.unwrap();
    chain.last().unwrap().entry.seq
}

/// Prunes everything written so far except the newest entry; returns the checkpoint.
async fn prune_all(app: &TestApp) -> chain::Checkpoint {
    app.state
        .store
        .prune_audit(
            latchkey_server::store::now() + 10,
            chain::checkpoint_key(&app.state.kek),
            "cli",
        )
        .await
        .unwrap()
        .expect("something to prune")
}

both!(prune_keeps_the_chain_verifiable, async |app: &TestApp| {
    let store = &app.state.store;
    let key = || chain::checkpoint_key(&app.state.kek);
    let newest = some_events(app, 5).await;
    assert_eq!(
        store.prune_audit(0, key(), "cli").await.unwrap(),
        None,
        "nothing is older than 1970"
    );
    let cp = prune_all(app).await;
    assert_eq!(cp.seq, newest - 1, "the newest entry is never pruned");
    assert_eq!(cp.pruned, newest - 1);
    let snap = store.audit_snapshot().await.unwrap();
    assert_eq!(snap.checkpoints, vec![cp.clone()]);
    let seqs: Vec<i64> = snap.chain.iter().map(|s| s.entry.seq).collect();
    assert_eq!(seqs, vec![newest, newest + 1]);
    assert_eq!(snap.chain[0].prev_hash.as_deref(), Some(cp.hash.as_slice()));
    assert_eq!(snap.chain[1].entry.action, "audit.pruned");
    assert_eq!(checked(app).await, None);
    // The plain walk from entry 1 no longer holds: only the checkpoint explains the gap.
    assert!(chain::verify(&snap.chain).is_some());

    // Later entries and a second prune chain on.
    some_events(app, 3).await;
    let cp2 = prune_all(app).await;
    assert_eq!(cp2.seq - cp2.pruned, cp.seq);
    assert_eq!(store.audit_checkpoints().await.unwrap().len(), 2);
    assert_eq!(checked(app).await, None);
    some_events(app, 1).await;
    assert_eq!(checked(app).await, None);
});

both!(forged_checkpoint_is_reported, async |app: &TestApp| {
    let newest = some_events(app, 5).await;
    assert!(newest >= 6);
    // Someone with database access (not the KEK) deletes entries 1..3 and leaves a
    // checkpoint of their own making in their place.
    tamper(
        app,
        "INSERT INTO audit_checkpoints (seq, hash, pruned, created_at, mac) \
         SELECT seq, hash, 3, 0, hash FROM audit_events WHERE seq = 3; \
         DELETE FROM audit_events WHERE seq <= 3;",
    )
    .await;
    let b = checked(app).await.unwrap();
    assert_eq!(b.seq, 3);
    assert!(b.reason.contains("no valid signature"), "{b:?}");
});

both!(
    forged_checkpoint_is_reported_when_altered,
    async |app: &TestApp| {
        some_events(app, 5).await;
        let cp = prune_all(app).await;
        assert_eq!(checked(app).await, None);
        tamper(
            app,
            &format!(
                "UPDATE audit_checkpoints SET created_at = created_at + 1 WHERE seq = {}",
                cp.seq
            ),
        )
        .await;
        let b = checked(app).await.unwrap();
        assert!(b.reason.contains("no valid signature"), "{b:?}");
        // Pruning refuses to build on a broken log.
        let e = app
            .state
            .store
            .prune_audit(
                latchkey_server::store::now() + 10,
                chain::checkpoint_key(&app.state.kek),
                "cli",
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("refusing to prune"), "{e}");
    }
);

both!(deleting_a_checkpoint_is_reported, async |app: &TestApp| {
    some_events(app, 4).await;
    let first = prune_all(app).await;
    some_events(app, 2).await;
    let second = prune_all(app).await;
    assert_eq!(checked(app).await, None);

    // The older checkpoint goes: its entries are unaccounted for.
    tamper(
        app,
        &format!("DELETE FROM audit_checkpoints WHERE seq = {}", first.seq),
    )
    .await;
    let b = checked(app).await.unwrap();
    assert_eq!(b.seq, 1);
    assert!(b.reason.contains("checkpoint is missing"), "{b:?}");

    // Every checkpoint goes: the chain starts with a gap nothing explains.
    tamper(app, "DELETE FROM audit_checkpoints").await;
    let b = checked(app).await.unwrap();
    assert_eq!(b.seq, second.seq + 1);
    assert!(b.reason.contains("missing"), "{b:?}");
    assert!(b.reason.contains("no signed checkpoint"), "{b:?}");
});

both!(
    pruned_entries_cannot_be_altered_afterwards,
    async |app: &TestApp| {
        some_events(app, 4).await;
        let cp = prune_all(app).await;
        let first = cp.seq + 1;
        // The first remaining entry is re-linked to something else.
        tamper(
            app,
            &format!("UPDATE audit_events SET prev_hash = hash WHERE seq = {first}"),
        )
        .await;
        let b = checked(app).await.unwrap();
        assert_eq!(b.seq, first);
        assert!(b.reason.contains("link"), "{b:?}");
        // Or the checkpoint's hash is changed to match a rewritten history.
        tamper(
        app,
        &format!(
            "UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_checkpoints) WHERE seq = {first}; \
             UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_events WHERE seq = {first})"
        ),
    )
    .await;
        let b = checked(app).await.unwrap();
        assert!(b.reason.contains("no valid signature"), "{b:?}");
        // Deleting everything after the checkpoint is reported too.
        tamper(app, "DELETE FROM audit_events").await;
        let b = checked(app).await.unwrap();
        assert!(
            b.reason.contains("signature") || b.reason.contains("no entry follows"),
            "{b:?}"
        );
    }
);

both!(rewrap_keeps_checkpoints_valid, async |app: &TestApp| {
    some_events(app, 4).await;
    prune_all(app).await;
    some_events(app, 2).await;
    prune_all(app).await;
    let new = std::sync::Arc::new(
        latchkey_server::crypto::Kek::from_b64(&latchkey_server::secret::random_b64(32)).unwrap(),
    );
    app.state
        .store
        .rewrap_keys(
            app.state.kek.clone(),
            new.clone(),
            latchkey_server::store::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        break_under(app, &new).await,
        None,
        "valid under the new KEK"
    );
    let b = break_under(app, &app.state.kek).await.unwrap();
    assert!(b.reason.contains("no valid signature"), "{b:?}");
    let (chain, _) = app.state.store.audit_chain().await.unwrap();
    let rewrapped = chain
        .iter()
        .rev()
        .find(|s| s.entry.action == "kek.rewrapped")
        .unwrap();
    assert!(
        rewrapped.entry.details.contains("\"audit_checkpoints\":2"),
        "{:?}",
        rewrapped.entry
    );
});

/// Runs the `latchkey` binary on a data directory (SQLite, the KEK generated there).
pub(crate) mod cli {
    use serde_json::Value;
    use std::io::Write;
    use std::process::{Command, Output, Stdio};

    const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

    pub fn run(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .env("LATCHKEY_DATA_DIR", dir)
            .env("LATCHKEY_ARGON2__MEMORY_KIB", "1024")
            .env("LATCHKEY_ARGON2__ITERATIONS", "1")
            .env_remove("DATABASE_URL")
            .env_remove("LATCHKEY_KEK")
            .env_remove("LATCHKEY_KEK_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    pub fn json(o: &Output) -> Value {
        assert!(
            o.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    #[test]
    fn cli_audit_prune_then_verify_and_a_forged_checkpoint_fails_verify() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // `keys list` loads the service once: the KEK and key events appear.
        json(&run(d, &["keys", "list", "--json"], None));
        json(&run(
            d,
            &["lab", "create", "--name", "Lab 42", "--json"],
            None,
        ));
        json(&run(
            d,
            &[
                "policy",
                "set",
                "--lab",
                "Lab 42",
                "--min-acr",
                "mfa",
                "--json",
            ],
            None,
        ));
        let refused = run(d, &["audit", "prune", "--before", "last tuesday"], None);
        assert!(!refused.status.success());
        let p = json(&run(
            d,
            &["audit", "prune", "--before", "2999-01-01", "--json"],
            None,
        ));
        let through = p["through_seq"].as_i64().unwrap();
        assert!(through >= 2, "{p}");
        assert_eq!(p["pruned"].as_i64().unwrap(), through);
        let v = json(&run(d, &["audit", "verify", "--json"], None));
        assert_eq!(v["intact"], true, "{v}");
        assert_eq!(v["pruned_through"].as_i64(), Some(through));
        assert_eq!(v["first_seq"].as_i64(), Some(through + 1));
        let text = run(d, &["audit", "verify"], None);
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("pruned behind a signed checkpoint")
        );
        let none = json(&run(
            d,
            &[
                "audit",
                "prune",
                "--before",
                "1970-01-02T00:00:00Z",
                "--json",
            ],
            None,
        ));
        assert_eq!(none["pruned"], 0);

        // Forge: alter the checkpoint in the database file.
        {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut c =
                diesel::SqliteConnection::establish(d.join("latchkey.db").to_str().unwrap())
                    .unwrap();
            c.batch_execute("UPDATE audit_checkpoints SET pruned = pruned + 1")
                .unwrap();
        }
        let broken = run(d, &["audit", "verify"], None);
        assert_eq!(broken.status.code(), Some(1));
        let out = String::from_utf8_lossy(&broken.stdout);
        assert!(
            out.contains("broken") && out.contains("no valid signature"),
            "{out}"
        );
    }
}

async fn actions(app: &TestApp) -> Vec<String> {
    let (chain, _) = app.state.store.audit_chain().await.unwrap();
    chain.into_iter().map(|s| s.entry.action).collect()
}

crate::both!(
    replays_reuse_revocation_and_logout_are_audited,
    async |app: &TestApp| {
        let c = app
            .client(|c| {
                c.skip_consent = true;
            })
            .await;
        let (id, secret) = (c.client_id.clone(), c.client_secret.clone().unwrap());
        let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &id)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", "openid offline_access")
            .append_pair(
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            )
            .append_pair("code_challenge_method", "S256");
        let b = Browser::new(app);
        let back = b.login(u.as_str(), EMAIL, PASSWORD).await;
        let code = query_param(&back, "code").unwrap();
        let exchange = || {
            reqwest::Client::new()
                .post(app.url("/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", CALLBACK),
                    (
                        "code_verifier",
                        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                    ),
                ])
                .send()
        };
        let t: serde_json::Value = exchange().await.unwrap().json().await.unwrap();
        assert_eq!(exchange().await.unwrap().status(), 400, "replayed code");
        assert!(actions(app).await.contains(&"code.replayed".to_owned()));

        // A fresh grant: refresh once, reuse the old token, then revoke.
        // The session signs the second request in at once.
        let r = b.get(u.as_str()).await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let code = query_param(&back, "code").unwrap();
        let t2: serde_json::Value = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                (
                    "code_verifier",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                ),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rt = t2["refresh_token"].as_str().unwrap().to_owned();
        let refresh = |rt: String| {
            reqwest::Client::new()
                .post(app.url("/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", rt),
                ])
                .send()
        };
        assert_eq!(refresh(rt.clone()).await.unwrap().status(), 200);
        assert_eq!(refresh(rt).await.unwrap().status(), 400, "reused");
        assert!(
            actions(app)
                .await
                .contains(&"refresh.reuse_detected".to_owned())
        );
        let _ = t;
        let r = reqwest::Client::new()
            .post(app.url("/revoke"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", t2["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(actions(app).await.contains(&"token.revoked".to_owned()));

        // Signing out ends the session, audited.
        let page = b.get("/logout").await.text().await.unwrap();
        let csrf = html_input(&page, "csrf").unwrap();
        let r = b
            .post_form(
                "/logout",
                &[("csrf", csrf.as_str()), ("decision", "logout")],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert!(actions(app).await.contains(&"session.ended".to_owned()));
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        assert!(latchkey_server::audit::chain::verify(&chain).is_none());
    }
);
