//! The `latchkey` binary: provisioning commands with `--json`, refusals that say what to fix
//! and change nothing, `--help`, and `serve` on zero configuration; and, on both databases,
//! the command line and the admin API writing the same audit actions for the same change and
//! refusing the same bad input by the same rule (both call `admin::ops`).

use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

fn run(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    run_with(dir, None, args, stdin)
}

/// The binary on a data directory and, given a URL, a PostgreSQL database.
fn run_with(
    dir: &std::path::Path,
    database_url: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = Command::new(BIN);
    match database_url {
        Some(url) => cmd.env("DATABASE_URL", url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    let mut child = cmd
        .args(args)
        .env("LATCHKEY_DATA_DIR", dir)
        .env("LATCHKEY_ARGON2__MEMORY_KIB", "1024")
        .env("LATCHKEY_ARGON2__ITERATIONS", "1")
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

fn json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn provisioning_with_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab = json(&run(
        d,
        &["lab", "create", "--name", "Lab 42", "--json"],
        None,
    ));
    assert_eq!(lab["name"], "Lab 42");
    let user = json(&run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Lab 42",
            "--email",
            "Ada@Lab.example",
            "--name",
            "Ada",
            "--password-stdin",
            "--json",
        ],
        Some("violet tractor sings at dawn\n"),
    ));
    assert_eq!(user["email"], "ada@lab.example");
    assert_eq!(user["lab"], lab["id"]);
    assert!(user.get("password_hash").is_none());
    let client = json(&run(
        d,
        &[
            "client",
            "create",
            "--name",
            "Invoices",
            "--redirect-uri",
            "https://invoices.lab.example/cb",
            "--post-logout-redirect-uri",
            "https://invoices.lab.example/",
            "--grant-types",
            "authorization_code,refresh_token,client_credentials",
            "--access-token-ttl",
            "600",
            "--json",
        ],
        None,
    ));
    assert!(client["client_id"].as_str().unwrap().starts_with("lk_"));
    let secret = client["client_secret"].as_str().unwrap();
    assert!(
        secret.starts_with("lk_cs_") && secret.len() >= 6 + 43,
        "256 bits of entropy"
    );
    let public = json(&run(
        d,
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "http://localhost:5173/cb",
            "--json",
        ],
        None,
    ));
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["token_endpoint_auth_method"], "none");
}

