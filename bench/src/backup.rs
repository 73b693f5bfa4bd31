//! `--backup-users N`: backups of a service with N users. A generator fills a fresh PostgreSQL
//! database through SQL (users with an Argon2id hash, memberships, roles, a session, a grant
//! and a refresh token each, a TOTP secret sealed under the KEK for 30 %, a passkey for 20 %,
//! and one chained audit entry per user). Then it times the `latchkey backup` commands as
//! processes under `/usr/bin/time` (wall time and peak RSS): create from PostgreSQL, verify,
//! restore into SQLite, create from SQLite, restore into a new PostgreSQL database.

use crate::report::{Report, Verdict, fmt_bytes};
use crate::server::Instance;
use crate::{pg_admin, phase};
use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use std::path::Path;
use std::time::Instant;

const T0: i64 = 1_796_000_000;

pub fn run(
    bin: &Path,
    rt: &tokio::runtime::Runtime,
    report: &mut Report,
    admin: &str,
    users: u64,
) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("latchkey-bench-backup-")
        .tempdir()?;
    let src_name = crate::fresh_db_name()?;
    let dst_name = crate::fresh_db_name()?;
    let mut src = url::Url::parse(admin).context("--postgres is not a URL")?;
    src.set_path(&src_name);
    let mut dst = src.clone();
    dst.set_path(&dst_name);
    rt.block_on(pg_admin(admin, &format!("CREATE DATABASE {src_name}")))?;
    rt.block_on(pg_admin(admin, &format!("CREATE DATABASE {dst_name}")))?;
    let result = measure(
        bin,
        rt,
        report,
        work.path(),
        src.as_str(),
        dst.as_str(),
        users,
    );
    for name in [&src_name, &dst_name] {
        rt.block_on(pg_admin(
            admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ))?;
    }
    result
}

fn measure(
    bin: &Path,
    rt: &tokio::runtime::Runtime,
    report: &mut Report,
    work: &Path,
    src: &str,
    dst: &str,
    users: u64,
) -> Result<()> {
    let pg_dir = work.join("pg");
    std::fs::create_dir(&pg_dir)?;
    let pg = Instance::new(bin, &pg_dir, Some(src.to_owned()))?;
    phase("backup: starting the server once (keys, secrets)");
    let (server, _) = pg.start()?;
    server.stop()?;
    let kek = std::fs::read_to_string(pg_dir.join("kek"))?;
    phase(&format!("backup: generating {users} users in PostgreSQL"));
    let t = Instant::now();
    rt.block_on(generate(src, kek.trim(), users))?;
    report.note(format!(
        "Backup data: {users} users generated in {:.1} s (each with a membership, a role, a session, a grant and a refresh token, an audit entry; 30 % with TOTP, 20 % with a passkey).",
        t.elapsed().as_secs_f64()
    ));
    let key = work.join("backup.key");
    timed(
        bin,
        &[],
        &[
            "backup",
            "keygen",
            "--out",
            key.to_str().unwrap_or_default(),
        ],
    )?;
    let k = key.to_str().unwrap_or_default();
    let file = work.join("pg.lkbackup");
    let f = file.to_str().unwrap_or_default();
    let kek_file = pg_dir.join("kek");
    let env_pg = [
        ("DATABASE_URL", src),
        ("LATCHKEY_KEK_FILE", kek_file.to_str().unwrap_or_default()),
    ];
    phase("backup: create from PostgreSQL");
    let (secs, rss) = timed(bin, &env_pg, &["backup", "create", f, "--key-file", k])?;
    let size = std::fs::metadata(&file)?.len();
    report.row(
        &format!("backup create, PostgreSQL, {users} users"),
        format!("{secs:.2} s, peak RSS {}", fmt_bytes(rss)),
        "",
        Verdict::None,
    );
    report.row("backup file size", fmt_bytes(size), "", Verdict::None);
    phase("backup: verify");
    let scratch = work.join("scratch");
    std::fs::create_dir(&scratch)?;
    let (secs, rss) = timed(
        bin,
        &env_pg,
        &[
            "backup",
            "verify",
            f,
            "--key-file",
            k,
            "--scratch-dir",
            scratch.to_str().unwrap_or_default(),
        ],
    )?;
    report.row(
        "backup verify (restore into scratch SQLite, audit chain, sealed secrets)",
        format!("{secs:.2} s, peak RSS {}", fmt_bytes(rss)),
        "",
        Verdict::None,
    );
    phase("backup: restore into SQLite");
    let lite_dir = work.join("sqlite");
    std::fs::create_dir(&lite_dir)?;
    let lite_db = format!("sqlite://{}", lite_dir.join("latchkey.db").display());
    let env_lite = [
        ("DATABASE_URL", lite_db.as_str()),
        ("LATCHKEY_KEK_FILE", kek_file.to_str().unwrap_or_default()),
    ];
    let (secs, rss) = timed(bin, &env_lite, &["backup", "restore", f, "--key-file", k])?;
    report.row(
        "backup restore into SQLite",
        format!("{secs:.2} s, peak RSS {}", fmt_bytes(rss)),
        "",
        Verdict::None,
    );
    phase("backup: create from SQLite");
    let file2 = work.join("sqlite.lkbackup");
    let (secs, rss) = timed(
        bin,
        &env_lite,
        &[
            "backup",
            "create",
            file2.to_str().unwrap_or_default(),
            "--key-file",
            k,
        ],
    )?;
    report.row(
        "backup create, SQLite",
        format!("{secs:.2} s, peak RSS {}", fmt_bytes(rss)),
        "",
        Verdict::None,
    );
    phase("backup: restore into a new PostgreSQL database");
    let env_dst = [
        ("DATABASE_URL", dst),
        ("LATCHKEY_KEK_FILE", kek_file.to_str().unwrap_or_default()),
    ];
    let (secs, rss) = timed(
        bin,
        &env_dst,
        &[
            "backup",
            "restore",
            file2.to_str().unwrap_or_default(),
            "--key-file",
            k,
        ],
    )?;
    report.row(
        "backup restore into PostgreSQL",
        format!("{secs:.2} s, peak RSS {}", fmt_bytes(rss)),
        "",
        Verdict::None,
    );
    Ok(())
}

