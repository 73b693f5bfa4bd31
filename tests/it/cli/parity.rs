//! The command line and the admin API are clients of the same operations (`admin::ops`): for
//! each change both can make, both write the same audit action; for each bad input, both
//! refuse it by the same rule, in the same words (the command line naming its flag), and
//! change nothing. On SQLite and PostgreSQL, with the binary run on the app's database.

use super::*;
use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::json;

/// The binary on a running app's database (its SQLite file, or its PostgreSQL database).
async fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let dir = app.state.config.data_dir.clone();
    let url = app.state.config.database_url.clone();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_with(&dir, url.as_deref(), &args, stdin.as_deref())
    })
    .await
    .unwrap()
}

/// A system-wide automation client's admin API token.
async fn api_token(app: &TestApp) -> String {
    client_token(app, "*").await
}

async fn api(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.clone(), app.url(path))
        .bearer_auth(token);
    if method != Method::GET && method != Method::DELETE {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The audit log's entries as (actor, action), oldest first.
async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    app.state
        .store
        .audit_snapshot()
        .await
        .unwrap()
        .chain
        .into_iter()
        .map(|s| (s.entry.actor, s.entry.action))
        .collect()
}

/// The action of the newest entry, checking who wrote it.
async fn last_action(app: &TestApp, actor: &str) -> String {
    let (who, action) = audit_actions(app).await.pop().unwrap();
    assert_eq!(who, actor, "{action}");
    action
}

fn ok(o: &Output) {
    assert!(o.status.success(), "stderr: {}", stderr(o));
}