#[test]
fn refusals_say_what_to_fix_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&run(
        d,
        &["lab", "create", "--name", "Lab 42", "--json"],
        None,
    ));
    let dup = run(d, &["lab", "create", "--name", "Lab 42"], None);
    assert!(!dup.status.success());
    assert!(
        stderr(&dup).contains("a lab with this name already exists"),
        "{}",
        stderr(&dup)
    );

    let weak = run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Lab 42",
            "--email",
            "ada@lab.example",
            "--password-stdin",
        ],
        Some("password1234567\n"),
    );
    assert!(!weak.status.success());
    assert!(
        stderr(&weak).contains("password refused"),
        "{}",
        stderr(&weak)
    );
    let short = run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Lab 42",
            "--email",
            "ada@lab.example",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(
        stderr(&short).contains("at least 15 characters"),
        "{}",
        stderr(&short)
    );
    let no_lab = run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Nope",
            "--email",
            "ada@lab.example",
            "--password-stdin",
        ],
        Some("violet tractor sings at dawn\n"),
    );
    assert!(
        stderr(&no_lab).contains("latchkey lab create"),
        "{}",
        stderr(&no_lab)
    );
    // Nothing was written: the same email can still be created.
    json(&run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Lab 42",
            "--email",
            "ada@lab.example",
            "--password-stdin",
            "--json",
        ],
        Some("violet tractor sings at dawn\n"),
    ));
    let again = run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Lab 42",
            "--email",
            "ADA@lab.example",
            "--password-stdin",
        ],
        Some("violet tractor sings at dawn\n"),
    );
    assert!(stderr(&again).contains("already exists"));
    let disabled = json(&run(
        d,
        &["user", "disable", "--email", "ada@lab.example", "--json"],
        None,
    ));
    assert_eq!(disabled["disabled"], true);
    let unknown = run(
        d,
        &["user", "disable", "--email", "nobody@lab.example"],
        None,
    );
    assert!(stderr(&unknown).contains("no user with email"));

    for (args, needle) in [
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "http://app.example/cb",
            ],
            "must use https",
        ),
        (
            vec!["client", "create", "--name", "X"],
            "needs at least one --redirect-uri",
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example/cb",
                "--grant-types",
                "implicit",
            ],
            "unknown grant type",
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--public",
                "--grant-types",
                "client_credentials",
            ],
            "cannot use client_credentials",
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example/cb",
                "--id-token-alg",
                "HS256",
            ],
            "unsupported signing algorithm",
        ),
    ] {
        let o = run(d, &args, None);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn policy_commands_set_show_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab = json(&run(d, &["lab", "create", "--name", "Bio", "--json"], None));
    json(&run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Bio",
            "--email",
            "ada@lab.example",
            "--password-stdin",
            "--json",
        ],
        Some("violet tractor sings at dawn\n"),
    ));
    let set = json(&run(
        d,
        &[
            "policy",
            "set",
            "--lab",
            "Bio",
            "--min-acr",
            "mfa",
            "--grace-days",
            "14",
            "--json",
        ],
        None,
    ));
    assert_eq!(set["min_acr"], "mfa");
    assert_eq!(set["grace_days"], 14);
    json(&run(
        d,
        &[
            "policy",
            "set",
            "--lab",
            "Bio",
            "--role",
            "admin",
            "--min-acr",
            "phr",
            "--json",
        ],
        None,
    ));
    let role = json(&run(
        d,
        &[
            "user",
            "role",
            "add",
            "--lab",
            "Bio",
            "--email",
            "ada@lab.example",
            "--role",
            "admin",
            "--json",
        ],
        None,
    ));
    assert_eq!(role["role"], "admin");
    let shown = json(&run(d, &["policy", "show", "--lab", "Bio", "--json"], None));
    assert_eq!(shown["lab"], lab["id"]);
    assert_eq!(shown["policy"]["min_acr"], "mfa");
    assert_eq!(shown["roles"][0]["role"], "admin");
    assert_eq!(shown["roles"][0]["min_acr"], "phr");
    let text = run(d, &["policy", "show", "--lab", "Bio"], None);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("members need mfa, grace 14 day(s)"), "{text}");
    assert!(text.contains("role admin: needs phr"), "{text}");
    let client = json(&run(
        d,
        &[
            "client",
            "create",
            "--name",
            "Invoices",
            "--redirect-uri",
            "https://invoices.lab.example/cb",
            "--min-acr",
            "mfa",
            "--json",
        ],
        None,
    ));
    let id = client["client_id"].as_str().unwrap();
    let cleared = json(&run(
        d,
        &[
            "policy",
            "set",
            "--client",
            id,
            "--min-acr",
            "none",
            "--json",
        ],
        None,
    ));
    assert_eq!(cleared["min_acr"], serde_json::Value::Null);
    // Refusals say what to fix and change nothing.
    for (args, needle) in [
        (
            vec!["policy", "set", "--lab", "Bio", "--min-acr", "strong"],
            "not a level; use pwd, mfa, phr or none",
        ),
        (
            vec!["policy", "set", "--lab", "Nope", "--min-acr", "mfa"],
            "no lab `Nope`",
        ),
        (
            vec!["policy", "set", "--client", "lk_nope", "--min-acr", "mfa"],
            "no client `lk_nope`",
        ),
        (
            vec![
                "policy",
                "set",
                "--lab",
                "Bio",
                "--min-acr",
                "none",
                "--grace-days",
                "3",
            ],
            // The admin API's rule and words (`PUT …/policy`), naming the flag.
            "--min-acr: a grace needs a minimum level",
        ),
        (
            vec![
                "policy",
                "set",
                "--lab",
                "Bio",
                "--min-acr",
                "mfa",
                "--grace-days",
                "-1",
            ],
            "unexpected argument '-1'",
        ),
        (vec!["policy", "set", "--min-acr", "mfa"], "--lab"),
        (
            vec![
                "user",
                "role",
                "add",
                "--lab",
                "Bio",
                "--email",
                "nobody@lab.example",
                "--role",
                "admin",
            ],
            "no user with email",
        ),
    ] {
        let o = run(d, &args, None);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let shown = json(&run(d, &["policy", "show", "--lab", "Bio", "--json"], None));
    assert_eq!(
        shown["policy"]["min_acr"], "mfa",
        "unchanged by the refusals"
    );
    assert_eq!(shown["policy"]["grace_days"], 14);
}

#[test]
fn help_explains_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needles) in [
        (
            vec!["--help"],
            vec!["serve", "migrate", "lab", "user", "client"],
        ),
        (
            vec!["client", "create", "--help"],
            vec![
                "--redirect-uri",
                "--post-logout-redirect-uri",
                "--grant-types",
                "--public",
                "--access-token-ttl",
                "--json",
            ],
        ),
        (
            vec!["user", "create", "--help"],
            vec!["--lab", "--email", "--name", "--password-stdin", "--json"],
        ),
        (vec!["lab", "create", "--help"], vec!["--name", "--json"]),
        (
            vec!["policy", "set", "--help"],
            vec![
                "--lab",
                "--role",
                "--client",
                "--min-acr",
                "--grace-days",
                "--grace-logins",
                "--json",
            ],
        ),
        (
            vec!["user", "role", "add", "--help"],
            vec!["--lab", "--email", "--role", "--json"],
        ),
    ] {
        let o = run(dir.path(), &args, None);
        assert!(o.status.success());
        let out = String::from_utf8_lossy(&o.stdout);
        for n in needles {
            assert!(out.contains(n), "{args:?} help lacks {n}");
        }
    }
}

