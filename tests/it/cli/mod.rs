//! The `latchkey` binary: provisioning commands with `--json`, refusals that say what to fix
//! and change nothing, `--help`, and `serve` on zero configuration. `grants`: roles, features,
//! policy and administrators from the command line; `parity`: on both databases, the command
//! line and the admin API writing the same audit actions for the same change and refusing the
//! same bad input by the same rule (both call `admin::ops`); `serve`: the service as a process
//! (SIGTERM, logs, `latchkey health`); `crash`: `kill -9` under load.

mod bootstrap;
mod crash;
mod grants;
mod mail_crash;
mod parity;
mod serve;

use serde_json::Value;
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
            "--lab",
            "Lab 42",
            "--feature",
            "orders:read",
            "--json",
        ],
        None,
    ));
    assert!(client["client_id"].as_str().unwrap().starts_with("lk_"));
    assert_eq!(
        client["labs"],
        serde_json::json!([lab["id"]]),
        "by name, shown by id"
    );
    assert_eq!(client["features"], serde_json::json!(["orders:read"]));
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
            "--lab",
            "*",
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
                "https://app.example/cb",
            ],
            "--lab: name the labs whose members may sign in to this client",
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://app.example/cb",
                "--lab",
                "Nowhere",
            ],
            "--lab: no lab `Nowhere`",
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://app.example/cb",
                "--lab",
                "*",
                "--feature",
                "Bad Name",
            ],
            "--feature: `Bad Name`",
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

/// Administrative commands open the database and run the operation; they generate neither
/// signing keys nor a key-encryption key (that is `serve`'s job, or `keys …`).
#[test]
fn administrative_commands_generate_no_keys() {
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&run(d, &["lab", "create", "--name", "Bio", "--json"], None));
    json(&run(
        d,
        &[
            "policy",
            "set",
            "--lab",
            "Bio",
            "--min-acr",
            "mfa",
            "--json",
        ],
        None,
    ));
    assert!(!d.join("kek").exists(), "no KEK written");
    let mut db = SqliteConnection::establish(d.join("latchkey.db").to_str().unwrap()).unwrap();
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let keys: N = diesel::sql_query("SELECT COUNT(*) AS n FROM signing_keys")
        .get_result(&mut db)
        .unwrap();
    assert_eq!(keys.n, 0, "no signing key generated");
    // And the KEK `serve` will create is the one the command line then uses.
    json(&run(d, &["keys", "list", "--json"], None));
    assert!(d.join("kek").exists());
    json(&run(
        d,
        &[
            "policy",
            "set",
            "--lab",
            "Bio",
            "--min-acr",
            "phr",
            "--json",
        ],
        None,
    ));
    let report = json(&run(d, &["audit", "verify", "--json"], None));
    assert_eq!(report["intact"], true);
}

/// `latchkey … | head -1`: a reader that closes the pipe early is no error (no panic, exit 0),
/// the command's work done.
#[test]
fn output_to_a_closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["lab", "create", "--name", "Lab 42", "--json"])
        .env_remove("DATABASE_URL")
        .env("LATCHKEY_DATA_DIR", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the command writes its answer.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    let again = run(dir.path(), &["lab", "create", "--name", "Lab 42"], None);
    assert!(
        !again.status.success(),
        "the lab was created the first time"
    );
}

/// `LATCHKEY_LOG_FORMAT=json`: every log line is one JSON object with its time and level (a
/// first start logs the warning about the generated key-encryption key), and stdout keeps the
/// command's own output.
#[test]
fn log_format_json_writes_one_json_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["keys", "list", "--json"])
        .env_remove("DATABASE_URL")
        .env("LATCHKEY_DATA_DIR", dir.path())
        .env("LATCHKEY_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let keys = json(&out);
    assert!(keys.is_array() || keys.is_object(), "{keys}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log line");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
    }
    assert!(
        lines.iter().any(|l| l.contains("key-encryption key")),
        "{err}"
    );
}
