//! A client's life cycle through the admin API and the command line: edit, disable and
//! enable, delete (grants, refresh tokens and consents end; access tokens go inactive),
//! secret rotation with an overlap (under load: not one failed request), the expiry and the
//! minimum of administration clients, and the built-in clients that cannot be changed. Every
//! refusal changes nothing. Both databases.

use crate::both;
use crate::common::*;
use latchkey_core::names::ClientId;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A confidential client that may use client_credentials: (id, secret).
async fn service(app: &TestApp) -> (String, String) {
    let c = app
        .client(|c| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
        })
        .await;
    (c.client_id, c.client_secret.unwrap())
}

/// A client_credentials request: (status, body).
async fn cc(app: &TestApp, http: &reqwest::Client, id: &str, secret: &str) -> (u16, Value) {
    let r = http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn userinfo(app: &TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn introspect(app: &TestApp, id: &str, secret: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn audit_len(app: &TestApp) -> usize {
    app.state.store.audit_snapshot().await.unwrap().chain.len()
}

/// The `latchkey` binary on the app's database.
async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let dir = app.state.config.data_dir.clone();
    let url = app.state.config.database_url.clone();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        match url {
            Some(u) => cmd.env("DATABASE_URL", u),
            None => cmd.env_remove("DATABASE_URL"),
        };
        cmd.args(&args)
            .env("LATCHKEY_DATA_DIR", dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

both!(
    disabled_client_cannot_authenticate,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let (id, secret) = service(app).await;
        let http = reqwest::Client::new();
        assert_eq!(cc(app, &http, &id, &secret).await.0, 200);
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{id}/disable"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["disabled"], true);
        let (s, v) = cc(app, &http, &id, &secret).await;
        assert_eq!(s, 401, "{v}");
        assert_eq!(v["error"], "invalid_client");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("disabled"),
            "who proved the secret is told why: {v}"
        );
        let (s, v) = cc(app, &http, &id, "lk_cs_wrong").await;
        assert_eq!(s, 401);
        assert_eq!(v["error_description"], "client authentication failed");
        assert_eq!(last_action(app).await.1, "client.disable");
        let (s, _) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{id}/enable"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(last_action(app).await.1, "client.enable");
        assert_eq!(cc(app, &http, &id, &secret).await.0, 200);
    }
);

both!(
    disabled_client_tokens_fail_userinfo_until_it_is_enabled,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let t = user_tokens(app, &c.client_id, &secret, "openid email").await;
        let at = t["access_token"].as_str().unwrap().to_owned();
        assert_eq!(userinfo(app, &at).await, 200);
        let path = format!("/api/v1/clients/{}", c.client_id);
        let (s, _) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("{path}/disable"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(userinfo(app, &at).await, 401, "a disabled client's token");
        let now = latchkey_server::store::now();
        assert!(
            latchkey_server::token::access::check_access_token(&app.state, &at, now)
                .await
                .is_err(),
            "inactive at introspection too"
        );
        let (s, _) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("{path}/enable"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            userinfo(app, &at).await,
            200,
            "enabled again: its grants survived"
        );
    }
);

both!(
    deleted_client_tokens_fail_introspection,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let t = user_tokens(app, &c.client_id, &secret, "openid email").await;
        let at = t["access_token"].as_str().unwrap().to_owned();
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let (s, v) = introspect(app, &c.client_id, &secret, &at).await;
        assert_eq!((s, &v["active"]), (200, &json!(true)));
        let id = ClientId::new(&c.client_id);
        let before = audit_len(app).await;
        let (s, v) = call(
            app,
            Some(&admin),
            Method::DELETE,
            &format!("/api/v1/clients/{}", c.client_id),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["grants"], 1);
        assert_eq!(v["consents"], 1);
        assert_eq!(audit_len(app).await, before + 1);
        let (_, action, details) = last_action(app).await;
        assert_eq!(action, "client.delete");
        assert_eq!(details["grants"], 1);
        assert!(app.state.store.client_record(&id).await.unwrap().is_none());
        // Its access token is inactive wherever Latchkey checks one.
        let now = latchkey_server::store::now();
        assert!(
            latchkey_server::token::access::check_access_token(&app.state, &at, now)
                .await
                .is_err()
        );
        assert_eq!(userinfo(app, &at).await, 401);
        let (s, v) = introspect(app, &c.client_id, &secret, &at).await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
        // Its refresh token and grant are gone.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&c.client_id, Some(&secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (s, _) = call(
            app,
            Some(&admin),
            Method::GET,
            &format!("/api/v1/clients/{}", c.client_id),
            None,
        )
        .await;
        assert_eq!(s, 404);
    }
);