#[test]
fn serve_starts_with_zero_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
        .env_remove("LATCHKEY_DATA_DIR")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let ready = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) if line.contains("latchkey ready") => break line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no ready line; saw {seen:#?}"),
        }
    };
    assert!(
        ready.contains(&format!("http://127.0.0.1:{port}")),
        "{ready}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("generated a new key-encryption key")),
        "loud KEK warning"
    );
    let kek = dir.path().join("latchkey-data/kek");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(dir.path().join("latchkey-data/latchkey.db").exists());
    let body = std::process::Command::new("curl")
        .args([
            "-sf",
            &format!("http://127.0.0.1:{port}/.well-known/openid-configuration"),
        ])
        .output();
    let _ = child.kill();
    let _ = child.wait();
    let body = body.unwrap();
    let doc: Value = serde_json::from_slice(&body.stdout).unwrap();
    assert_eq!(doc["issuer"], format!("http://localhost:{port}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_provisions_postgres_through_database_url() {
    let name = format!("lk_cli_{}", uuid::Uuid::new_v4().simple());
    let base = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = |sql: String| {
        let base = base.clone();
        async move {
            let (c, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .unwrap();
            let t = tokio::spawn(conn);
            c.batch_execute(&sql).await.unwrap();
            drop(c);
            let _ = t.await;
        }
    };
    admin(format!("CREATE DATABASE {name}")).await;
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let url = url.to_string();
        let d = dir.path().to_owned();
        move || {
            let o = Command::new(BIN)
                .args(["migrate"])
                .env("DATABASE_URL", &url)
                .env("LATCHKEY_DATA_DIR", &d)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            Command::new(BIN)
                .args(["lab", "create", "--name", "PG lab", "--json"])
                .env("DATABASE_URL", &url)
                .env("LATCHKEY_DATA_DIR", &d)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(json(&out)["name"], "PG lab");
    admin(format!("DROP DATABASE {name} WITH (FORCE)")).await;
}

#[test]
fn audit_verify_and_export_from_the_cli() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&run(d, &["lab", "create", "--name", "Bio", "--json"], None));
    for level in ["mfa", "phr", "none"] {
        json(&run(
            d,
            &[
                "policy",
                "set",
                "--lab",
                "Bio",
                "--min-acr",
                level,
                "--json",
            ],
            None,
        ));
    }
    let report = json(&run(d, &["audit", "verify", "--json"], None));
    assert_eq!(report["intact"], true);
    let entries = report["entries"].as_u64().unwrap();
    assert_eq!(entries, 4, "the lab's creation and three policy changes");
    let export = run(d, &["audit", "export"], None);
    assert!(export.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, entries);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    let last = lines.last().unwrap();
    assert_eq!(last["action"], "policy.lab");
    assert_eq!(last["details"]["after"]["min_acr"], Value::Null);
    assert_eq!(last["details"]["before"]["min_acr"], "phr");
    assert_eq!(last["actor"], "cli");

    let mut db =
        diesel::SqliteConnection::establish(d.join("latchkey.db").to_str().unwrap()).unwrap();
    db.batch_execute(&format!(
        "UPDATE audit_events SET details = '{{\"min_acr\":\"pwd\"}}' WHERE seq = {entries}"
    ))
    .unwrap();
    let o = run(d, &["audit", "verify"], None);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("audit log broken at entry {entries}")) && out.contains("altered"),
        "{out}"
    );
}

