//! What a lab administrator may learn and do, pinned on both databases (issue 11, items 4 and
//! 5): their lab's audit view shows no one outside the lab; they never hold an invitation's
//! link (which would let them choose the password of an account for any address); and no
//! answer tells them whether an address outside their lab has an account.

use crate::admin_api::make_user;
use crate::both;
use crate::common::*;
use latchkey_core::names::{LabId, UserId};
use latchkey_server::admin::{Actor, Admin, AdminError, ops};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Lab A (the test lab) with its administrator `boss-a@lab.example`, and lab B.
async fn two_labs(app: &TestApp) -> (String, String) {
    let la = make_user(app, &app.lab_id, "boss-a@lab.example").await;
    app.state
        .store
        .set_lab_admin(&UserId::new(&la), &app.lab(), true, &[])
        .await
        .unwrap();
    let beta = app
        .state
        .store
        .create_lab("Lab B", |_| Vec::new())
        .await
        .unwrap()
        .id;
    (la, beta)
}

fn system_admin(id: &str) -> Admin {
    Admin {
        actor: Actor::User(UserId::new(id)),
        system: true,
        labs: BTreeSet::new(),
        // Rights only: the sign-in strength checks are pinned in admin_strength.rs.
        sign_in: None,
    }
}

both!(
    lab_audit_view_names_no_one_outside_the_lab,
    async |app: &TestApp| {
        use latchkey_server::audit::{Action, Event};
        let (_, beta) = two_labs(app).await;
        // A system administrator who is also a member of lab A acts on a person who is only
        // in lab B: before the fix, lab A's view showed these because their actor is a member.
        let root = make_user(app, &app.lab_id, "root@lab.example").await;
        app.state
            .store
            .set_system_admin(&UserId::new(&root), true, &[])
            .await
            .unwrap();
        let root_admin = system_admin(&root);
        let bea = ops::add_member(
            &app.state,
            &root_admin,
            &LabId::new(&beta),
            ops::NewMember {
                email: "bea@beta.example".into(),
                name: Some("Bea Beta".into()),
                password: Some(PASSWORD.into()),
                roles: vec![],
            },
        )
        .await
        .unwrap()
        .user_id;
        let bea_id = bea.as_str().to_owned();
        app.state
            .store
            .audit(Event::new(
                &bea_id,
                Action::LoginPassword,
                &bea_id,
                json!({}),
            ))
            .await
            .unwrap();
        ops::set_disabled(&app.state, &root_admin, &bea, true)
            .await
            .unwrap();
        ops::reset_factors(&app.state, &root_admin, &bea)
            .await
            .unwrap();
        ops::export_user(&app.state, &root_admin, &bea)
            .await
            .unwrap();
        // Lab A's own life: a member's sign-in, a role, an account action on a member.
        let ada = app.user_id.clone();
        app.state
            .store
            .audit(Event::new(&ada, Action::LoginPassword, &ada, json!({})))
            .await
            .unwrap();
        ops::put_role(
            &app.state,
            &root_admin,
            &app.lab(),
            &ops::role_name("name", "reader").unwrap(),
            ops::RoleBody {
                features: vec!["orders:read".into()],
                min_acr: None,
            },
        )
        .await
        .unwrap();
        ops::end_sessions(&app.state, &root_admin, &app.user())
            .await
            .unwrap();

        let b = Browser::new(app);
        let token = console_token(app, &b, "boss-a@lab.example").await;
        let (s, log) = call(
            app,
            Some(&token),
            Method::GET,
            &format!("/api/v1/labs/{}/audit?limit=1000", app.lab_id),
            None,
        )
        .await;
        assert_eq!(s, 200, "{log}");
        let text = log.to_string();
        for outside in [
            bea_id.as_str(),
            "bea@beta.example",
            "Bea Beta",
            beta.as_str(),
        ] {
            assert!(
                !text.contains(outside),
                "lab A's view names {outside}: {log}"
            );
        }
        let actions: BTreeSet<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        for shown in ["login.password", "role.put", "user.end_sessions"] {
            assert!(actions.contains(shown), "{shown} missing: {log}");
        }
        // The whole log still has them, for system administrators.
        let sys = client_token(app, "*").await;
        let (_, all) = call(
            app,
            Some(&sys),
            Method::GET,
            "/api/v1/audit?limit=1000",
            None,
        )
        .await;
        assert!(all.to_string().contains(&bea_id));
        // The console's page reads the same view.
        let r = b.get(&format!("/admin/labs/{}/audit", app.lab_id)).await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("role.put"), "{html}");
        for outside in [
            bea_id.as_str(),
            "bea@beta.example",
            "Bea Beta",
            beta.as_str(),
        ] {
            assert!(
                !html.contains(outside),
                "the console's view names {outside}"
            );
        }
    }
);