both!(
    rotated_secret_old_one_works_until_the_overlap_ends,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let (id, old) = service(app).await;
        let http = reqwest::Client::new();
        assert_eq!(
            cc(app, &http, &id, &old).await.0,
            200,
            "cached before rotation"
        );
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{id}/rotate-secret"),
            Some(json!({"overlap": "3s"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let new = v["client_secret"].as_str().unwrap().to_owned();
        assert!(new.starts_with("lk_cs_") && new != old);
        assert!(v["old_secret_until"].as_i64().is_some());
        assert_eq!(v["client"]["old_secret_until"], v["old_secret_until"]);
        let (_, action, details) = last_action(app).await;
        assert_eq!(action, "client.secret_rotate");
        assert!(!details.to_string().contains(&new), "no secret in the log");
        assert_eq!(cc(app, &http, &id, &new).await.0, 200);
        assert_eq!(cc(app, &http, &id, &old).await.0, 200, "during the overlap");
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        assert_eq!(cc(app, &http, &id, &old).await.0, 401, "after the overlap");
        assert_eq!(cc(app, &http, &id, &new).await.0, 200);
        // `0`: the old secret stops at once (a leaked secret).
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{id}/rotate-secret"),
            Some(json!({"overlap": "0"})),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["old_secret_until"], Value::Null);
        assert_eq!(cc(app, &http, &id, &new).await.0, 401);
        let newest = v["client_secret"].as_str().unwrap();
        assert_eq!(cc(app, &http, &id, newest).await.0, 200);
    }
);

both!(
    secret_rotation_under_load_has_zero_failed_requests,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let (id, old) = service(app).await;
        let secret = Arc::new(std::sync::RwLock::new(old.clone()));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let base = app.url("/token");
        let mut workers = vec![];
        for w in 0..8 {
            let (secret, ok, failed, stop) =
                (secret.clone(), ok.clone(), failed.clone(), stop.clone());
            let (base, id, old) = (base.clone(), id.clone(), old.clone());
            workers.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Half the workers switch as soon as the new secret exists, the others
                    // keep the old one a while (a fleet that rolls over slowly).
                    let s = if w % 2 == 0 || n % 3 == 0 {
                        secret.read().unwrap().clone()
                    } else {
                        old.clone()
                    };
                    n += 1;
                    let r = http
                        .post(&base)
                        .basic_auth(&id, Some(&s))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{id}/rotate-secret"),
            Some(json!({"overlap": "1h"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        *secret.write().unwrap() = v["client_secret"].as_str().unwrap().to_owned();
        let before_switch = ok.load(Ordering::Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.unwrap();
        }
        let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
        assert!(
            before_switch > 20 && ok > before_switch + 20,
            "{before_switch} {ok}"
        );
    }
);

both!(expired_admin_client_is_refused, async |app: &TestApp| {
    let now = latchkey_server::store::now();
    let c = app
        .client(|c| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
            c.admin_of = Some("*".into());
            c.expires_at = Some(now + 2);
        })
        .await;
    let secret = c.client_secret.unwrap();
    let get = |secret: String| {
        let id = c.client_id.clone();
        async move {
            reqwest::Client::new()
                .post(app.url("/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "latchkey:admin"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = get(secret.clone()).await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = call(app, Some(&token), Method::GET, "/api/v1/labs", None).await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let r = get(secret).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error_description"].as_str().unwrap().contains("expired"),
        "{v}"
    );
    let (s, v) = call(app, Some(&token), Method::GET, "/api/v1/labs", None).await;
    assert_eq!(
        s, 401,
        "the admin API refuses a token of an expired client: {v}"
    );
});

both!(
    admin_clients_expire_in_90_days_unless_told_otherwise,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let now = latchkey_server::store::now();
        let body = json!({"name": "ops", "grant_types": ["client_credentials"], "admin_of": "*"});
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            "/api/v1/clients",
            Some(body),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let t = v["client"]["expires_at"].as_i64().unwrap();
        assert!(
            (now + 90 * 86_400..now + 90 * 86_400 + 60).contains(&t),
            "{v}"
        );
        let body = json!({"name": "ops7", "grant_types": ["client_credentials"],
                          "admin_of": "*", "expires_in": "7d"});
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            "/api/v1/clients",
            Some(body),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let t = v["client"]["expires_at"].as_i64().unwrap();
        assert!(
            (now + 7 * 86_400..now + 7 * 86_400 + 60).contains(&t),
            "{v}"
        );
        // An ordinary service does not expire unless told to.
        let body = json!({"name": "svc", "grant_types": ["client_credentials"]});
        let (_, v) = call(
            app,
            Some(&admin),
            Method::POST,
            "/api/v1/clients",
            Some(body),
        )
        .await;
        assert_eq!(v["client"]["expires_at"], Value::Null);
        // The CLI: `--expires-in`.
        let o = cli(
            app,
            &[
                "client",
                "create",
                "--name",
                "bot",
                "--grant-types",
                "client_credentials",
                "--admin-of",
                "*",
                "--expires-in",
                "30d",
                "--json",
            ],
        )
        .await;
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["expires_at"].as_i64().unwrap() >= now + 30 * 86_400);
    }
);

both!(
    client_lifetime_outside_its_bounds_is_refused,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let before = audit_len(app).await;
        for (d, _) in [
            ("401d", "too long"),
            ("10s", "too short"),
            ("soon", "not a duration"),
        ] {
            let body = json!({"name": "ops", "grant_types": ["client_credentials"],
                              "admin_of": "*", "expires_in": d});
            let (s, v) = call(
                app,
                Some(&admin),
                Method::POST,
                "/api/v1/clients",
                Some(body),
            )
            .await;
            assert_eq!(
                (s, v["field"].as_str()),
                (422, Some("expires_in")),
                "{d}: {v}"
            );
        }
        let o = cli(
            app,
            &[
                "client",
                "create",
                "--name",
                "b",
                "--grant-types",
                "client_credentials",
                "--expires-in",
                "soon",
            ],
        )
        .await;
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("--expires-in: `soon` is not a duration"),
            "{}",
            stderr(&o)
        );
        assert_eq!(audit_len(app).await, before, "nothing changed");
    }
);

both!(
    admin_client_without_its_secret_is_refused,
    async |app: &TestApp| {
        let c = app
            .client(|c| {
                c.grant_types = vec!["client_credentials".into()];
                c.redirect_uris = vec![];
                c.admin_of = Some("*".into());
            })
            .await;
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "latchkey:admin"),
                ("client_id", c.client_id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert!(matches!(status, 400 | 401), "{status} {v}");
        assert!(v["error"].is_string(), "{v}");
        // The rule itself: an administration client's minimum is a secret, public ones have
        // none to give.
        use latchkey_server::store::clients::{ADMIN_CLIENT_MIN_AUTH, ClientAuthStrength};
        assert!(ADMIN_CLIENT_MIN_AUTH > ClientAuthStrength::None);
        let stored = app
            .state
            .store
            .client_record(&ClientId::new(&c.client_id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.min_auth(), ADMIN_CLIENT_MIN_AUTH);
        // And a public client cannot be given administration at registration.
        let admin = client_token(app, "*").await;
        let body = json!({"name": "spa", "public": true, "grant_types": ["client_credentials"],
                          "admin_of": "*"});
        let (s, _) = call(
            app,
            Some(&admin),
            Method::POST,
            "/api/v1/clients",
            Some(body),
        )
        .await;
        assert_eq!(s, 422);
    }
);

both!(builtin_clients_cannot_be_deleted, async |app: &TestApp| {
    assert_eq!(
        latchkey_server::store::clients::ACCOUNT_CLIENT_ID,
        latchkey_server::signin::ACCOUNT_CLIENT_ID
    );
    let admin = client_token(app, "*").await;
    let before = audit_len(app).await;
    for id in ["latchkey:admin", "latchkey:account"] {
        for (m, suffix, body) in [
            (Method::DELETE, "", None),
            (Method::POST, "/disable", None),
            (Method::POST, "/rotate-secret", Some(json!({}))),
            (Method::PATCH, "", Some(json!({"name": "mine"}))),
        ] {
            let (s, v) = call(
                app,
                Some(&admin),
                m.clone(),
                &format!("/api/v1/clients/{id}{suffix}"),
                body,
            )
            .await;
            assert_eq!(s, 409, "{m} {id}{suffix}: {v}");
            assert!(v["message"].as_str().unwrap().contains("built in"), "{v}");
        }
    }
    let o = cli(app, &["client", "delete", "--client", "latchkey:admin"]).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is built in"), "{}", stderr(&o));
    assert_eq!(audit_len(app).await, before, "nothing changed");
    let (s, v) = call(app, Some(&admin), Method::GET, "/api/v1/clients", None).await;
    assert_eq!(s, 200);
    let console = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "latchkey:admin")
        .unwrap();
    assert_eq!(console["builtin"], true);
});

both!(
    client_update_with_a_bad_redirect_uri_changes_nothing,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let c = app.client(|_| {}).await;
        let path = format!("/api/v1/clients/{}", c.client_id);
        let before = audit_len(app).await;
        for (body, field) in [
            (json!({"redirect_uris": ["not a uri"]}), "redirect_uris"),
            (json!({"redirect_uris": []}), "redirect_uris"),
            (json!({"name": "  "}), "name"),
            (
                json!({"post_logout_redirect_uris": ["not a uri"]}),
                "post_logout_redirect_uris",
            ),
            (json!({}), "body"),
            (
                json!({"grant_types": ["client_credentials"]}),
                "grant_types",
            ),
        ] {
            let (s, v) = call(app, Some(&admin), Method::PATCH, &path, Some(body.clone())).await;
            assert_eq!((s, v["field"].as_str()), (422, Some(field)), "{body}: {v}");
        }
        let o = cli(
            app,
            &[
                "client",
                "update",
                "--client",
                &c.client_id,
                "--redirect-uri",
                "not a uri",
            ],
        )
        .await;
        assert!(!o.status.success());
        assert!(stderr(&o).contains("--redirect-uri"), "{}", stderr(&o));
        assert_eq!(audit_len(app).await, before, "nothing changed");
        let (s, v) = call(app, Some(&admin), Method::GET, &path, None).await;
        assert_eq!(s, 200);
        assert_eq!(v["redirect_uris"], json!([CALLBACK]));
        // A good edit applies to the next authorization request.
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PATCH,
            &path,
            Some(json!({"name": "Invoices", "redirect_uris": ["http://127.0.0.1:9/other"]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["name"], "Invoices");
        let (_, action, details) = last_action(app).await;
        assert_eq!(action, "client.update");
        assert_eq!(details["before"]["name"], "Invoice app");
        let r = Browser::new(app)
            .get(&authorize_url(app, &c.client_id, &[]))
            .await;
        assert_ne!(r.status(), 303, "the old redirect URI no longer works");
    }
);

both!(
    rotate_secret_of_a_public_client_is_refused,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let c = app.client(|c| c.public = true).await;
        let before = audit_len(app).await;
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{}/rotate-secret", c.client_id),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, 409, "{v}");
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{}/rotate-secret", c.client_id),
            Some(json!({"overlap": "31d"})),
        )
        .await;
        assert_eq!((s, v["field"].as_str()), (422, Some("overlap")), "{v}");
        assert_eq!(audit_len(app).await, before);
    }
);

