//! The mail queue across a crash: messages queued while the SMTP server is down survive
//! `kill -9` of the node and are each delivered once after it restarts, including one whose
//! node died while sending it (its lease runs out and it is sent again).

use super::serve::Served;
use super::{json, run};
use crate::common::smtp::{SmtpServer, free_port};
use std::time::{Duration, Instant};

const PASSWORD: &str = "copper lantern drifts at dusk";

fn email(i: usize) -> String {
    format!("user{i}@lab.example")
}

#[test]
fn queued_mail_is_sent_once_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&run(
        d,
        &["lab", "create", "--name", "Foundry", "--json"],
        None,
    ));
    for i in 0..3 {
        json(&run(
            d,
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
    // Nothing listens on the SMTP port yet.
    let port = free_port().to_string();
    let env = [
        ("LATCHKEY_MAIL__SMTP_HOST", "127.0.0.1"),
        ("LATCHKEY_MAIL__SMTP_PORT", port.as_str()),
        ("LATCHKEY_MAIL__SMTP_TLS", "none"),
    ];
    let mut node = Served::start(d, &env);
    for i in 0..3 {
        let out = json(&run(
            d,
            &["user", "reset-password", "--email", &email(i), "--json"],
            None,
        ));
        assert_eq!(out["email"], email(i));
    }
    // The node tried, and failed: the messages wait for their retry.
    node.wait_for("mail not sent");
    node.kill9();
    // One of them as if its node had died while sending it: claimed, lease long over (and
    // any the node had claimed when it died: their lease runs out, as time passes).
    {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut c =
            diesel::SqliteConnection::establish(d.join("latchkey.db").to_str().unwrap()).unwrap();
        c.batch_execute(&format!(
            "UPDATE mail_outbox SET state = 'sending', lease_until = 1 WHERE recipient = '{}'",
            email(0)
        ))
        .unwrap();
        c.batch_execute("UPDATE mail_outbox SET lease_until = 1 WHERE state = 'sending'")
            .unwrap();
    }
    let smtp = SmtpServer::start_on(port.parse().unwrap(), None);
    let node = Served::start(d, &env);
    let _ = &node;
    let deadline = Instant::now() + Duration::from_secs(40);
    while smtp.messages().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "delivered: {:?}",
            smtp.messages()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Past every retry the first failure scheduled: still one message each.
    std::thread::sleep(Duration::from_secs(8));
    let got = smtp.messages();
    let mut to: Vec<String> = got.iter().map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, (0..3).map(email).collect::<Vec<_>>(), "each once");
    assert!(got.iter().all(|m| m.subject == "Reset your password"));
    drop(node);
}
