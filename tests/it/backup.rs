//! Backups through the `latchkey backup` command: a populated SQLite service moved into
//! PostgreSQL (the documented upgrade path) keeps serving its users, their factors and their
//! refresh tokens with the same audit chain; PostgreSQL back into SQLite holds the same rows;
//! and every refusal (another key, a tampered or cut file, a database that is not empty, the
//! wrong KEK, an overwrite) says what is wrong and writes nothing.

use crate::client_labs::refresh;
use crate::common::*;
use crate::mfa::{after_password, submit_code};
use crate::passkeys::{login_page, sign_discoverable};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// The binary on `data_dir` (and PostgreSQL at `db`), with the KEK and backup key files.
fn cli(data_dir: &Path, db: Option<&str>, kek: &Path, key: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    match db {
        Some(url) => cmd.env("DATABASE_URL", url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    cmd.args(args)
        .env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_KEK_FILE", kek)
        .env("LATCHKEY_BACKUP__KEY_FILE", key)
        .output()
        .unwrap()
}

fn ok_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn refused(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A backup key file in `dir`, made by `latchkey backup keygen`.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let o = Command::new(BIN)
        .args(["backup", "keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path
}

/// The rows of every table as sorted JSON lines, from the store's own snapshot.
async fn rows_of(store: &latchkey_server::store::Store) -> Vec<(String, Vec<String>)> {
    use latchkey_server::store::backup::Dumped;
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let s = store.clone();
    let dump = tokio::spawn(async move { s.dump(tx).await });
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    while let Some(item) = rx.recv().await {
        match item {
            Dumped::Counts(_) => {}
            Dumped::Table(t) => out.push((t.to_owned(), Vec::new())),
            Dumped::Rows(rows) => out
                .last_mut()
                .unwrap()
                .1
                .extend(rows.iter().map(|r| serde_json::to_string(r).unwrap())),
        }
    }
    dump.await.unwrap().unwrap();
    for (_, rows) in &mut out {
        rows.sort();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_service_moves_to_postgresql_by_backup_and_restore() {
    let app = TestApp::with_config(Backend::Sqlite, on_localhost).await;
    let port = app.addr().port();
    // A user with a password, an authenticator app and a passkey; roles and features; a
    // client with a consented grant and its refresh token; the audit log of all of it.
    let b = Browser::new(&app);
    account_sign_in(&b).await;
    let totp_key = enrol_totp(&b).await;
    let mut sp = SoftPasskey::new(true);
    let cred_id = register(&app, &b, &mut sp, "passkey").await;
    let store = &app.state.store;
    let lab = app.lab();
    store
        .set_role_feature(&lab, "operator", "mill:run", true)
        .await
        .unwrap();
    store
        .assign_role(&app.user(), &lab, "operator")
        .await
        .unwrap();
    let created = app.client(|_| {}).await;
    let client = (created.client_id, created.client_secret.unwrap());
    let t = user_tokens(&app, &client.0, &client.1, "openid offline_access").await;
    let rt = t["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    // A code used before the move stays used after it.
    let used_code = totp_code(&totp_key, 0);
    let b1 = Browser::new(&app);
    let loc = after_password(
        &b1,
        &authorize_url(&app, &client.0, &[("acr_values", "mfa")]),
    )
    .await;
    let r = submit_code(&b1, &loc, "totp", &used_code).await;
    assert_eq!(r.status(), 303, "code accepted before the move");
    assert!(!location(&r).contains("/login/verify"), "{}", location(&r));
    let before = rows_of(store).await;

    // `backup create` while the service runs, with its own key; `verify` checks it.
    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "backup.key");
    let data = app.state.config.data_dir.clone();
    let kek = work.path().join("kek");
    std::fs::copy(data.join("kek"), &kek).unwrap();
    let file = work.path().join("lab.lkbackup");
    let created = ok_json(&cli(
        &data,
        None,
        &kek,
        &key,
        &["backup", "create", file.to_str().unwrap(), "--json"],
    ));
    assert_eq!(created["backend"], "sqlite");
    assert!(created["rows"].as_u64().unwrap() > 20, "{created}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "a backup is readable by its owner only"
    );
    let verified = ok_json(&cli(
        &data,
        None,
        &kek,
        &key,
        &["backup", "verify", file.to_str().unwrap(), "--json"],
    ));
    assert_eq!(verified["audit_intact"], true, "{verified}");
    assert_eq!(verified["rows"], created["rows"]);
    assert!(
        verified["sealed_checked"].as_u64().unwrap() >= 3,
        "keys, TOTP secret, server secrets: {verified}"
    );
    let audit_before = ok_json(&cli(
        &data,
        None,
        &kek,
        &key,
        &["audit", "verify", "--json"],
    ));
    let (lab_id, user_id) = (app.lab_id.clone(), app.user_id.clone());
    app.stop().await;

    // `restore` into a new PostgreSQL database, with the same KEK.
    let (pg_url, pg_name) = TestApp::new_pg_database().await;
    let fresh = tempfile::tempdir().unwrap();
    let restored = ok_json(&cli(
        fresh.path(),
        Some(&pg_url),
        &kek,
        &key,
        &["backup", "restore", file.to_str().unwrap(), "--json"],
    ));
    assert_eq!(restored["backend"], "postgres");
    assert_eq!(restored["rows"], created["rows"]);
    let audit = ok_json(&cli(
        fresh.path(),
        Some(&pg_url),
        &kek,
        &key,
        &["audit", "verify", "--json"],
    ));
    assert_eq!(audit["intact"], true, "{audit}");
    assert_eq!(
        audit["last_hash"], audit_before["last_hash"],
        "the same chain"
    );
    assert_eq!(audit["entries"], audit_before["entries"]);

    // The same issuer and port, now on PostgreSQL.
    let mut config = latchkey_server::Config {
        issuer: Some(format!("http://localhost:{port}")),
        data_dir: fresh.path().to_owned(),
        database_url: Some(pg_url.clone()),
        kek_file: Some(kek.clone()),
        workers: 2,
        ..latchkey_server::Config::default()
    };
    config.argon2.memory_kib = 1024;
    config.argon2.iterations = 1;
    let moved = TestApp::on_database(config, port, &lab_id, &user_id, Some(pg_name)).await;
    assert_eq!(
        rows_of(&moved.state.store).await,
        before,
        "every row arrived as it was"
    );

    // The refresh token issued on SQLite refreshes on PostgreSQL, with the role's feature.
    let (s, v) = refresh(&moved, &client, &rt).await;
    assert_eq!(s, 200, "{v}");
    let claims = jwt_claims(v["access_token"].as_str().unwrap());
    assert!(claims.to_string().contains("mill:run"), "{claims}");
    // Password and TOTP: the code used before the move is refused, the next one accepted.
    let b2 = Browser::new(&moved);
    let url = authorize_url(&moved, &client.0, &[("acr_values", "mfa")]);
    let loc = after_password(&b2, &url).await;
    assert!(
        loc.starts_with("/login/verify?flow="),
        "the password is accepted: {loc}"
    );
    let r = submit_code(&b2, &loc, "totp", &used_code).await;
    assert_eq!(
        r.status(),
        401,
        "a TOTP code is accepted once, across the move too"
    );
    // The passkey signs in without a password.
    let pk = Browser::new(&moved);
    let (flow, csrf) = login_page(&moved, &pk, &client.0, &[]).await;
    let (ceremony, options) = begin(
        &pk,
        "/webauthn/login/begin",
        &[("flow", &flow), ("csrf", &csrf), ("mode", "modal")],
    )
    .await;
    let pkc = sign_discoverable(&mut sp, options, &cred_id, &moved.user_id, &origin(&moved));
    let (status, v) = finish(&pk, &moved, &ceremony, &pkc).await;
    assert_eq!(status, 200, "{v}");
    let audit = ok_json(&cli(
        fresh.path(),
        Some(&pg_url),
        &kek,
        &key,
        &["audit", "verify", "--json"],
    ));
    assert_eq!(
        audit["intact"], true,
        "the chain goes on after the move: {audit}"
    );
    moved.stop().await;
}

/// A PostgreSQL service with a little of everything, backed up: (app, work dir, kek, key, file).
async fn backed_up(backend: Backend) -> (TestApp, tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let app = TestApp::new(backend).await;
    let created = app.client(|_| {}).await;
    let client = (created.client_id, created.client_secret.unwrap());
    user_tokens(&app, &client.0, &client.1, "openid offline_access").await;
    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "backup.key");
    let kek = work.path().join("kek");
    std::fs::copy(app.state.config.data_dir.join("kek"), &kek).unwrap();
    let file = work.path().join("b.lkbackup");
    let url = app.state.config.database_url.clone();
    ok_json(&cli(
        &app.state.config.data_dir,
        url.as_deref(),
        &kek,
        &key,
        &["backup", "create", file.to_str().unwrap(), "--json"],
    ));
    (app, work, kek, key, file)
}

/// A new SQLite data directory: (dir, database URL None).
fn empty_sqlite() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Rows in the database of `dir` (beyond the console client the migrations insert).
async fn occupied(dir: &Path, url: Option<&str>) -> Vec<(&'static str, u64)> {
    let config = latchkey_server::Config {
        data_dir: dir.to_owned(),
        database_url: url.map(str::to_owned),
        ..latchkey_server::Config::default()
    };
    let store = latchkey_server::store::Store::open(&config).await.unwrap();
    store.occupied_tables().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_backup_restores_into_sqlite_with_the_same_rows() {
    let (app, _work, kek, key, file) = backed_up(Backend::Postgres).await;
    let target = empty_sqlite();
    let out = ok_json(&cli(
        target.path(),
        None,
        &kek,
        &key,
        &["backup", "restore", file.to_str().unwrap(), "--json"],
    ));
    assert_eq!(
        (out["from_backend"].as_str(), out["backend"].as_str()),
        (Some("postgres"), Some("sqlite"))
    );
    let config = latchkey_server::Config {
        data_dir: target.path().to_owned(),
        ..latchkey_server::Config::default()
    };
    let restored = latchkey_server::store::Store::open(&config).await.unwrap();
    assert_eq!(rows_of(&restored).await, rows_of(&app.state.store).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_what_it_cannot_restore_whole_and_writes_nothing() {
    let (app, work, kek, key, file) = backed_up(Backend::Sqlite).await;
    let f = file.to_str().unwrap();
    let target = empty_sqlite();
    let t = target.path();

    // Another backup key: named by its id, not a generic failure.
    let other = keygen(work.path(), "other.key");
    let err = refused(&cli(t, None, &kek, &other, &["backup", "restore", f]));
    assert!(err.contains("encrypted under backup key"), "{err}");

    // Another KEK: the signing keys would not open, so nothing is restored.
    let other_kek = work.path().join("other-kek");
    std::fs::write(
        &other_kek,
        latchkey_server::backup::format::BackupKey::generate().to_b64(),
    )
    .unwrap();
    let err = refused(&cli(t, None, &other_kek, &key, &["backup", "restore", f]));
    assert!(
        err.contains("does not decrypt under the configured key-encryption key"),
        "{err}"
    );
    assert!(occupied(t, None).await.is_empty(), "nothing written");

    // One flipped byte in the middle, and a file cut short.
    let bytes = std::fs::read(&file).unwrap();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    let bad = work.path().join("flipped.lkbackup");
    std::fs::write(&bad, &flipped).unwrap();
    let err = refused(&cli(
        t,
        None,
        &kek,
        &key,
        &["backup", "restore", bad.to_str().unwrap()],
    ));
    assert!(
        err.contains("damaged or was altered") || err.contains("checksum"),
        "{err}"
    );
    let cut = work.path().join("cut.lkbackup");
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    let err = refused(&cli(
        t,
        None,
        &kek,
        &key,
        &["backup", "restore", cut.to_str().unwrap()],
    ));
    assert!(err.contains("cut off"), "{err}");
    let err = refused(&cli(
        t,
        None,
        &kek,
        &key,
        &["backup", "verify", cut.to_str().unwrap()],
    ));
    assert!(err.contains("cut off") || err.contains("checksum"), "{err}");
    assert!(occupied(t, None).await.is_empty(), "nothing written");

    // A database in use: refused before a row is written, and left as it was.
    let data = app.state.config.data_dir.clone();
    let before = rows_of(&app.state.store).await;
    let err = refused(&cli(&data, None, &kek, &key, &["backup", "restore", f]));
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(rows_of(&app.state.store).await, before);

    // create never overwrites, and leaves no partial file behind.
    let err = refused(&cli(&data, None, &kek, &key, &["backup", "create", f]));
    assert!(err.contains("exists"), "{err}");
    assert!(!work.path().join("b.lkbackup.partial").exists());
    // The KEK is not a backup key, on the command line either.
    let err = refused(&cli(
        &data,
        None,
        &kek,
        &kek,
        &["backup", "create", work.path().join("k").to_str().unwrap()],
    ));
    assert!(
        err.contains("the backup key is the key-encryption key"),
        "{err}"
    );
    // --keep never deletes verified backups for an unverified one.
    let err = refused(&cli(
        &data,
        None,
        &kek,
        &key,
        &[
            "backup",
            "create",
            work.path().to_str().unwrap(),
            "--keep",
            "3",
        ],
    ));
    assert!(err.contains("needs --verify"), "{err}");
    // Not a backup at all.
    let err = refused(&cli(
        t,
        None,
        &kek,
        &key,
        &["backup", "verify", kek.to_str().unwrap()],
    ));
    assert!(err.contains("not a Latchkey backup"), "{err}");
    // No key at all: says how to make one.
    let o = Command::new(BIN)
        .args(["backup", "create", work.path().join("x").to_str().unwrap()])
        .env("LATCHKEY_DATA_DIR", &data)
        .env_remove("LATCHKEY_BACKUP__KEY_FILE")
        .output()
        .unwrap();
    assert!(refused(&o).contains("latchkey backup keygen"));

    // After all that, the file restores whole.
    ok_json(&cli(
        t,
        None,
        &kek,
        &key,
        &["backup", "restore", f, "--json"],
    ));
    assert!(!occupied(t, None).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_an_audit_entry_altered_before_the_backup() {
    let app = TestApp::new(Backend::Sqlite).await;
    tamper(
        &app,
        "UPDATE audit_events SET actor = 'nobody' WHERE seq = 1",
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "backup.key");
    let kek = app.state.config.data_dir.join("kek");
    let file = work.path().join("b.lkbackup");
    let data = app.state.config.data_dir.clone();
    ok_json(&cli(
        &data,
        None,
        &kek,
        &key,
        &["backup", "create", file.to_str().unwrap(), "--json"],
    ));
    let o = cli(
        &data,
        None,
        &kek,
        &key,
        &["backup", "verify", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["audit_intact"], false);
    assert!(
        v["audit_break"].as_str().unwrap().starts_with("entry 1"),
        "{v}"
    );
    app.stop().await;
}

/// Writes `lines` as a backup under `key` (what someone holding only the backup key can do).
fn forge(
    file: &Path,
    key: &latchkey_server::backup::format::BackupKey,
    schema: &str,
    lines: &[String],
) {
    use latchkey_server::backup::format::{Sealer, new_header};
    use std::io::Write;
    let header = new_header(key, 1_700_000_000, "sqlite", schema);
    let sealer = Sealer::new(std::fs::File::create(file).unwrap(), key, &header).unwrap();
    let mut deflate = flate2::write::DeflateEncoder::new(sealer, flate2::Compression::fast());
    for l in lines {
        writeln!(deflate, "{l}").unwrap();
    }
    deflate.finish().unwrap().finish().unwrap();
}

/// The end line's MAC over `lines` (each with its newline), hex.
fn mac_of(lines: &[String], key: &ring::hmac::Key) -> String {
    let mut c = ring::hmac::Context::with_key(key);
    for l in lines {
        c.update(l.as_bytes());
        c.update(b"\n");
    }
    hex::encode(c.sign().as_ref())
}

/// A backup of one system administrator, `mallory@lab.example`, and nothing else, with its end
/// line's MAC made under `mac` (or all zeros).
fn mallory(mac: Option<&ring::hmac::Key>) -> Vec<String> {
    use latchkey_server::store::backup::TABLES;
    let counts: Vec<(&str, u64)> = TABLES
        .iter()
        .map(|(t, _)| (*t, u64::from(*t == "users")))
        .collect();
    let mut lines = vec![serde_json::json!({ "counts": counts }).to_string()];
    for (t, cols) in TABLES {
        lines.push(serde_json::json!({ "table": t, "columns": cols }).to_string());
        if *t == "users" {
            lines.push(
                serde_json::json!([
                    "u-1",
                    "mallory@lab.example",
                    "Mallory",
                    null,
                    false,
                    1,
                    true,
                    null,
                    null,
                    null
                ])
                .to_string(),
            );
        }
    }
    let tag = match mac {
        Some(k) => mac_of(&lines, k),
        None => "00".repeat(32),
    };
    lines.push(serde_json::json!({ "end": { "rows": 1, "mac": tag } }).to_string());
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_forged_with_only_the_backup_key_is_refused() {
    use latchkey_server::backup::format::BackupKey;
    let work = tempfile::tempdir().unwrap();
    let key = BackupKey::generate();
    let key_file = work.path().join("backup.key");
    std::fs::write(&key_file, key.to_b64()).unwrap();
    let target = empty_sqlite();
    let kek_text = BackupKey::generate().to_b64();
    let kek = target.path().join("kek");
    std::fs::write(&kek, &kek_text).unwrap();
    let schema = latchkey_server::store::latest_migration(true);
    let forged = work.path().join("forged.lkbackup");
    forge(&forged, &key, &schema, &mallory(None));
    let err = refused(&cli(
        target.path(),
        None,
        &kek,
        &key_file,
        &["backup", "restore", forged.to_str().unwrap()],
    ));
    assert!(
        err.contains("not signed under this service's key-encryption key"),
        "{err}"
    );
    assert!(
        occupied(target.path(), None).await.is_empty(),
        "nothing written"
    );
    // The same rows signed under the KEK restore: the refusal above was the MAC's.
    let signed = work.path().join("signed.lkbackup");
    let k = latchkey_server::crypto::Kek::from_b64(&kek_text).unwrap();
    forge(
        &signed,
        &key,
        &schema,
        &mallory(Some(&latchkey_server::backup::mac_key(&k))),
    );
    ok_json(&cli(
        target.path(),
        None,
        &kek,
        &key_file,
        &["backup", "restore", signed.to_str().unwrap(), "--json"],
    ));
    assert_eq!(occupied(target.path(), None).await, vec![("users", 1)]);
    // A signed backup the database refuses a row of: the database's reason, with the row.
    let other = empty_sqlite();
    let kek2 = other.path().join("kek");
    std::fs::write(&kek2, &kek_text).unwrap();
    let bad = work.path().join("bad.lkbackup");
    let mut lines: Vec<String> = mallory(None)
        .into_iter()
        .map(|l| {
            l.replace(
                ",1,true,null,null,null]",
                ",\"yesterday\",true,null,null,null]",
            )
        })
        .collect();
    let last = lines.len() - 1;
    let tag = mac_of(&lines[..last], &latchkey_server::backup::mac_key(&k));
    lines[last] = serde_json::json!({"end": {"rows": 1, "mac": tag}}).to_string();
    forge(&bad, &key, &schema, &lines);
    let err = refused(&cli(
        other.path(),
        None,
        &kek2,
        &key_file,
        &["backup", "restore", bad.to_str().unwrap()],
    ));
    assert!(
        err.contains("table users, row 1: created_at: expected an integer"),
        "{err}"
    );
    assert!(occupied(other.path(), None).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_another_schema_is_refused_with_the_release_to_use() {
    use latchkey_server::backup::format::BackupKey;
    let work = tempfile::tempdir().unwrap();
    let key = BackupKey::generate();
    let key_file = work.path().join("backup.key");
    std::fs::write(&key_file, key.to_b64()).unwrap();
    let file = work.path().join("old.lkbackup");
    let mut lines = mallory(None);
    lines.truncate(1);
    let header_schema = "20250101000001\u{1b}[2J";
    forge(&file, &key, header_schema, &lines);
    let target = empty_sqlite();
    let kek = target.path().join("kek");
    std::fs::write(&kek, BackupKey::generate().to_b64()).unwrap();
    let err = refused(&cli(
        target.path(),
        None,
        &kek,
        &key_file,
        &["backup", "restore", file.to_str().unwrap()],
    ));
    assert!(
        err.contains("schema 20250101000001[2J,"),
        "control characters removed: {err}"
    );
    assert!(
        err.contains(&format!("latchkey {}", env!("CARGO_PKG_VERSION"))),
        "{err}"
    );
}

/// Waits (at most 30 s) for the newest scheduled run to finish.
async fn finished_run(app: &TestApp) -> latchkey_server::store::backup_runs::BackupRun {
    for _ in 0..300 {
        let runs = app.state.store.backup_runs(5).await.unwrap();
        if let Some(r) = runs.first().filter(|r| r.status != "running") {
            return r.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no scheduled backup finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_writes_scheduled_backups_that_verify_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let key = latchkey_server::backup::format::BackupKey::generate();
    let key_file = dir.path().join("backup.key");
    std::fs::write(&key_file, key.to_b64()).unwrap();
    let (b, k) = (backups.clone(), key_file.clone());
    let app = TestApp::with_config(Backend::Sqlite, move |c| {
        c.backup.dir = Some(b);
        c.backup.key_file = Some(k);
        c.backup.interval_secs = 3600;
    })
    .await;
    let run = finished_run(&app).await;
    assert_eq!(run.status, "ok", "{run:?}");
    let file = PathBuf::from(run.file.unwrap());
    assert!(file.starts_with(&backups));
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("latchkey-") && name.ends_with("Z.lkbackup"),
        "{name}"
    );
    assert!(run.rows.unwrap() > 0 && run.bytes.unwrap() > 0);
    assert!(app.state.store.last_backup().await.unwrap().is_some());
    // The file verifies on its own, and no scratch database is left behind.
    let kek = Arc::clone(&app.state.kek);
    let v = latchkey_server::backup::verify(&file, &key, &kek, dir.path())
        .await
        .unwrap();
    assert!(v.audit_intact);
    let left: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // Restored elsewhere, the run that was still running in its own snapshot is over there,
    // and holds no interval.
    let elsewhere = empty_sqlite();
    let kek_file = app.state.config.data_dir.join("kek");
    ok_json(&cli(
        elsewhere.path(),
        None,
        &kek_file,
        &key_file,
        &["backup", "restore", file.to_str().unwrap(), "--json"],
    ));
    let runs = ok_json(&cli(
        elsewhere.path(),
        None,
        &kek_file,
        &key_file,
        &["backup", "list", "--json"],
    ));
    assert_eq!(runs[0]["status"], "failed", "{runs}");
    assert!(
        std::fs::read_dir(&app.state.config.data_dir)
            .unwrap()
            .all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("latchkey-verify-")),
        "no scratch database left"
    );
    // Another node in the same interval finds it taken.
    let slot = run.slot;
    assert!(
        !app.state
            .store
            .claim_backup(slot, "other:1", 0)
            .await
            .unwrap()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scheduled_backup_is_logged_and_alerted_like_an_intrusion() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be: nothing can be written there.
    let blocked = dir.path().join("not-a-directory");
    std::fs::write(&blocked, b"").unwrap();
    let key_file = dir.path().join("backup.key");
    std::fs::write(
        &key_file,
        latchkey_server::backup::format::BackupKey::generate().to_b64(),
    )
    .unwrap();
    let (b, k) = (blocked.clone(), key_file.clone());
    let app = TestApp::with_config(Backend::Sqlite, move |c| {
        c.backup.dir = Some(b);
        c.backup.key_file = Some(k);
    })
    .await;
    let run = finished_run(&app).await;
    assert_eq!(run.status, "failed");
    assert!(
        run.error.as_deref().unwrap().contains("not-a-directory"),
        "{run:?}"
    );
    let alerts = app.state.store.recent_alerts(10).await.unwrap();
    let alert = alerts
        .iter()
        .find(|a| a.detector == "backup_failed")
        .expect("a backup_failed alert");
    assert!(
        alert.payload.contains("not-a-directory"),
        "{}",
        alert.payload
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_into_a_directory_verifies_and_keeps_the_newest() {
    let app = TestApp::new(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "backup.key");
    let kek = app.state.config.data_dir.join("kek");
    let data = app.state.config.data_dir.clone();
    let dir = work.path().join("nightly");
    std::fs::create_dir(&dir).unwrap();
    for old in [
        "latchkey-20200101T000000Z.lkbackup",
        "latchkey-20200102T000000Z.lkbackup",
    ] {
        std::fs::write(dir.join(old), b"old").unwrap();
    }
    std::fs::write(dir.join("README"), b"not ours").unwrap();
    let d = dir.to_str().unwrap();
    let out = ok_json(&cli(
        &data,
        None,
        &kek,
        &key,
        &["backup", "create", d, "--verify", "--keep", "2", "--json"],
    ));
    assert_eq!(out["verified"], true, "{out}");
    assert_eq!(out["deleted"].as_array().unwrap().len(), 1, "{out}");
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left.len(), 3, "{left:?}");
    assert_eq!(left[0], "README");
    assert_eq!(left[1], "latchkey-20200102T000000Z.lkbackup");
    assert!(left[2].starts_with("latchkey-20") && left[2] != left[1]);
    // --keep only prunes a directory.
    let err = refused(&cli(
        &data,
        None,
        &kek,
        &key,
        &[
            "backup",
            "create",
            work.path().join("one").to_str().unwrap(),
            "--keep",
            "2",
        ],
    ));
    assert!(err.contains("--keep needs a directory"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_key_must_not_be_the_key_encryption_key() {
    let dir = tempfile::tempdir().unwrap();
    let kek = latchkey_server::backup::format::BackupKey::generate().to_b64();
    let config = latchkey_server::Config {
        data_dir: dir.path().to_owned(),
        kek: Some(latchkey_server::secret::Secret::new(kek.clone())),
        backup: latchkey_server::config::BackupConfig {
            key: Some(latchkey_server::secret::Secret::new(kek)),
            ..Default::default()
        },
        ..latchkey_server::Config::default()
    };
    let err = latchkey_server::App::load(config)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("the backup key is the key-encryption key"),
        "{err}"
    );
}