/// (method, path suffix, API body, CLI subcommand and flags, audit action)
type Step<'a> = (Method, &'a str, Option<Value>, Vec<&'a str>, &'a str);

both!(
    the_cli_and_the_api_write_the_same_client_actions,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let (a, _) = service(app).await;
        let (b, old) = service(app).await;
        let steps: [Step; 5] = [
            (
                Method::PATCH,
                "",
                Some(json!({"name": "renamed"})),
                vec!["update", "--name", "renamed"],
                "client.update",
            ),
            (
                Method::POST,
                "/disable",
                None,
                vec!["disable"],
                "client.disable",
            ),
            (
                Method::POST,
                "/enable",
                None,
                vec!["enable"],
                "client.enable",
            ),
            (
                Method::POST,
                "/rotate-secret",
                Some(json!({"overlap": "1h"})),
                vec!["rotate-secret", "--overlap", "1h"],
                "client.secret_rotate",
            ),
            (Method::DELETE, "", None, vec!["delete"], "client.delete"),
        ];
        for (m, suffix, body, args, action) in steps {
            let (s, v) = call(
                app,
                Some(&admin),
                m,
                &format!("/api/v1/clients/{a}{suffix}"),
                body,
            )
            .await;
            assert_eq!(s, 200, "{action}: {v}");
            let (actor, by_api, _) = last_action(app).await;
            assert_eq!(by_api, action);
            assert_ne!(actor, "cli");
            let mut all = vec!["client"];
            all.push(args[0]);
            all.extend(["--client", b.as_str()]);
            all.extend(&args[1..]);
            let o = cli(app, &all).await;
            assert!(o.status.success(), "{all:?}: {}", stderr(&o));
            let (actor, by_cli, _) = last_action(app).await;
            assert_eq!((actor.as_str(), by_cli.as_str()), ("cli", action));
            if action == "client.secret_rotate" {
                let out = String::from_utf8_lossy(&o.stdout).into_owned();
                assert!(out.contains("client_secret: lk_cs_"), "{out}");
                assert!(!out.contains(&old));
            }
        }
        let o = cli(app, &["audit", "verify"]).await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
);