/// An answer with what necessarily differs (the address itself, fresh ids and times) blanked.
fn neutral(v: &Value, email: &str) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["id", "created_at", "expires_at"] {
            if o.contains_key(k) {
                o.insert(k.into(), json!("…"));
            }
        }
    }
    v.to_string().replace(email, "EMAIL")
}

both!(
    lab_admin_cannot_tell_whether_an_email_has_an_account,
    async |app: &TestApp| {
        let (_, beta) = two_labs(app).await;
        let bob = make_user(app, &beta, "bob@beta.example").await;
        let (known, unknown) = ("bob@beta.example", "nobody@beta.example");
        let b = Browser::new(app);
        let token = console_token(app, &b, "boss-a@lab.example").await;
        let lab = &app.lab_id;
        // API: adding a member, and inviting.
        for path in ["members", "invitations"] {
            let mut answers = vec![];
            for email in [known, unknown] {
                let (s, body) = call(
                    app,
                    Some(&token),
                    Method::POST,
                    &format!("/api/v1/labs/{lab}/{path}"),
                    Some(json!({"email": email})),
                )
                .await;
                answers.push((s, neutral(&body, email)));
            }
            assert_eq!(answers[0], answers[1], "{path}: the answers differ");
        }
        // Console: the same two forms.
        make_user(app, &beta, "carl@beta.example").await;
        let page = b
            .get(&format!("/admin/labs/{lab}"))
            .await
            .text()
            .await
            .unwrap();
        let csrf = html_input(&page, "csrf").unwrap();
        for path in ["members", "invitations"] {
            let mut answers = vec![];
            for email in ["carl@beta.example", "nobody2@beta.example"] {
                let r = b
                    .post_form(
                        &format!("/admin/labs/{lab}/{path}"),
                        &[("csrf", &csrf), ("email", email)],
                    )
                    .await;
                let status = r.status().as_u16();
                let html = r.text().await.unwrap().replace(email, "EMAIL");
                // Ids and times of invitations differ; their pages show them.
                let html: String = regex_lite_strip_ids(&html)
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .collect();
                answers.push((status, html));
            }
            assert_eq!(answers[0], answers[1], "console {path}: the answers differ");
        }
        // Nothing was added to the lab; bob is where he was.
        assert_eq!(
            app.state.store.user_labs(&bob).await.unwrap(),
            vec![beta.clone()]
        );
        // System administrators see the truth.
        let sys = client_token(app, "*").await;
        let (s, e) = call(
            app,
            Some(&sys),
            Method::POST,
            &format!("/api/v1/labs/{lab}/invitations"),
            Some(json!({"email": "dora@beta.example"})),
        )
        .await;
        assert_eq!(s, 200, "{e}");
        make_user(app, &beta, "erin@beta.example").await;
        let (s, e) = call(
            app,
            Some(&sys),
            Method::POST,
            &format!("/api/v1/labs/{lab}/invitations"),
            Some(json!({"email": "erin@beta.example"})),
        )
        .await;
        assert_eq!((s, e["field"].as_str()), (422, Some("email")), "{e}");
        let (s, m) = call(
            app,
            Some(&sys),
            Method::POST,
            &format!("/api/v1/labs/{lab}/members"),
            Some(json!({"email": known})),
        )
        .await;
        assert_eq!((s, m["user_id"].as_str()), (200, Some(bob.as_str())), "{m}");
    }
);

