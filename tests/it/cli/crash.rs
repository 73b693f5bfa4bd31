//! Nodes that die: `kill -9` a node while users sign in and refresh, on SQLite (one node,
//! restarted on its file) and on PostgreSQL (two nodes, one survives). Afterwards every
//! token a client received is still valid, every refresh family goes on except those whose
//! request was in flight when the node died, the audit chain verifies, and the surviving node
//! signs everyone in.

use super::serve::{Served, browser, sign_in};
use super::{json, run_with};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const PASSWORD: &str = "copper lantern drifts at dusk";
const USERS: usize = 6;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn email(i: usize) -> String {
    format!("user{i}@lab.example")
}

/// One sign-in's refresh family, as its client saw it.
#[derive(Default)]
struct Family {
    /// Every access token received.
    access: Vec<String>,
    /// The last refresh token received.
    refresh: String,
    /// A request of this family was sent to the node that died and got no answer: whether
    /// the node rotated the token before dying is unknown.
    in_flight: bool,
}

struct Client {
    id: String,
    secret: String,
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    client: &Client,
    form: &[(&str, &str)],
) -> Result<Value, reqwest::Error> {
    let r = http
        .post(format!("{base}/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    assert!(status.is_success(), "{status}: {v}");
    Ok(v)
}

/// One user's load: sign in on a node, refresh three times (alternating nodes), sign in
/// again, until `stop`. A request the dead node never answered ends the user's load.
async fn user_load(
    i: usize,
    nodes: Vec<String>,
    client: Arc<Client>,
    stop: Arc<AtomicBool>,
) -> Vec<Family> {
    let mut families = Vec::new();
    let mut round = i;
    while !stop.load(Ordering::Relaxed) {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let base = &nodes[round % nodes.len()];
        round += 1;
        // A sign-in that fails part-way (its node died) leaves no family behind; the helper
        // panics inside its task (the "panicked" lines in the output), which ends this load.
        let signed_in = tokio::spawn({
            let (http, base, id) = (http.clone(), base.clone(), client.id.clone());
            async move { sign_in(&http, &base, &id, &email(i), &[PASSWORD], &mut Vec::new()).await }
        })
        .await;
        let Ok(code) = signed_in else { break };
        let mut family = Family::default();
        let exchanged = token(
            &http,
            base,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        let Ok(t) = exchanged else { break };
        family
            .access
            .push(t["access_token"].as_str().unwrap().to_owned());
        family.refresh = t["refresh_token"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            let base = &nodes[round % nodes.len()];
            round += 1;
            let refresh = family.refresh.clone();
            match token(
                &http,
                base,
                &client,
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            )
            .await
            {
                Ok(t) => {
                    family
                        .access
                        .push(t["access_token"].as_str().unwrap().to_owned());
                    family.refresh = t["refresh_token"].as_str().unwrap().to_owned();
                }
                Err(_) => {
                    family.in_flight = true;
                    break;
                }
            }
        }
        let stopped = family.in_flight;
        families.push(family);
        if stopped {
            break;
        }
    }
    families
}

/// Provisions the users and the client with the command line; `db` is the PostgreSQL URL.
fn provision(dir: &std::path::Path, db: Option<&str>) -> Client {
    json(&run_with(
        dir,
        db,
        &["lab", "create", "--name", "Foundry", "--json"],
        None,
    ));
    for i in 0..USERS {
        json(&run_with(
            dir,
            db,
            &[
                "user",
                "create",
                "--lab",
                "Foundry",
                "--email",
                &email(i),
                "--password-stdin",
                "--json",
            ],
            Some(&format!("{PASSWORD}\n")),
        ));
    }
    let c = json(&run_with(
        dir,
        db,
        &[
            "client",
            "create",
            "--name",
            "Furnace log",
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
            "--grant-types",
            "authorization_code,refresh_token",
            "--lab",
            "*",
            "--skip-consent",
            "--json",
        ],
        None,
    ));
    Client {
        id: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// Runs the load on `nodes`, kills `victim` with SIGKILL mid-way, lets the load run on, and
/// returns every family the clients saw.
async fn load_and_kill(nodes: &[String], client: &Arc<Client>, victim: &mut Served) -> Vec<Family> {
    let stop = Arc::new(AtomicBool::new(false));
    let users: Vec<_> = (0..USERS)
        .map(|i| tokio::spawn(user_load(i, nodes.to_vec(), client.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    victim.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut families = Vec::new();
    for u in users {
        families.extend(u.await.unwrap());
    }
    families
}

/// The checks after the crash, against `survivor`.
async fn after_the_crash(
    survivor: &str,
    client: &Client,
    families: &[Family],
    dir: &std::path::Path,
    db: Option<&str>,
) {
    let http = reqwest::Client::new();
    assert!(
        families.len() >= USERS,
        "the load ran ({} families)",
        families.len()
    );
    let refreshes: usize = families.iter().map(|f| f.access.len()).sum();
    assert!(
        refreshes > 2 * USERS,
        "tokens were issued under load ({refreshes})"
    );
    // Every access token a client received is still active.
    for f in families {
        for access in &f.access {
            let r: Value = http
                .post(format!("{survivor}/introspect"))
                .basic_auth(&client.id, Some(&client.secret))
                .form(&[("token", access.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["active"], true, "a token a client received: {r}");
        }
    }
    // Every family goes on, except (perhaps) one whose request was in flight.
    let mut in_flight = 0;
    for f in families {
        let r = http
            .post(format!("{survivor}/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", f.refresh.as_str()),
            ])
            .send()
            .await
            .unwrap();
        if f.in_flight {
            in_flight += 1;
            assert!(
                r.status() == 200 || r.status() == 400,
                "in flight: refreshed, or refused as reused: {}",
                r.status()
            );
        } else {
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    }
    eprintln!(
        "{} families, {refreshes} access tokens, {in_flight} in flight when the node died",
        families.len()
    );
    // The audit chain verifies.
    let out = run_with(dir, db, &["audit", "verify", "--json"], None);
    let v = json(&out);
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["entries"].as_u64().unwrap() > 0, "{v}");
    // The survivor signs everyone in.
    for i in 0..USERS {
        let http = browser();
        let code = sign_in(
            &http,
            survivor,
            &client.id,
            &email(i),
            &[PASSWORD],
            &mut Vec::new(),
        )
        .await;
        let t = token(
            &http,
            survivor,
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
        .unwrap();
        assert!(t["refresh_token"].is_string());
    }
}

fn kek() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand_bytes())
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b
}

#[test]
fn sqlite_node_killed_under_load_loses_nothing_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let client = Arc::new(provision(d, None));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut node = Served::start(d, &[]);
    let issuer = node.url("");
    let families = runtime.block_on(load_and_kill(
        std::slice::from_ref(&issuer),
        &client,
        &mut node,
    ));
    // The same database file, a new process (same issuer: tokens name it).
    let again = Served::start(d, &[("LATCHKEY_ISSUER", issuer.as_str())]);
    let survivor = again.url("");
    runtime.block_on(after_the_crash(&survivor, &client, &families, d, None));
}

#[test]
fn postgres_node_killed_under_load_the_other_serves_everyone() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = format!("lk_crash_{}", uuid::Uuid::new_v4().simple());
    runtime.block_on(pg_admin(&format!("CREATE DATABASE {name}")));
    let base = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    let db = url.to_string();
    let dir = tempfile::tempdir().unwrap();
    let (da, db_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db_dir).unwrap();
    let client = Arc::new(provision(&da, Some(&db)));
    let kek = kek();
    let env_a = [
        ("DATABASE_URL", db.as_str()),
        ("LATCHKEY_KEK", kek.as_str()),
    ];
    let mut a = Served::start(&da, &env_a);
    let issuer = a.url("");
    let env_b = [
        ("DATABASE_URL", db.as_str()),
        ("LATCHKEY_KEK", kek.as_str()),
        ("LATCHKEY_ISSUER", issuer.as_str()),
    ];
    let b = Served::start(&db_dir, &env_b);
    let nodes = [issuer.clone(), b.url("")];
    let families = runtime.block_on(load_and_kill(&nodes, &client, &mut a));
    runtime.block_on(after_the_crash(
        &b.url(""),
        &client,
        &families,
        &da,
        Some(&db),
    ));
    drop(b);
    runtime.block_on(pg_admin(&format!("DROP DATABASE {name} WITH (FORCE)")));
}

async fn pg_admin(sql: &str) {
    let base = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (c, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    let t = tokio::spawn(conn);
    c.batch_execute(sql).await.unwrap();
    drop(c);
    let _ = t.await;
}