#[test]
fn feature_grants_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&run(d, &["lab", "create", "--name", "Bio", "--json"], None));
    json(&run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Bio",
            "--email",
            "ada@lab.example",
            "--password-stdin",
            "--json",
        ],
        Some("violet tractor sings at dawn\n"),
    ));
    let added = json(&run(
        d,
        &[
            "role",
            "feature",
            "add",
            "--lab",
            "Bio",
            "--role",
            "accountant",
            "invoices:approve",
            "--json",
        ],
        None,
    ));
    assert_eq!(added["granted"], true);
    let denied = json(&run(
        d,
        &[
            "user",
            "feature",
            "deny",
            "--lab",
            "Bio",
            "--email",
            "ada@lab.example",
            "invoices:approve",
            "--json",
        ],
        None,
    ));
    assert_eq!(denied["allow"], false);
    // A second lab: added twice is still one membership.
    json(&run(
        d,
        &["lab", "create", "--name", "Chem", "--json"],
        None,
    ));
    for _ in 0..2 {
        let added = json(&run(
            d,
            &[
                "user",
                "add",
                "--lab",
                "Chem",
                "--email",
                "ada@lab.example",
                "--json",
            ],
            None,
        ));
        assert_eq!(added["added"], true);
    }
    let removed = json(&run(
        d,
        &[
            "user",
            "remove",
            "--lab",
            "Bio",
            "--email",
            "ada@lab.example",
            "--json",
        ],
        None,
    ));
    assert_eq!(removed["removed"], true);
    for (args, needle) in [
        (
            vec![
                "user",
                "remove",
                "--lab",
                "Bio",
                "--email",
                "ada@lab.example",
            ],
            "is not a member of lab `Bio`",
        ),
        (
            vec![
                "role",
                "feature",
                "add",
                "--lab",
                "Bio",
                "--role",
                "x",
                "Invoices Approve",
            ],
            "is not a feature name",
        ),
        (
            vec![
                "user",
                "feature",
                "allow",
                "--lab",
                "Nope",
                "--email",
                "ada@lab.example",
                "a:b",
            ],
            "no lab `Nope`",
        ),
        (
            vec![
                "user",
                "feature",
                "allow",
                "--lab",
                "Bio",
                "--email",
                "bob@lab.example",
                "a:b",
            ],
            "no user with email",
        ),
    ] {
        let o = run(d, &args, None);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn admin_grant_revoke_and_admin_clients_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&run(
        d,
        &["lab", "create", "--name", "Biology", "--json"],
        None,
    ));
    json(&run(
        d,
        &["lab", "create", "--name", "Physics", "--json"],
        None,
    ));
    json(&run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Biology",
            "--email",
            "grace@lab.example",
            "--password-stdin",
            "--json",
        ],
        Some("violet tractor sings at dawn\n"),
    ));
    let g = json(&run(
        d,
        &[
            "admin",
            "grant",
            "--email",
            "grace@lab.example",
            "--lab",
            "Biology",
            "--json",
        ],
        None,
    ));
    assert_eq!(g["admin"], true);
    let s = json(&run(
        d,
        &[
            "admin",
            "grant",
            "--email",
            "grace@lab.example",
            "--system",
            "--json",
        ],
        None,
    ));
    assert_eq!(s["system"], true);
    json(&run(
        d,
        &[
            "admin",
            "revoke",
            "--email",
            "grace@lab.example",
            "--system",
            "--json",
        ],
        None,
    ));
    // Refusals say what to fix.
    let o = run(
        d,
        &[
            "admin",
            "grant",
            "--email",
            "grace@lab.example",
            "--lab",
            "Physics",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a member"), "{}", stderr(&o));
    let o = run(
        d,
        &[
            "admin",
            "grant",
            "--email",
            "nobody@lab.example",
            "--system",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no user with email"), "{}", stderr(&o));
    let o = run(d, &["admin", "grant", "--email", "grace@lab.example"], None);
    assert!(!o.status.success(), "--system or --lab is required");
    // Automation clients: --admin-of needs client_credentials and a real lab.
    let c = json(&run(
        d,
        &[
            "client",
            "create",
            "--name",
            "ops-bot",
            "--grant-types",
            "client_credentials",
            "--admin-of",
            "Biology",
            "--json",
        ],
        None,
    ));
    assert!(
        c["admin_of"].as_str().unwrap().len() > 10,
        "stored as the lab's id"
    );
    let o = run(
        d,
        &[
            "client",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            "https://app.example/cb",
            "--admin-of",
            "*",
        ],
        None,
    );
    assert!(
        stderr(&o).contains("--admin-of needs the client_credentials grant"),
        "{}",
        stderr(&o)
    );
    let o = run(
        d,
        &[
            "client",
            "create",
            "--name",
            "x",
            "--grant-types",
            "client_credentials",
            "--admin-of",
            "Chemistry",
        ],
        None,
    );
    assert!(
        stderr(&o).contains("--admin-of: no lab `Chemistry`"),
        "{}",
        stderr(&o)
    );
    // Every grant and revocation is in the audit log.
    let v = run(d, &["audit", "export"], None);
    let log = String::from_utf8_lossy(&v.stdout);
    assert!(log.contains("member.admin") && log.contains("user.system_admin"));
    assert!(log.contains("client.create"));
}

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
    let c = app
        .client(|c| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
            c.admin_of = Some("*".into());
        })
        .await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&c.client_id, c.client_secret.as_deref())
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "latchkey:admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    t["access_token"].as_str().unwrap().to_owned()
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
