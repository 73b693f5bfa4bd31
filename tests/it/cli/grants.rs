//! Roles, feature grants, MFA policy and administrators from the command line, with the
//! refusals that say what to fix and change nothing.

use super::*;

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
            "--lab",
            "*",
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