both!(
    the_cli_and_the_api_write_the_same_audit_action_for_the_same_change,
    async |app: &TestApp| {
        let token = api_token(app).await;
        let client = {
            let (s, v) = api(app, &token, Method::GET, "/api/v1/clients", Value::Null).await;
            assert_eq!(s, 200);
            v[0]["client_id"].as_str().unwrap().to_owned()
        };
        let lab = app.lab_id.clone();
        // Each pair: the API's change, then the command line's doing the same to other names.
        let mut pairs: Vec<(&str, String, String)> = vec![];
        let pair = async |what: &'static str,
                          (method, path, body): (Method, String, Value),
                          args: Vec<&str>,
                          stdin: Option<&str>| {
            let (s, v) = api(app, &token, method, &path, body).await;
            assert!((200..300).contains(&s), "{what}: {s} {v}");
            let by_api = last_action(app, &client).await;
            let o = cli(app, &args, stdin).await;
            ok(&o);
            let by_cli = last_action(app, "cli").await;
            (what, by_api, by_cli)
        };
        pairs.push(
            pair(
                "create a lab",
                (
                    Method::POST,
                    "/api/v1/labs".into(),
                    json!({"name": "Chemistry"}),
                ),
                vec!["lab", "create", "--name", "Physics"],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "create an account in a lab",
                (
                    Method::POST,
                    format!("/api/v1/labs/{lab}/members"),
                    json!({"email": "bob@lab.example", "password": PASSWORD}),
                ),
                vec![
                    "user",
                    "create",
                    "--lab",
                    "Lab 42",
                    "--email",
                    "cy@lab.example",
                    "--password-stdin",
                ],
                Some(PASSWORD),
            )
            .await,
        );
        let physics = app
            .state
            .store
            .find_lab("Physics")
            .await
            .unwrap()
            .unwrap()
            .id;
        let bob = app
            .state
            .store
            .find_user_by_email("bob@lab.example")
            .await
            .unwrap()
            .unwrap()
            .id;
        pairs.push(
            pair(
                "add an existing account to a lab",
                (
                    Method::POST,
                    format!("/api/v1/labs/{physics}/members"),
                    json!({"email": "bob@lab.example"}),
                ),
                vec!["user", "add", "--lab", "Physics", "--email", EMAIL],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "give a role a feature",
                (
                    Method::PUT,
                    format!("/api/v1/labs/{lab}/roles/clerk"),
                    json!({"features": ["orders:read"]}),
                ),
                vec![
                    "role",
                    "feature",
                    "add",
                    "--lab",
                    "Lab 42",
                    "--role",
                    "accountant",
                    "invoices:approve",
                ],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "set a role's minimum level",
                (
                    Method::PUT,
                    format!("/api/v1/labs/{lab}/roles/clerk"),
                    json!({"features": ["orders:read"], "min_acr": "mfa"}),
                ),
                vec![
                    "policy",
                    "set",
                    "--lab",
                    "Lab 42",
                    "--role",
                    "accountant",
                    "--min-acr",
                    "phr",
                ],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "give a member a role",
                (
                    Method::PUT,
                    format!("/api/v1/labs/{lab}/members/{bob}/roles"),
                    json!({"roles": ["clerk"]}),
                ),
                vec![
                    "user",
                    "role",
                    "add",
                    "--lab",
                    "Lab 42",
                    "--email",
                    EMAIL,
                    "--role",
                    "accountant",
                ],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "deny a member a feature",
                (
                    Method::PUT,
                    format!("/api/v1/labs/{lab}/members/{bob}/features/orders:read"),
                    json!({"allow": false}),
                ),
                vec![
                    "user",
                    "feature",
                    "deny",
                    "--lab",
                    "Lab 42",
                    "--email",
                    EMAIL,
                    "invoices:approve",
                ],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "make a member a lab administrator",
                (
                    Method::PUT,
                    format!("/api/v1/labs/{lab}/members/{bob}/admin"),
                    json!({"admin": true}),
                ),
                vec!["admin", "grant", "--lab", "Lab 42", "--email", EMAIL],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "make a user a system administrator",
                (
                    Method::PUT,
                    format!("/api/v1/users/{bob}/system-admin"),
                    json!({"admin": true}),
                ),
                vec!["admin", "grant", "--system", "--email", EMAIL],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "set a lab's MFA policy",
                (
                    Method::PUT,
                    format!("/api/v1/labs/{lab}/policy"),
                    json!({"min_acr": "mfa", "grace_days": 7}),
                ),
                vec![
                    "policy",
                    "set",
                    "--lab",
                    "Physics",
                    "--min-acr",
                    "mfa",
                    "--grace-logins",
                    "3",
                ],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "export a user's data",
                (
                    Method::GET,
                    format!("/api/v1/users/{bob}/export"),
                    Value::Null,
                ),
                vec!["user", "export", "--email", EMAIL],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "reset a user's sign-in attempts",
                (
                    Method::POST,
                    format!("/api/v1/users/{bob}/reset-attempts"),
                    json!({}),
                ),
                vec!["user", "reset-attempts", "--email", "cy@lab.example"],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "disable a user",
                (
                    Method::POST,
                    format!("/api/v1/users/{bob}/disable"),
                    json!({}),
                ),
                vec!["user", "disable", "--email", "cy@lab.example"],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "remove a member from a lab",
                (
                    Method::DELETE,
                    format!("/api/v1/labs/{physics}/members/{bob}"),
                    Value::Null,
                ),
                vec!["user", "remove", "--lab", "Physics", "--email", EMAIL],
                None,
            )
            .await,
        );
        pairs.push(
            pair(
                "register a client",
                (
                    Method::POST,
                    "/api/v1/clients".into(),
                    json!({"name": "bot", "grant_types": ["client_credentials"]}),
                ),
                vec![
                    "client",
                    "create",
                    "--name",
                    "cron",
                    "--grant-types",
                    "client_credentials",
                ],
                None,
            )
            .await,
        );
        for (what, by_api, by_cli) in &pairs {
            assert_eq!(
                by_api, by_cli,
                "{what}: the API wrote {by_api}, the CLI {by_cli}"
            );
        }
        let actions: Vec<&str> = pairs.iter().map(|p| p.2.as_str()).collect();
        assert_eq!(
            actions,
            [
                "lab.create",
                "user.create",
                "member.add",
                "role.put",
                "role.put",
                "member.roles",
                "member.feature",
                "member.admin",
                "user.system_admin",
                "policy.lab",
                "user.exported",
                "user.reset_attempts",
                "user.disable",
                "member.remove",
                "client.create",
            ]
        );
        let v = cli(app, &["audit", "verify", "--json"], None).await;
        ok(&v);
    }
);