/// Replaces every UUID-looking run (36 characters of hex and dashes) with `ID`.
fn regex_lite_strip_ids(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let run = b[i..]
            .iter()
            .take(36)
            .take_while(|c| c.is_ascii_hexdigit() || **c == b'-')
            .count();
        if run == 36 && b[i + 8] == b'-' {
            out.push_str("ID");
            i += 36;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

both!(
    lab_admin_never_receives_an_invitation_link,
    async |app: &TestApp| {
        let (la, _) = two_labs(app).await;
        let b = Browser::new(app);
        let token = console_token(app, &b, "boss-a@lab.example").await;
        let lab = &app.lab_id;
        // API: recorded, without a link.
        let (s, inv) = call(
            app,
            Some(&token),
            Method::POST,
            &format!("/api/v1/labs/{lab}/invitations"),
            Some(json!({"email": "nia@partner.example"})),
        )
        .await;
        assert_eq!(s, 200, "{inv}");
        assert!(inv.get("link").is_none(), "{inv}");
        // Console: the page says who sends it, and shows no link.
        let page = b
            .get(&format!("/admin/labs/{lab}"))
            .await
            .text()
            .await
            .unwrap();
        let csrf = html_input(&page, "csrf").unwrap();
        let r = b
            .post_form(
                &format!("/admin/labs/{lab}/invitations"),
                &[("csrf", &csrf), ("email", "omar@partner.example")],
            )
            .await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(!html.contains("/invite/"), "{html}");
        assert!(html.contains("latchkey invitation link"), "{html}");
        // A lab administrator cannot issue the link either.
        let lab_admin = Admin {
            actor: Actor::User(UserId::new(&la)),
            system: false,
            labs: BTreeSet::from([app.lab()]),
            // Rights only: the sign-in strength checks are pinned in admin_strength.rs.
            sign_in: None,
        };
        let id = inv["id"].as_str().unwrap();
        assert!(matches!(
            ops::issue_invitation_link(&app.state, &lab_admin, &app.lab(), id).await,
            Err(AdminError::Forbidden(_))
        ));
        // The operator issues it; issuing again replaces it.
        let first = ops::issue_invitation_link(&app.state, &Admin::cli(), &app.lab(), id)
            .await
            .unwrap()
            .link
            .unwrap();
        let second = ops::issue_invitation_link(&app.state, &Admin::cli(), &app.lab(), id)
            .await
            .unwrap()
            .link
            .unwrap();
        let path = |l: &str| l.strip_prefix(&app.base).unwrap().to_owned();
        let invitee = Browser::new(app);
        assert_eq!(invitee.get(&path(&first)).await.status(), 404);
        let html = invitee.get(&path(&second)).await.text().await.unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let r = invitee
            .post_form(&path(&second), &[("csrf", &csrf), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status(), 200);
        let u = app
            .state
            .store
            .find_user_by_email("nia@partner.example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            app.state.store.user_labs(&u.id).await.unwrap(),
            vec![lab.clone()]
        );
        // The audit log says who issued it.
        let sys = client_token(app, "*").await;
        let (_, log) = call(
            app,
            Some(&sys),
            Method::GET,
            "/api/v1/audit?action=invitation.",
            None,
        )
        .await;
        let actions: Vec<(&str, &str)> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
            .collect();
        assert!(actions.contains(&("cli", "invitation.link")), "{log}");
        assert!(
            actions.contains(&(u.id.as_str(), "invitation.accept")),
            "{log}"
        );
    }
);

both!(
    invitation_link_is_refused_for_an_address_that_has_an_account,
    async |app: &TestApp| {
        let (_, beta) = two_labs(app).await;
        make_user(app, &beta, "bob@beta.example").await;
        let token = console_token(app, &Browser::new(app), "boss-a@lab.example").await;
        let (s, inv) = call(
            app,
            Some(&token),
            Method::POST,
            &format!("/api/v1/labs/{}/invitations", app.lab_id),
            Some(json!({"email": "bob@beta.example"})),
        )
        .await;
        assert_eq!(s, 200, "{inv}");
        let r = ops::issue_invitation_link(
            &app.state,
            &Admin::cli(),
            &app.lab(),
            inv["id"].as_str().unwrap(),
        )
        .await;
        assert!(matches!(r, Err(AdminError::Conflict(_))), "{r:?}");
    }
);

/// The `latchkey` binary on the app's database.
async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let dir = app.state.config.data_dir.clone();
    let url = app.state.config.database_url.clone();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        match url {
            Some(u) => cmd.env("DATABASE_URL", u),
            None => cmd.env_remove("DATABASE_URL"),
        };
        cmd.args(&args)
            .env("LATCHKEY_DATA_DIR", dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

both!(
    operator_issues_the_link_of_a_lab_admins_invitation,
    async |app: &TestApp| {
        two_labs(app).await;
        let token = console_token(app, &Browser::new(app), "boss-a@lab.example").await;
        let (s, inv) = call(
            app,
            Some(&token),
            Method::POST,
            &format!("/api/v1/labs/{}/invitations", app.lab_id),
            Some(json!({"email": "nia@partner.example"})),
        )
        .await;
        assert_eq!(s, 200, "{inv}");
        let id = inv["id"].as_str().unwrap();
        let o = cli(app, &["invitation", "list", "--lab", "Lab 42", "--json"]).await;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let list: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(list[0]["id"], id);
        assert!(list[0].get("link").is_none());
        let o = cli(
            app,
            &[
                "invitation",
                "link",
                "--lab",
                "Lab 42",
                "--id",
                id,
                "--json",
            ],
        )
        .await;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let issued: Value = serde_json::from_slice(&o.stdout).unwrap();
        let link = issued["link"].as_str().unwrap();
        // The command line's issuer is its own configuration's; the path is what matters.
        let path = &link[link.find("/invite/").unwrap()..];
        assert_eq!(Browser::new(app).get(path).await.status(), 200);
        // Refusals say what to fix and change nothing.
        let o = cli(
            app,
            &["invitation", "link", "--lab", "Lab 42", "--id", "nope"],
        )
        .await;
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no open invitation with this id"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = cli(
            app,
            &[
                "invitation",
                "create",
                "--lab",
                "Lab 42",
                "--email",
                "x@partner.example",
                "--valid-days",
                "99",
            ],
        )
        .await;
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--valid-days: give 1 to 30 days"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (_, open) = call(
            app,
            Some(&token),
            Method::GET,
            &format!("/api/v1/labs/{}/invitations", app.lab_id),
            None,
        )
        .await;
        assert_eq!(open.as_array().unwrap().len(), 1);
    }
);

both!(
    lab_admin_cannot_remove_a_system_administrator_and_so_end_their_sessions,
    async |app: &TestApp| {
        let (la, _) = two_labs(app).await;
        let root = make_user(app, &app.lab_id, "root@lab.example").await;
        app.state
            .store
            .set_system_admin(&UserId::new(&root), true, &[])
            .await
            .unwrap();
        let lab_admin = Admin {
            actor: Actor::User(UserId::new(&la)),
            system: false,
            labs: BTreeSet::from([app.lab()]),
            // Rights only: the sign-in strength checks are pinned in admin_strength.rs.
            sign_in: None,
        };
        let r = ops::remove_member(&app.state, &lab_admin, &app.lab(), &UserId::new(&root)).await;
        assert!(matches!(r, Err(AdminError::Forbidden(_))), "{r:?}");
        assert!(
            ops::get_member(
                &app.state,
                &system_admin(&root),
                &app.lab(),
                &UserId::new(&root)
            )
            .await
            .is_ok(),
            "still a member"
        );
        // A system administrator may.
        ops::remove_member(
            &app.state,
            &system_admin(&root),
            &app.lab(),
            &UserId::new(&root),
        )
        .await
        .unwrap();
    }
);
