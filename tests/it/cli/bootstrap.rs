//! `latchkey admin bootstrap`: the first system administrator, made on the server in no lab,
//! once (unless `--force`), audited, refusing what the admin operations refuse.

use super::{json, run, stderr};
use serde_json::Value;

const PASSWORD: &str = "violet tractor sings at dawn\n";

fn bootstrap(
    d: &std::path::Path,
    email: &str,
    extra: &[&str],
    stdin: &str,
) -> std::process::Output {
    let mut args = vec!["admin", "bootstrap", "--email", email, "--password-stdin"];
    args.extend_from_slice(extra);
    run(d, &args, Some(stdin))
}

#[test]
fn bootstrap_creates_the_first_system_administrator_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No lab is needed.
    let root = json(&bootstrap(
        d,
        "Root@Lab.example",
        &["--name", "Root", "--json"],
        PASSWORD,
    ));
    assert_eq!(root["email"], "root@lab.example");
    assert_eq!(root["name"], "Root");
    assert_eq!(root["system_admin"], true);
    let text = bootstrap(d, "two@lab.example", &[], PASSWORD);
    assert!(!text.status.success(), "a second one needs --force");
    assert!(
        stderr(&text).contains("a system administrator already exists"),
        "{}",
        stderr(&text)
    );
    let two = bootstrap(d, "two@lab.example", &["--force"], PASSWORD);
    assert!(two.status.success(), "{}", stderr(&two));
    let out = String::from_utf8_lossy(&two.stdout);
    assert!(
        out.contains("created system administrator two@lab.example")
            && out.contains("/admin")
            && out.contains("second factor"),
        "says where to sign in and what follows: {out}"
    );
    // An existing account is granted, not created again.
    let again = bootstrap(d, "root@lab.example", &["--force"], PASSWORD);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("latchkey admin grant --system --email root@lab.example"),
        "{}",
        stderr(&again)
    );
    // The password rules, in the command line's words.
    let weak = bootstrap(d, "three@lab.example", &["--force"], "short\n");
    assert!(!weak.status.success());
    assert!(
        stderr(&weak).contains("--password-stdin: password refused"),
        "{}",
        stderr(&weak)
    );
    let bad = bootstrap(d, "not-an-email", &["--force"], PASSWORD);
    assert!(stderr(&bad).contains("--email"), "{}", stderr(&bad));
    // Audited by the command line, with the accounts.
    let export = run(d, &["audit", "export"], None);
    assert!(export.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let id = &root["id"];
    for action in ["user.create", "user.system_admin"] {
        assert!(
            lines
                .iter()
                .any(|l| l["action"] == action && l["target"] == *id && l["actor"] == "cli"),
            "{action} for {id}: {lines:?}"
        );
    }
    let users = lines
        .iter()
        .filter(|l| l["action"] == "user.create")
        .count();
    assert_eq!(users, 2, "refusals change nothing");
    let report = json(&run(d, &["audit", "verify", "--json"], None));
    assert_eq!(report["intact"], true);
}

#[test]
fn bootstrap_reads_the_password_only_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &["admin", "bootstrap", "--email", "root@lab.example"],
        Some(PASSWORD),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--password-stdin"), "{}", stderr(&o));
    let help = run(dir.path(), &["admin", "bootstrap", "--help"], None);
    let out = String::from_utf8_lossy(&help.stdout);
    for flag in ["--email", "--name", "--password-stdin", "--force", "--json"] {
        assert!(out.contains(flag), "help lacks {flag}");
    }
}
