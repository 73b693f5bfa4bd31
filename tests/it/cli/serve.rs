//! `latchkey serve` as a process: SIGTERM finishes the requests in flight and takes no new
//! connection; no password, secret, code or token reaches a log line, even at `debug`;
//! `latchkey health` tells a ready node from an absent one.

use super::{BIN, json, run};
use crate::common::html_input;
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A `latchkey serve` process on a free port, and its log lines as they come.
pub(super) struct Served {
    child: Child,
    pub(super) port: u16,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Served {
    pub(super) fn start(dir: &Path, env: &[(&str, &str)]) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_remove("DATABASE_URL")
            .env("LATCHKEY_DATA_DIR", dir)
            .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_ISSUER", format!("http://127.0.0.1:{port}"))
            .env("LATCHKEY_ARGON2__MEMORY_KIB", "1024")
            .env("LATCHKEY_ARGON2__ITERATIONS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut served = Served {
            child,
            port,
            lines,
            log: Vec::new(),
        };
        served.wait_for("latchkey ready");
        served
    }

    /// Waits (up to a minute) for a log line containing `needle`.
    pub(super) fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw {:#?}", self.log),
            }
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `kill -9`: no drain, no cleanup, as when a machine loses power.
    pub(super) fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
    }

    /// Waits for the process to exit and returns its status and every line it logged.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "serve did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        (status, std::mem::take(&mut self.log))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM (what Kubernetes, systemd and `docker stop` send): a request whose body is still
