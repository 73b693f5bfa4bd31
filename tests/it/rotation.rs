//! Signing-key rotation seen from outside: a verifier checking fresh tokens while the server
//! rotates several times (schedule shortened) sees zero failures; an emergency revocation makes
//! the revoked key's tokens fail once verifiers refetch; two server processes on one PostgreSQL
//! database agree on the keys; the `latchkey keys` commands.

use crate::common::*;
use latchkey_client::{Verifier, VerifierOptions, VerifyError};
use latchkey_server::config::{Config, KeysConfig};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn fast_keys(c: &mut Config) {
    c.keys = KeysConfig {
        // Lead 3 s against a 1 s JWKS lifetime and 1 s reload: 1 s of margin beyond the minimum
        // the configuration allows, so a loaded CI machine stays within it.
        rotation_interval_secs: 5,
        jwks_max_age_secs: 1,
        staged_lead_secs: 3,
        retire_leeway_secs: 1,
        check_interval_secs: 1,
        reload_interval_secs: 1,
    };
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let h = token.split('.').next().unwrap();
    let v: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

async fn verifier(app: &TestApp, audience: &str) -> Verifier {
    let mut opts = VerifierOptions::new(app.base.clone(), audience).any_lab();
    opts.min_refetch_interval = Duration::from_secs(1);
    Verifier::discover(opts).await.unwrap()
}

crate::both_with!(
    rotation_under_load_has_zero_verification_failures,
    fast_keys,
    async |app: &TestApp| {
        let svc = app
            .client(|c| c.grant_types = vec!["client_credentials".into()])
            .await;
        let secret = svc.client_secret.clone().unwrap();
        let v = verifier(app, &svc.client_id).await;
        let mut kids = BTreeSet::new();
        let (mut ok, mut failures) = (0, Vec::new());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(16) {
            let t = cc_token(app, &svc.client_id, &secret).await;
            kids.insert(kid_of(&t));
            match v.verify_access_token(&t).await {
                Ok(_) => ok += 1,
                Err(e) => failures.push(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            failures.is_empty(),
            "{} failures out of {}: {:?}",
            failures.len(),
            ok + failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(
            kids.len() >= 3,
            "expected several rotations, saw signing keys {kids:?}"
        );
        // The unknown-kid refetch path was not what saved us: keys were staged ahead.
        assert!(v.status().fetches as usize >= kids.len());
    }
);

fn fast_reload(c: &mut Config) {
    c.keys.jwks_max_age_secs = 1;
    c.keys.reload_interval_secs = 1;
}

crate::both_with!(
    emergency_revoke_fails_the_keys_tokens_after_refetch,
    fast_reload,
    async |app: &TestApp| {
        let svc = app
            .client(|c| c.grant_types = vec!["client_credentials".into()])
            .await;
        let secret = svc.client_secret.clone().unwrap();
        let v = verifier(app, &svc.client_id).await;
        let old = cc_token(app, &svc.client_id, &secret).await;
        v.verify_access_token(&old).await.unwrap();
        let s = &app.state;
        let successor = s
            .keys
            .revoke(&s.store, &s.kek, &kid_of(&old), "test")
            .await
            .unwrap();
        assert!(successor.is_some(), "a new key signs at once");
        let jwks: serde_json::Value = reqwest::get(app.url("/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            !jwks.to_string().contains(&kid_of(&old)),
            "gone from the JWKS at once"
        );
        let new = cc_token(app, &svc.client_id, &secret).await;
        assert_ne!(kid_of(&new), kid_of(&old));
        let deadline = Instant::now() + Duration::from_secs(6);
        loop {
            match v.verify_access_token(&old).await {
                Err(VerifyError::UnknownKey) => break,
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                other => {
                    panic!("the revoked key's token should fail after a refetch, got {other:?}")
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(6);
        while v.verify_access_token(&new).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the successor's tokens must verify"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
);

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_postgres_agree_on_rotation() {
    let kek = latchkey_server::secret::random_b64(32);
    let kek2 = kek.clone();
    let app = TestApp::with_config(Backend::Postgres, move |c| {
        fast_keys(c);
        c.keys.rotation_interval_secs = 3600;
        c.kek = Some(latchkey_server::secret::Secret::new(kek2));
    })
    .await;
    let db_url = app.state.config.database_url();
    let svc = app
        .client(|c| c.grant_types = vec!["client_credentials".into()])
        .await;
    let secret = svc.client_secret.clone().unwrap();

    // A second server process on the same database and KEK.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let env = |cmd: &mut std::process::Command| {
        cmd.env("DATABASE_URL", &db_url)
            .env("LATCHKEY_KEK", &kek)
            .env("LATCHKEY_DATA_DIR", dir.path())
            .env("LATCHKEY_ISSUER", &app.base)
            .env("LATCHKEY_KEYS__ROTATION_INTERVAL_SECS", "3600")
            .env("LATCHKEY_KEYS__JWKS_MAX_AGE_SECS", "1")
            .env("LATCHKEY_KEYS__STAGED_LEAD_SECS", "2")
            .env("LATCHKEY_KEYS__CHECK_INTERVAL_SECS", "1")
            .env("LATCHKEY_KEYS__RELOAD_INTERVAL_SECS", "1");
    };
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("serve")
        .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"));
    env(&mut cmd);
    let mut child = cmd.stderr(std::process::Stdio::null()).spawn().unwrap();
    let other = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{other}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "second process did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token_from = |base: String| {
        let (id, secret) = (svc.client_id.clone(), secret.clone());
        async move {
            let r: serde_json::Value = reqwest::Client::new()
                .post(format!("{base}/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            kid_of(r["access_token"].as_str().unwrap())
        }
    };
    let before = token_from(app.base.clone()).await;
    assert_eq!(
        token_from(other.clone()).await,
        before,
        "both sign with the same key"
    );

    // Rotate from a third process (the CLI); after the lead time both sign with the new key.
    let mut cli = std::process::Command::new(BIN);
    cli.args(["keys", "rotate", "--json"]);
    env(&mut cli);
    let out = tokio::task::spawn_blocking(move || cli.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["state"] == "staged")
            .count(),
        3
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (a, b) = (
            token_from(app.base.clone()).await,
            token_from(other.clone()).await,
        );
        if a != before && a == b {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not converge: {a} / {b} (before {before})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let jwks_a: serde_json::Value = http
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_b: serde_json::Value = http
        .get(format!("{other}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids = |j: &serde_json::Value| -> BTreeSet<String> {
        j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kids(&jwks_a), kids(&jwks_b), "both publish the same JWKS");
    assert!(
        kids(&jwks_a).contains(&before),
        "the old key is still published while retiring"
    );
    let _ = child.kill();
    let _ = child.wait();
    app.stop().await;
}

#[test]
fn keys_cli_lists_rotates_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(BIN)
            .args(args)
            .env("LATCHKEY_DATA_DIR", dir.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let listed = run(&["keys", "list", "--json"]);
    let active: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active")
        .collect();
    assert_eq!(active.len(), 3);
    assert!(
        listed.to_string().find("private").is_none(),
        "never prints private keys"
    );
    let rotated = run(&["keys", "rotate", "--json"]);
    assert_eq!(
        rotated
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["state"] == "staged")
            .count(),
        3
    );
    let kid = active[0]["kid"].as_str().unwrap();
    let revoked = run(&["keys", "revoke", kid, "--json"]);
    assert_eq!(revoked["revoked"], kid);
    assert!(revoked["successor"].is_string(), "the staged key took over");
    let after = run(&["keys", "list", "--json"]);
    assert!(!after.to_string().contains(kid));
    // KEK rotation: re-wrap under a new key, then the service runs on the new key only.
    let new_kek = dir.path().join("kek.new");
    std::fs::write(&new_kek, latchkey_server::secret::random_b64(32)).unwrap();
    let rewrapped = run(&[
        "keys",
        "rewrap",
        "--new-kek-file",
        new_kek.to_str().unwrap(),
        "--json",
    ]);
    assert!(rewrapped["rewrapped"].as_u64().unwrap() >= 3);
    let with_new = std::process::Command::new(BIN)
        .args(["keys", "list", "--json"])
        .env("LATCHKEY_DATA_DIR", dir.path())
        .env("LATCHKEY_KEK_FILE", &new_kek)
        .output()
        .unwrap();
    assert!(
        with_new.status.success(),
        "{}",
        String::from_utf8_lossy(&with_new.stderr)
    );
    let with_old = std::process::Command::new(BIN)
        .args(["keys", "list"])
        .env("LATCHKEY_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        !with_old.status.success(),
        "the old KEK no longer opens the keys"
    );
    assert!(String::from_utf8_lossy(&with_old.stderr).contains("could not be decrypted"));
    let o = std::process::Command::new(BIN)
        .args([
            "keys",
            "revoke",
            "-kids-are-base64url-and-may-start-with-a-hyphen",
        ])
        .env("LATCHKEY_KEK_FILE", &new_kek)
        .env("LATCHKEY_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "no published key with kid `-kids-are-base64url-and-may-start-with-a-hyphen`"
        )
    );
}