both!(
    console_clients_page_confirms_before_deleting_and_shows_a_rotated_secret_once,
    async |app: &TestApp| {
        app.state
            .store
            .set_system_admin(&app.user(), true, &[])
            .await
            .unwrap();
        let b = Browser::new(app);
        console_token(app, &b, EMAIL).await;
        let (id, old) = service(app).await;
        let r = b.get("/admin").await;
        assert!(r.text().await.unwrap().contains("/admin/clients"));
        let r = b.get("/admin/clients").await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains(&id), "listed");
        let page = b.get(&format!("/admin/clients/{id}")).await;
        assert_eq!(page.status(), 200);
        let csrf = html_input(&page.text().await.unwrap(), "csrf").unwrap();
        // Without the CSRF token: refused, nothing changes.
        let before = audit_len(app).await;
        let r = b
            .post_form(
                &format!("/admin/clients/{id}/delete"),
                &[("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status(), 422);
        // Rotation asks first, then shows the new secret once.
        let r = b
            .post_form(
                &format!("/admin/clients/{id}/rotate-secret"),
                &[("csrf", &csrf), ("overlap", "1h")],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Rotate this client"));
        assert_eq!(audit_len(app).await, before, "asking changes nothing");
        let r = b
            .post_form(
                &format!("/admin/clients/{id}/rotate-secret"),
                &[("csrf", &csrf), ("overlap", "1h"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        let new = select_text(&html, "#client-secret").unwrap();
        assert!(new.starts_with("lk_cs_"), "{html}");
        let http = reqwest::Client::new();
        assert_eq!(cc(app, &http, &id, &new).await.0, 200);
        assert_eq!(cc(app, &http, &id, &old).await.0, 200);
        // Delete: a confirmation page, then the client is gone.
        let r = b
            .post_form(&format!("/admin/clients/{id}/delete"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Delete this client?"));
        assert!(
            app.state
                .store
                .client_record(&ClientId::new(&id))
                .await
                .unwrap()
                .is_some()
        );
        let r = b
            .post_form(
                &format!("/admin/clients/{id}/delete"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/admin/clients?notice="));
        assert!(
            app.state
                .store
                .client_record(&ClientId::new(&id))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(last_action(app).await.1, "client.delete");
        // The console client itself: a readable refusal.
        let r = b
            .post_form(
                "/admin/clients/latchkey:admin/delete",
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status(), 409);
        assert!(r.text().await.unwrap().contains("built in"));
    }
);