/// Sends a bad request to the API (422) and the same bad input to the command line: the
/// command line must fail with the API's message, name the flag, and change nothing.
async fn same_refusal(
    app: &TestApp,
    token: &str,
    (method, path, body): (Method, String, Value),
    field: &str,
    args: &[&str],
    flag: &str,
) -> String {
    let before = audit_actions(app).await.len();
    let (s, v) = api(app, token, method, &path, body).await;
    assert_eq!(s, 422, "{path}: {v}");
    assert_eq!(v["field"], field, "{v}");
    let message = v["message"].as_str().unwrap().to_owned();
    let o = cli(app, args, Some(PASSWORD)).await;
    assert!(!o.status.success(), "{args:?} was accepted");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{flag}: {message}")),
        "{args:?}: the API said `{field}: {message}`, the CLI: {err}"
    );
    assert_eq!(
        audit_actions(app).await.len(),
        before,
        "{args:?} changed something"
    );
    message
}

both!(
    the_cli_and_the_api_refuse_the_same_bad_input_by_the_same_rule,
    async |app: &TestApp| {
        let token = api_token(app).await;
        let lab = app.lab_id.clone();
        let ada = app.user_id.clone();
        // A role named `..` would be the path segment `..`: neither may create one.
        let m = same_refusal(
            app,
            &token,
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/members/{ada}/roles"),
                json!({"roles": [".."]}),
            ),
            "roles",
            &[
                "role", "feature", "add", "--lab", "Lab 42", "--role", "..", "a:b",
            ],
            "--role",
        )
        .await;
        assert!(m.contains("is not a role name"), "{m}");
        same_refusal(
            app,
            &token,
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/members/{ada}/roles"),
                json!({"roles": [".."]}),
            ),
            "roles",
            &[
                "policy",
                "set",
                "--lab",
                "Lab 42",
                "--role",
                "..",
                "--min-acr",
                "mfa",
            ],
            "--role",
        )
        .await;
        // A role must exist before it is given: neither creates one on the fly.
        let m = same_refusal(
            app,
            &token,
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/members/{ada}/roles"),
                json!({"roles": ["ghost"]}),
            ),
            "roles",
            &[
                "user", "role", "add", "--lab", "Lab 42", "--email", EMAIL, "--role", "ghost",
            ],
            "--role",
        )
        .await;
        assert!(m.contains("no role `ghost`"), "{m}");
        // One e-mail rule (the command line had its own, which took a trailing dot).
        same_refusal(
            app,
            &token,
            (
                Method::POST,
                format!("/api/v1/labs/{lab}/members"),
                json!({"email": "ada@lab.example.", "password": PASSWORD}),
            ),
            "email",
            &[
                "user",
                "create",
                "--lab",
                "Lab 42",
                "--email",
                "ada@lab.example.",
                "--password-stdin",
            ],
            "--email",
        )
        .await;
        // One feature-name rule.
        same_refusal(
            app,
            &token,
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/roles/clerk"),
                json!({"features": ["Invoices Approve"]}),
            ),
            "features",
            &[
                "role",
                "feature",
                "add",
                "--lab",
                "Lab 42",
                "--role",
                "clerk",
                "Invoices Approve",
            ],
            "FEATURE",
        )
        .await;
        // One grace-period rule: bounded, in days or in sign-ins, and only with a minimum.
        for (body, field, args) in [
            (
                json!({"min_acr": "mfa", "grace_days": 400}),
                "grace_days",
                vec!["--min-acr", "mfa", "--grace-days", "400"],
            ),
            (
                json!({"min_acr": "mfa", "grace_logins": 101}),
                "grace_logins",
                vec!["--min-acr", "mfa", "--grace-logins", "101"],
            ),
            (
                json!({"min_acr": "mfa", "grace_days": 3, "grace_logins": 3}),
                "grace_logins",
                vec![
                    "--min-acr",
                    "mfa",
                    "--grace-days",
                    "3",
                    "--grace-logins",
                    "3",
                ],
            ),
            (
                json!({"min_acr": null, "grace_days": 3}),
                "min_acr",
                vec!["--min-acr", "none", "--grace-days", "3"],
            ),
        ] {
            let mut all = vec!["policy", "set", "--lab", "Lab 42"];
            all.extend(args);
            let flag = format!("--{}", field.replace('_', "-"));
            same_refusal(
                app,
                &token,
                (Method::PUT, format!("/api/v1/labs/{lab}/policy"), body),
                field,
                &all,
                &flag,
            )
            .await;
        }
        // A lab's name.
        same_refusal(
            app,
            &token,
            (Method::POST, "/api/v1/labs".into(), json!({"name": "   "})),
            "name",
            &["lab", "create", "--name", "   "],
            "--name",
        )
        .await;
    }
);