/// arriving is answered, new connections are refused from the moment the service says it is
/// shutting down, and the process exits with success.
#[test]
fn sigterm_finishes_requests_in_flight_and_takes_no_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(dir.path(), &[]);
    let body = "grant_type=client_credentials&client_id=nobody&client_secret=wrong";
    let (first, rest) = body.split_at(20);
    let mut in_flight = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    write!(
        in_flight,
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    in_flight.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    served.terminate();
    served.wait_for("latchkey shutting down");
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(("127.0.0.1", served.port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "new connections are still accepted after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    in_flight.write_all(rest.as_bytes()).unwrap();
    in_flight
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = String::new();
    in_flight.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 400"),
        "the request in flight is answered: {response}"
    );
    assert!(response.contains("invalid_client"), "{response}");

    let (status, log) = served.finish();
    assert!(status.success(), "{status}: {log:#?}");
}

/// A day of traffic at `debug` level, wrong passwords and replayed tokens included, and not
/// one log line holds a password, client secret, authorization code, token, CSRF token,
/// cookie value or the key-encryption key.
#[test]
fn no_secret_reaches_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    const PASSWORD: &str = "saffron kettle hums at noon";
    const WRONG: &str = "saffron kettle hums at nine";
    json(&run(
        d,
        &["lab", "create", "--name", "Optics", "--json"],
        None,
    ));
    json(&run(
        d,
        &[
            "user",
            "create",
            "--lab",
            "Optics",
            "--email",
            "grace@lab.example",
            "--password-stdin",
            "--json",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    let client = json(&run(
        d,
        &[
            "client",
            "create",
            "--name",
            "Spectra",
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
            "--grant-types",
            "authorization_code,refresh_token,client_credentials",
            "--lab",
            "*",
            "--json",
        ],
        None,
    ));
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let mut served = Served::start(d, &[("LATCHKEY_LOG", "debug")]);
    let mut secrets = vec![
        PASSWORD.to_owned(),
        WRONG.to_owned(),
        secret.clone(),
        std::fs::read_to_string(d.join("kek"))
            .unwrap()
            .trim()
            .to_owned(),
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(traffic(
        &served,
        &id,
        &secret,
        PASSWORD,
        WRONG,
        &mut secrets,
    ));
    served.terminate();
    served.wait_for("latchkey shutting down");
    let (_, log) = served.finish();
    assert!(
        log.iter().any(|l| l.contains("DEBUG")),
        "debug logging is on: {log:#?}"
    );
    secrets.retain(|s| s.len() >= 8);
    assert!(secrets.len() >= 12, "{secrets:?}");
    for line in &log {
        for s in &secrets {
            assert!(!line.contains(s.as_str()), "a secret in the log: {line}");
        }
    }
}

/// Signs in (after a wrong password), exchanges the code, calls userinfo, refreshes, replays
/// the old refresh token and the code, introspects and revokes a client-credentials token,
/// and fails client authentication; every secret seen on the way goes into `secrets`.
async fn traffic(
    served: &Served,
    id: &str,
    secret: &str,
    password: &str,
    wrong: &str,
    secrets: &mut Vec<String>,
) {
    let http = browser();
    let code = sign_in(
        &http,
        &served.url(""),
        id,
        "grace@lab.example",
        &[wrong, password],
        secrets,
    )
    .await;
    let token = |form: Vec<(&'static str, String)>| {
        http.post(served.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
    };
    let t: Value = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", "http://127.0.0.1:9/cb".into()),
        (
            "code_verifier",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        ),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refresh = t["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    for k in ["access_token", "refresh_token", "id_token"] {
        secrets.push(t[k].as_str().unwrap().to_owned());
    }
    let r = http
        .get(served.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "userinfo");
    let refreshed: Value = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    for k in ["access_token", "refresh_token"] {
        secrets.push(refreshed[k].as_str().expect(k).to_owned());
    }
    // The used refresh token again (reuse: the family is revoked), then the code again.
    let r = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 400, "refresh token reuse");
    let replay = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code),
        ("redirect_uri", "http://127.0.0.1:9/cb".into()),
        (
            "code_verifier",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        ),
    ])
    .await
    .unwrap();
    assert_eq!(replay.status(), 400, "code replay");
    let c: Value = token(vec![("grant_type", "client_credentials".into())])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = c["access_token"].as_str().unwrap().to_owned();
    secrets.push(access.clone());
    for path in ["/introspect", "/revoke"] {
        let r = http
            .post(served.url(path))
            .basic_auth(id, Some(secret))
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = http
        .post(served.url("/token"))
        .basic_auth(id, Some("lk_cs_a-wrong-secret-of-some-length"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    secrets.push("lk_cs_a-wrong-secret-of-some-length".into());
}

/// `latchkey health` (the container image's health check) exits 0 with the readiness report
/// of the node on this configuration's `bind`, and 1 with the reason when nothing answers.
#[test]
fn health_reports_a_ready_node_and_fails_on_an_absent_one() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let health = |bind: &str, extra: &[&str]| {
        Command::new(BIN)
            .arg("health")
            .args(extra)
            .env_remove("DATABASE_URL")
            .env("LATCHKEY_DATA_DIR", dir.path())
            .env("LATCHKEY_BIND", bind)
            .output()
            .unwrap()
    };
    let out = health(&format!("0.0.0.0:{}", served.port), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("/ready") && stdout.contains("\"status\":\"ready\""),
        "{stdout}"
    );
    let out = health(&format!("127.0.0.1:{}", served.port), &["--live"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/health"));
    drop(served);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = health(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not answer"), "{err}");
}

/// Signs `email` in on the hosted pages at `base` (trying each of `passwords` in turn, the
/// last one right), consenting when asked, and returns the authorization code. Cookie and
/// CSRF values seen go into `secrets`.
pub(super) async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    email: &str,
    passwords: &[&str],
    secrets: &mut Vec<String>,
) -> String {
    let mut authorize = url::Url::parse(&format!("{base}/authorize")).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "http://127.0.0.1:9/cb"),
        ("scope", "openid email offline_access"),
        ("state", "st4te-that-is-long"),
        ("nonce", "n0nce-that-is-long"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]);
    let r = http.get(authorize.as_str()).send().await.unwrap();
    for c in r.cookies() {
        secrets.push(c.value().to_owned());
    }
    let login = format!("{base}{}", r.headers()["location"].to_str().unwrap());
    let html = http.get(&login).send().await.unwrap().text().await.unwrap();
    let flow = html_input(&html, "flow").unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    secrets.push(csrf.clone());
    let mut r = None;
    for p in passwords {
        r = Some(
            http.post(format!("{base}/login"))
                .form(&[
                    ("flow", flow.as_str()),
                    ("csrf", csrf.as_str()),
                    ("username", email),
                    ("password", p),
                ])
                .send()
                .await
                .unwrap(),
        );
    }
    let mut r = r.unwrap();
    assert_eq!(r.status(), 303, "sign-in of {email}");
    for c in r.cookies() {
        secrets.push(c.value().to_owned());
    }
    let mut to = r.headers()["location"].to_str().unwrap().to_owned();
    if to.starts_with("/consent") {
        let html = http
            .get(format!("{base}{to}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        secrets.push(csrf.clone());
        r = http
            .post(format!("{base}/consent"))
            .form(&[
                ("flow", html_input(&html, "flow").unwrap().as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap();
        to = r.headers()["location"].to_str().unwrap().to_owned();
    }
    let back = url::Url::parse(&to).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    secrets.push(code.clone());
    code
}

/// A client that keeps cookies and does not follow redirects, as a browser walking the pages.
pub(super) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
