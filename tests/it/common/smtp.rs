//! A real SMTP server for the e-mail tests: Python's `aiosmtpd` (from PyPI, installed by
//! `scripts/test` into `TEST_PY_VENV`) storing every delivered message in a Maildir, which
//! the tests read back and parse with `mailparse`. With a certificate it offers STARTTLS and
//! refuses mail before it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python of the test virtualenv (aiosmtpd).
fn python() -> PathBuf {
    let venv = std::env::var("TEST_PY_VENV").unwrap_or_else(|_| "/var/tmp/latchkey-pyenv".into());
    let py = Path::new(&venv).join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/test once (it installs aiosmtpd into TEST_PY_VENV)",
        py.display()
    );
    py
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
}

impl Delivered {
    /// The first link in the text body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let i = self.text.find(prefix)?;
        Some(
            self.text[i..]
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts on a free port.
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(free_port(), None)
    }

    /// Starts on `port`; with `tls` (certificate and key files) it requires STARTTLS.
    pub fn start_on(port: u16, tls: Option<(&Path, &Path)>) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let mut cmd = Command::new(python());
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"));
        if let Some((cert, key)) = tls {
            cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
        }
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer { child, port, dir }
    }

    /// The Maildir messages are delivered to (the browser scripts read it).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// Every message delivered so far, oldest first.
    pub fn messages(&self) -> Vec<Delivered> {
        let new = self.dir.path().join("maildir/new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap(), e.path()))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| parse(&std::fs::read(p).unwrap()))
            .collect()
    }

    /// The messages to `to`.
    pub fn to(&self, to: &str) -> Vec<Delivered> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.contains(to))
            .collect()
    }

    /// Waits until `to` has received `n` messages, and returns them.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.to(to);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{to} received {} messages, not {n}: {:?}",
                got.len(),
                got.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server (mail then waits in the outbox).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse(raw: &[u8]) -> Delivered {
    let m = mailparse::parse_mail(raw).unwrap();
    let header = |name: &str| {
        use mailparse::MailHeaderMap;
        m.headers.get_first_value(name).unwrap_or_default()
    };
    let (mut text, mut html) = (String::new(), String::new());
    for part in m.parts() {
        match part.ctype.mimetype.as_str() {
            "text/plain" => text = part.get_body().unwrap(),
            "text/html" => html = part.get_body().unwrap(),
            _ => {}
        }
    }
    Delivered {
        to: header("To"),
        subject: header("Subject"),
        message_id: header("Message-ID"),
        text,
        html,
    }
}

/// `[mail]` settings that send through `smtp` in plain text (a loopback server).
pub fn through(c: &mut latchkey_server::Config, smtp: &SmtpServer) {
    c.mail.smtp_host = Some("127.0.0.1".into());
    c.mail.smtp_port = Some(smtp.port);
    c.mail.smtp_tls = latchkey_server::config::SmtpTls::None;
    c.mail.from = "Lab sign-in <signin@lab.example>".into();
}

/// No configuration beyond [`through`].
pub fn no_tweak(_: &mut latchkey_server::Config) {}

/// Runs `$body(app, smtp)` on SQLite and on PostgreSQL, the app sending through a fresh
/// aiosmtpd; `$tweak` adjusts the configuration further.
#[macro_export]
macro_rules! with_mail {
    ($name:ident, $tweak:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use latchkey_server::Config;
            use $crate::common::smtp::{SmtpServer, through};
            use $crate::common::{Backend, TestApp};
            async fn run(backend: Backend) {
                let smtp = SmtpServer::start();
                let tweak = $tweak;
                let app = TestApp::with_config(backend, |c: &mut Config| {
                    through(c, &smtp);
                    tweak(c);
                })
                .await;
                let f = $body;
                f(&app, &smtp).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
}