/// Runs `latchkey args` with only `env` set (besides PATH), under `/usr/bin/time`; returns
/// (wall seconds, peak RSS bytes).
fn timed(bin: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<(f64, u64)> {
    let stats = tempfile::NamedTempFile::new()?;
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-o")
        .arg(stats.path())
        .args(["-f", "%e %M"])
        .arg(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LATCHKEY_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .context("running /usr/bin/time (Debian package `time`)")?;
    if !out.status.success() {
        bail!(
            "latchkey {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = std::fs::read_to_string(stats.path())?;
    let mut it = text.split_whitespace();
    let secs: f64 = it.next().unwrap_or("0").parse()?;
    let kib: u64 = it.next().unwrap_or("0").parse()?;
    Ok((secs, kib * 1024))
}

/// The audit chain's hash, as `latchkey_server::audit::chain::entry_hash` computes it.
fn entry_hash(
    prev: &[u8],
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    details: &str,
) -> Vec<u8> {
    let mut c = ring::digest::Context::new(&ring::digest::SHA256);
    c.update(b"latchkey-audit-v1\0");
    c.update(prev);
    c.update(&serde_json::to_vec(&(seq, at, actor, action, target, details)).unwrap_or_default());
    c.finish().as_ref().to_vec()
}

async fn generate(url: &str, kek_b64: &str, users: u64) -> Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let n = users as i64;
    let hash = crate::argon::phc_hash("a bench password of some length")?;
    let uid = "'u-' || lpad(g::text, 7, '0')";
    let statements = [
        "INSERT INTO labs (id, name, created_at) SELECT 'lab-' || g, 'Bench lab ' || g, 1796000000 FROM generate_series(1, 10) g".to_owned(),
        format!("INSERT INTO users (id, email, name, password_hash, disabled, created_at, system_admin) SELECT {uid}, 'user' || g || '@lab.example', 'User ' || g, $1, false, 1796000000 + g, false FROM generate_series(1, {n}) g"),
        format!("INSERT INTO memberships (user_id, lab_id, created_at, admin) SELECT {uid}, 'lab-' || (1 + g % 10), 1796000000, false FROM generate_series(1, {n}) g"),
        "INSERT INTO roles (lab_id, name, min_acr, created_at) SELECT 'lab-' || l, r, NULL, 1796000000 FROM generate_series(1, 10) l, unnest(ARRAY['member', 'operator', 'admin']) r".to_owned(),
        format!("INSERT INTO user_roles (user_id, lab_id, role, created_at) SELECT {uid}, 'lab-' || (1 + g % 10), 'member', 1796000000 FROM generate_series(1, {n}) g"),
        format!("INSERT INTO sessions (id, token_hash, user_id, auth_time, amr, acr, created_at, expires_at, ended_at, factors, last_seen_at, source, user_agent) SELECT 's-' || g, sha256(('s' || g)::bytea), {uid}, 1796000000, '[\"pwd\"]', 'pwd', 1796000000, 1896000000, NULL, '{{\"pwd\":1796000000}}', 1796000000, '10.0.' || (g % 250) || '.' || (g % 200), 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0' FROM generate_series(1, {n}) g"),
        format!("INSERT INTO grants (id, client_id, user_id, session_id, scope, auth_time, acr, amr, lab_id, created_at, expires_at, revoked_at) SELECT 'g-' || g, 'latchkey:admin', {uid}, 's-' || g, 'openid offline_access', 1796000000, 'pwd', '[\"pwd\"]', 'lab-' || (1 + g % 10), 1796000000, 1896000000, NULL FROM generate_series(1, {n}) g"),
        format!("INSERT INTO refresh_tokens (token_hash, grant_id, created_at, consumed_at) SELECT sha256(('r' || g)::bytea), 'g-' || g, 1796000000, NULL FROM generate_series(1, {n}) g"),
        format!("INSERT INTO webauthn_credentials (id, user_id, name, kind, credential, sign_count, backup_eligible, backup_state, created_at, last_used_at) SELECT 'c-' || g, {uid}, 'My passkey', 'passkey', '{{\"cred\":\"' || repeat(md5(g::text), 16) || '\"}}', 0, true, true, 1796000000, NULL FROM generate_series(1, {n}) g WHERE g % 5 = 0"),
    ];
    for (i, sql) in statements.iter().enumerate() {
        if i == 1 {
            client
                .execute(sql.as_str(), &[&hash])
                .await
                .context("users")?;
        } else {
            client
                .batch_execute(sql)
                .await
                .with_context(|| sql.clone())?;
        }
    }
    // TOTP secrets sealed under the KEK (nonce ‖ AES-256-GCM), as the service seals them.
    let kek = URL_SAFE_NO_PAD.decode(kek_b64.trim_end_matches('='))?;
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &kek).map_err(|_| anyhow::anyhow!("bad KEK"))?,
    );
    let rng = ring::rand::SystemRandom::new();
    let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
    for g in (1..=n).filter(|g| g % 10 < 3) {
        let user = format!("u-{g:07}");
        let mut nonce = [0u8; 12];
        ring::rand::SecureRandom::fill(&rng, &mut nonce).map_err(|_| anyhow::anyhow!("rng"))?;
        let mut buf = vec![7u8; 20];
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(format!("latchkey totp v1 {user}").as_bytes()),
            &mut buf,
        )
        .map_err(|_| anyhow::anyhow!("seal"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&buf);
        rows.push((user, sealed));
    }
    for chunk in rows.chunks(1000) {
        let mut sql = "INSERT INTO totp_credentials (user_id, secret, confirmed, last_step, created_at) VALUES ".to_owned();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        for (i, (u, s)) in chunk.iter().enumerate() {
            sql.push_str(&format!(
                "{}(${}, ${}, true, NULL, 1796000000)",
                if i > 0 { ", " } else { "" },
                2 * i + 1,
                2 * i + 2
            ));
            params.push(u);
            params.push(s);
        }
        client
            .execute(sql.as_str(), &params)
            .await
            .context("totp")?;
    }
    // One `user.created` entry per user, chained after the server's own entries.
    let last = client
        .query_opt(
            "SELECT seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let (mut seq, mut prev): (i64, Vec<u8>) = match last {
        Some(r) => (r.get(0), r.get(1)),
        None => (0, vec![0; 32]),
    };
    let mut entries = Vec::new();
    for g in 1..=n {
        seq += 1;
        let (at, target) = (T0 + g, format!("u-{g:07}"));
        let details = format!("{{\"email\":\"user{g}@lab.example\"}}");
        let hash = entry_hash(&prev, seq, at, "cli", "user.created", &target, &details);
        entries.push((
            format!("e-{g}"),
            seq,
            at,
            target,
            details,
            prev.clone(),
            hash.clone(),
        ));
        prev = hash;
    }
    for chunk in entries.chunks(1000) {
        let mut sql = "INSERT INTO audit_events (id, at, actor, action, target, details, seq, prev_hash, hash) VALUES ".to_owned();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        for (i, e) in chunk.iter().enumerate() {
            let b = 7 * i;
            sql.push_str(&format!(
                "{}(${}, ${}, 'cli', 'user.created', ${}, ${}, ${}, ${}, ${})",
                if i > 0 { ", " } else { "" },
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7
            ));
            params.extend([
                &e.0 as &(dyn tokio_postgres::types::ToSql + Sync),
                &e.2,
                &e.3,
                &e.4,
                &e.1,
                &e.5,
                &e.6,
            ]);
        }
        client
            .execute(sql.as_str(), &params)
            .await
            .context("audit")?;
    }
    drop(client);
    let _ = task.await;
    Ok(())
}
