//! The admin API and console: the authorisation matrix generated from the route table (the
//! served OpenAPI document, which the same list of handlers produces), the grants and policy
//! the API sets reaching tokens, validation errors naming the field, refusals that change
//! nothing, automation clients, the console's sign-in and confirmations. Both databases.

use crate::both;
use crate::common::*;
use latchkey_core::names::{LabId, UserId};
use latchkey_server::provision;
use reqwest::Method;
use serde_json::{Value, json};

/// A user made through the same path as `latchkey user create`.
pub async fn make_user(app: &TestApp, lab: &str, email: &str) -> String {
    provision::create_user(
        &app.state.store,
        &app.state.config,
        &app.state.hasher,
        lab,
        email,
        None,
        PASSWORD,
    )
    .await
    .unwrap()
    .id
}

/// A valid body for each request schema: a new schema without one fails the matrix test, so
/// a new endpoint cannot skip it.
fn sample_body(schema: &str) -> Value {
    match schema {
        "NewLab" => json!({"name": "Matrix lab"}),
        "NewMember" => json!({"email": "newcomer@lab.example"}),
        "RolesBody" => json!({"roles": []}),
        "AdminBody" | "SystemAdminBody" => json!({"admin": false}),
        "AllowBody" => json!({"allow": true}),
        "NewInvitation" => json!({"email": "invitee@lab.example"}),
        "NewEmail" => json!({"email": "moved@lab.example"}),
        "RoleBody" => json!({"features": ["orders:read"]}),
        "PolicyView" => json!({"min_acr": null}),
        "NewClientBody" => json!({"name": "bot", "grant_types": ["client_credentials"]}),
        "ClientUpdateBody" => json!({"name": "Renamed app"}),
        "RotateSecretBody" => json!({"overlap": "1h"}),
        "ClientPolicyBody" => json!({"min_acr": null}),
        other => panic!("no sample body for request schema {other}: add one to sample_body"),
    }
}

struct Op {
    method: Method,
    path: String,
    access: String,
    body: Option<Value>,
}

/// Every operation of the served OpenAPI document.
async fn operations(app: &TestApp) -> Vec<Op> {
    let doc: Value = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            let method: Method = m.to_uppercase().parse().unwrap();
            let access = op["security"][0]["bearer"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{m} {path} declares no bearer role"))
                .to_owned();
            let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .map(|r| sample_body(r.trim_start_matches("#/components/schemas/")));
            ops.push(Op {
                method,
                path: path.clone(),
                access,
                body,
            });
        }
    }
    assert!(ops.len() >= 35, "the document lists every route");
    ops
}

fn fill(path: &str, params: &[(&str, &str)]) -> String {
    let mut p = path.to_owned();
    for (k, v) in params {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    assert!(!p.contains('{'), "unfilled parameter in {p}");
    p
}

struct Fixture {
    system: String,
    lab_admin: String,
    plain: String,
    lab_b: String,
    /// Parameters naming lab B's objects, and lab A's.
    b: Vec<(&'static str, String)>,
    a: Vec<(&'static str, String)>,
}

async fn invitation(app: &TestApp, lab: &str, email: &str) -> String {
    let inv = latchkey_server::store::invitations::Invitation {
        id: uuid::Uuid::new_v4().to_string(),
        lab: lab.to_owned(),
        email: email.to_owned(),
        roles: vec![],
        created_by: "test".into(),
        created_at: 0,
        expires_at: i64::MAX / 2,
        accepted_at: None,
    };
    app.state
        .store
        .create_invitation(
            &inv,
            latchkey_server::secret::TokenHash::of(&format!("lk_in_{}", inv.id)),
            true,
            &[],
        )
        .await
        .unwrap();
    inv.id
}

async fn fixture(app: &TestApp) -> Fixture {
    let store = &app.state.store;
    let a = app.lab_id.clone();
    let b = store.create_lab("Lab B", |_| Vec::new()).await.unwrap().id;
    let sys_id = make_user(app, &a, "root@lab.example").await;
    store
        .set_system_admin(&UserId::new(&sys_id), true, &[])
        .await
        .unwrap();
    let la_id = make_user(app, &a, "boss-a@lab.example").await;
    store
        .set_lab_admin(&UserId::new(&la_id), &LabId::new(&a), true, &[])
        .await
        .unwrap();
    let user_b = make_user(app, &b, "bob@lab.example").await;
    let user_a = make_user(app, &a, "amy@lab.example").await;
    for (lab, role) in [(&b, "viewer"), (&a, "viewer")] {
        store
            .put_role(&LabId::new(lab), role, &["orders:read".into()], None, &[])
            .await
            .unwrap();
    }
    let inv_b = invitation(app, &b, "carl@lab.example").await;
    let inv_a = invitation(app, &a, "cleo@lab.example").await;
    let client = app.client(|_| {}).await.client_id;
    let (sb, la, pl) = (Browser::new(app), Browser::new(app), Browser::new(app));
    Fixture {
        system: console_token(app, &sb, "root@lab.example").await,
        lab_admin: console_token(app, &la, "boss-a@lab.example").await,
        plain: console_token(app, &pl, EMAIL).await,
        b: vec![
            ("lab", b.clone()),
            ("user", user_b),
            ("role", "viewer".into()),
            ("invitation", inv_b),
            ("feature", "orders:read".into()),
            ("client", client.clone()),
            ("kid", "no-such-kid".into()),
        ],
        a: vec![
            ("lab", a),
            ("user", user_a),
            ("role", "viewer".into()),
            ("invitation", inv_a),
            ("feature", "orders:read".into()),
            ("client", client),
            ("kid", "no-such-kid".into()),
        ],
        lab_b: b,
    }
}

fn params<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

both!(
    authorisation_matrix_is_enforced_for_every_route_in_the_table,
    async |app: &TestApp| {
        let f = fixture(app).await;
        let ops = operations(app).await;
        let on_b = params(&f.b);
        let on_a = params(&f.a);
        let mut checked = 0;
        // Refusals first: they must change nothing (the allowed calls below come after).
        for op in &ops {
            let path_b = fill(&op.path, &on_b);
            let what = format!("{} {}", op.method, op.path);
            let (s, body) = call(app, None, op.method.clone(), &path_b, op.body.clone()).await;
            assert_eq!(s, 401, "no token: {what}");
            assert_eq!(body["error"], "unauthenticated", "{what}");
            let (s, body) = call(
                app,
                Some(&f.plain),
                op.method.clone(),
                &path_b,
                op.body.clone(),
            )
            .await;
            assert_eq!(s, 403, "a plain user is refused: {what}");
            assert_eq!(body["error"], "forbidden", "{what}");
            let (s, body) = call(
                app,
                Some(&f.lab_admin),
                op.method.clone(),
                &path_b,
                op.body.clone(),
            )
            .await;
            if op.access == "admin" {
                assert_eq!(s, 200, "{what}");
                assert!(
                    !body.to_string().contains(&f.lab_b),
                    "a lab administrator sees only their labs: {what}"
                );
            } else {
                assert_eq!(s, 403, "lab A's administrator on lab B's objects: {what}");
            }
            checked += 1;
        }
        // Lab A's administrator on lab A's objects: allowed where the role is lab, user or
        // admin; refused on system routes. Deletions last, so that each route still finds
        // its objects.
        let mut ordered: Vec<&Op> = ops.iter().collect();
        ordered.sort_by_key(|op| {
            (
                op.method == Method::DELETE,
                !op.path.starts_with("/api/v1/users"),
            )
        });
        for op in ordered {
            let what = format!("{} {}", op.method, op.path);
            let (s, _) = call(
                app,
                Some(&f.lab_admin),
                op.method.clone(),
                &fill(&op.path, &on_a),
                op.body.clone(),
            )
            .await;
            if op.access == "system" {
                assert_eq!(
                    s, 403,
                    "system route refused to a lab administrator: {what}"
                );
            } else {
                assert!(
                    s != 401 && s != 403 && s < 500,
                    "lab administrator on their own lab: {what} gave {s}"
                );
            }
        }
        // A system administrator may call everything, on lab B too.
        for op in &ops {
            let what = format!("{} {}", op.method, op.path);
            let (s, _) = call(
                app,
                Some(&f.system),
                op.method.clone(),
                &fill(&op.path, &on_b),
                op.body.clone(),
            )
            .await;
            assert!(
                s != 401 && s != 403 && s < 500,
                "system administrator: {what} gave {s}"
            );
        }
        assert_eq!(checked, ops.len());
    }
);

both!(
    automation_clients_are_bound_to_their_scope,
    async |app: &TestApp| {
        let f = fixture(app).await;
        let sys = client_token(app, "*").await;
        let lab_a = client_token(app, &app.lab_id).await;
        let (s, labs) = call(app, Some(&sys), Method::GET, "/api/v1/labs", None).await;
        assert_eq!(s, 200);
        assert_eq!(labs.as_array().unwrap().len(), 2);
        let (s, _) = call(app, Some(&sys), Method::GET, "/api/v1/keys", None).await;
        assert_eq!(s, 200);
        let (s, _) = call(
            app,
            Some(&lab_a),
            Method::GET,
            &format!("/api/v1/labs/{}/members", f.lab_b),
            None,
        )
        .await;
        assert_eq!(s, 403, "a lab-bound client on another lab");
        let (s, members) = call(
            app,
            Some(&lab_a),
            Method::GET,
            &format!("/api/v1/labs/{}/members", app.lab_id),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert!(members.to_string().contains(EMAIL));
        let (s, _) = call(app, Some(&lab_a), Method::GET, "/api/v1/keys", None).await;
        assert_eq!(s, 403);
    }
);

both!(
    admin_scope_is_refused_to_a_client_without_an_admin_binding,
    async |app: &TestApp| {
        let c = app
            .client(|c| {
                c.grant_types = vec!["client_credentials".into()];
                c.redirect_uris = vec![];
            })
            .await;
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&c.client_id, c.client_secret.as_deref())
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "latchkey:admin"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_scope");
        // Its ordinary token (audience: itself) does not open the admin API either.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&c.client_id, c.client_secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let t: Value = r.json().await.unwrap();
        let (s, body) = call(
            app,
            t["access_token"].as_str(),
            Method::GET,
            "/api/v1/labs",
            None,
        )
        .await;
        assert_eq!(s, 401);
        assert_eq!(body["error"], "unauthenticated");
    }
);

both!(
    user_token_issued_to_another_client_is_refused,
    async |app: &TestApp| {
        let sys = make_user(app, &app.lab_id, "root@lab.example").await;
        app.state
            .store
            .set_system_admin(&UserId::new(&sys), true, &[])
            .await
            .unwrap();
        let c = app.client(|c| c.skip_consent = true).await;
        let t = user_tokens_for(
            app,
            &c.client_id,
            c.client_secret.as_deref().unwrap(),
            "openid",
            "root@lab.example",
        )
        .await;
        let (s, _) = call(
            app,
            t["access_token"].as_str(),
            Method::GET,
            "/api/v1/labs",
            None,
        )
        .await;
        assert_eq!(
            s, 401,
            "a relying service cannot replay an administrator's token at the admin API"
        );
    }
);

both!(revoked_admin_rights_apply_at_once, async |app: &TestApp| {
    let la = make_user(app, &app.lab_id, "boss-a@lab.example").await;
    app.state
        .store
        .set_lab_admin(&UserId::new(&la), &app.lab(), true, &[])
        .await
        .unwrap();
    let b = Browser::new(app);
    let t = console_token(app, &b, "boss-a@lab.example").await;
    let members = format!("/api/v1/labs/{}/members", app.lab_id);
    assert_eq!(
        call(app, Some(&t), Method::GET, &members, None).await.0,
        200
    );
    app.state
        .store
        .set_lab_admin(&UserId::new(&la), &app.lab(), false, &[])
        .await
        .unwrap();
    assert_eq!(
        call(app, Some(&t), Method::GET, &members, None).await.0,
        403
    );
    app.state
        .store
        .set_user_disabled(&la, true, &[])
        .await
        .unwrap();
    assert_eq!(
        call(app, Some(&t), Method::GET, &members, None).await.0,
        401
    );
});

both!(
    grants_and_policy_set_through_the_api_reach_the_next_token,
    async |app: &TestApp| {
        let sys = client_token(app, &app.lab_id).await;
        let lab = &app.lab_id;
        let (s, role) = call(
            app,
            Some(&sys),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/roles/accountant"),
            Some(json!({"features": ["invoices:approve", "orders:read"]})),
        )
        .await;
        assert_eq!(s, 200, "{role}");
        let (s, _) = call(
            app,
            Some(&sys),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/members/{}/roles", app.user_id),
            Some(json!({"roles": ["accountant"]})),
        )
        .await;
        assert_eq!(s, 200);
        let (s, m) = call(
            app,
            Some(&sys),
            Method::PUT,
            &format!(
                "/api/v1/labs/{lab}/members/{}/features/orders:read",
                app.user_id
            ),
            Some(json!({"allow": false})),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(m["features"], json!(["invoices:approve"]), "deny wins");
        let c = app.client(|c| c.skip_consent = true).await;
        let t = user_tokens(
            app,
            &c.client_id,
            c.client_secret.as_deref().unwrap(),
            "openid",
        )
        .await;
        let claims = jwt_claims(t["access_token"].as_str().unwrap());
        assert_eq!(claims["roles"], json!(["accountant"]));
        assert_eq!(claims["features"], json!(["invoices:approve"]));

        // The policy and its adoption.
        let (s, p) = call(
            app,
            Some(&sys),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/policy"),
            Some(json!({"min_acr": "mfa", "grace_days": 7})),
        )
        .await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(p["min_acr"], "mfa");
        let (_, a) = call(
            app,
            Some(&sys),
            Method::GET,
            &format!("/api/v1/labs/{lab}/policy/adoption"),
            None,
        )
        .await;
        assert_eq!(a["members"], 1);
        assert_eq!(a["meeting"], 0);
        assert_eq!(a["pwd"], 1);

        // Every change is in the audit log with the state before and after.
        let (_, log) = call(
            app,
            Some(&sys),
            Method::GET,
            &format!("/api/v1/labs/{lab}/audit?action=member."),
            None,
        )
        .await;
        let feature = log
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "member.feature")
            .expect("member.feature audited");
        assert_eq!(feature["details"]["before"], Value::Null);
        assert_eq!(feature["details"]["after"], false);
        let (_, log) = call(
            app,
            Some(&sys),
            Method::GET,
            &format!("/api/v1/labs/{lab}/audit?action=policy."),
            None,
        )
        .await;
        assert_eq!(log[0]["details"]["before"]["min_acr"], Value::Null);
        assert_eq!(log[0]["details"]["after"]["min_acr"], "mfa");
    }
);

both!(
    invalid_input_names_the_field_and_changes_nothing,
    async |app: &TestApp| {
        let sys = client_token(app, "*").await;
        let lab = &app.lab_id;
        let before = app.state.store.lab_members(&app.lab()).await.unwrap();
        // Missing field, unknown field, wrong type: 422 naming it.
        for (body, field) in [
            (json!({}), "email"),
            (json!({"email": "x@lab.example", "colour": "red"}), "colour"),
            (json!({"email": 5}), "email"),
            (json!({"email": "not-an-address"}), "email"),
            (
                json!({"email": "new@lab.example", "roles": ["no-such-role"]}),
                "roles",
            ),
            (
                json!({"email": "new@lab.example", "password": "short"}),
                "password",
            ),
        ] {
            let (s, e) = call(
                app,
                Some(&sys),
                Method::POST,
                &format!("/api/v1/labs/{lab}/members"),
                Some(body.clone()),
            )
            .await;
            assert_eq!(s, 422, "{body}: {e}");
            assert_eq!(e["error"], "invalid");
            assert_eq!(e["field"], field, "{body}: {e}");
        }
        assert_eq!(
            app.state.store.lab_members(&app.lab()).await.unwrap(),
            before
        );
        assert!(
            app.state
                .store
                .find_user_by_email("new@lab.example")
                .await
                .unwrap()
                .is_none(),
            "a refused request writes nothing"
        );
        let (s, e) = call(
            app,
            Some(&sys),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/policy"),
            Some(json!({"min_acr": "strong"})),
        )
        .await;
        assert_eq!((s, e["field"].as_str()), (422, Some("min_acr")));
        let (s, e) = call(
            app,
            Some(&sys),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/roles/accountant"),
            Some(json!({"features": ["Not A Feature"]})),
        )
        .await;
        assert_eq!((s, e["field"].as_str()), (422, Some("features")));
        // Names read from the path are typed there: refused naming the field, nothing written.
        let user = &app.user_id;
        for (method, path, body, field) in [
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/roles/no%20spaces"),
                Some(json!({"features": []})),
                "name",
            ),
            (
                Method::DELETE,
                format!("/api/v1/labs/{lab}/roles/no%20spaces"),
                None,
                "name",
            ),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/members/{user}/features/Orders"),
                Some(json!({"allow": true})),
                "feature",
            ),
            (
                Method::DELETE,
                format!("/api/v1/labs/{lab}/members/{user}/features/Orders"),
                None,
                "feature",
            ),
        ] {
            let (s, e) = call(app, Some(&sys), method.clone(), &path, body).await;
            assert_eq!(
                (s, e["field"].as_str()),
                (422, Some(field)),
                "{method} {path}: {e}"
            );
        }
        assert_eq!(
            app.state.store.lab_members(&app.lab()).await.unwrap(),
            before
        );
        let (s, e) = call(
            app,
            Some(&sys),
            Method::GET,
            "/api/v1/labs/no-such-lab/members",
            None,
        )
        .await;
        assert_eq!((s, e["error"].as_str()), (404, Some("not_found")));
        let (s, e) = call(app, Some(&sys), Method::GET, "/api/v1/audit?limit=0", None).await;
        assert_eq!((s, e["field"].as_str()), (422, Some("limit")));
    }
);

both!(
    openapi_document_is_3_1_and_generated_from_the_handlers,
    async |app: &TestApp| {
        let doc: Value = reqwest::get(app.url("/api/v1/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            doc,
            serde_json::to_value(latchkey_server::http::api::document()).unwrap()
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(
            doc["paths"]["/api/v1/labs/{lab}/members/{user}/features/{feature}"]["put"].is_object()
        );
    }
);

both!(
    invitation_link_creates_the_account_once,
    async |app: &TestApp| {
        // Only system administrators receive an invitation's link.
        let sys = client_token(app, "*").await;
        let lab = &app.lab_id;
        call(
            app,
            Some(&sys),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/roles/viewer"),
            Some(json!({"features": ["orders:read"]})),
        )
        .await;
        let (s, inv) = call(
            app,
            Some(&sys),
            Method::POST,
            &format!("/api/v1/labs/{lab}/invitations"),
            Some(json!({"email": "Nia@Lab.example", "roles": ["viewer"]})),
        )
        .await;
        assert_eq!(s, 200, "{inv}");
        let link = inv["link"].as_str().unwrap().to_owned();
        let path = link.strip_prefix(&app.base).unwrap().to_owned();
        let b = Browser::new(app);
        let page = b.get(&path).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("nia@lab.example"));
        let csrf = html_input(&html, "csrf").unwrap();
        let weak = b
            .post_form(&path, &[("csrf", &csrf), ("password", "password")])
            .await;
        assert_eq!(weak.status(), 422, "a weak password is refused");
        let ok = b
            .post_form(&path, &[("csrf", &csrf), ("password", PASSWORD)])
            .await;
        assert_eq!(ok.status(), 200);
        let u = app
            .state
            .store
            .find_user_by_email("nia@lab.example")
            .await
            .unwrap()
            .unwrap();
        let g = app.state.store.member_grants(&u.id, lab).await.unwrap();
        assert_eq!(g.roles, vec!["viewer"]);
        let again = b
            .post_form(&path, &[("csrf", &csrf), ("password", PASSWORD)])
            .await;
        assert_eq!(again.status(), 404, "the link works once");
        let (_, open) = call(
            app,
            Some(&sys),
            Method::GET,
            &format!("/api/v1/labs/{lab}/invitations"),
            None,
        )
        .await;
        assert_eq!(open, json!([]));
    }
);

both!(export_and_erase_through_the_api, async |app: &TestApp| {
    let sys = client_token(app, &app.lab_id).await;
    let u = &app.user_id;
    let (s, v) = call(
        app,
        Some(&sys),
        Method::GET,
        &format!("/api/v1/users/{u}/export"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(v.to_string().contains(EMAIL));
    assert!(!v.to_string().contains("argon2"), "no password hash");
    let (s, _) = call(
        app,
        Some(&sys),
        Method::DELETE,
        &format!("/api/v1/users/{u}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, v) = call(
        app,
        Some(&sys),
        Method::GET,
        &format!("/api/v1/users/{u}"),
        None,
    )
    .await;
    assert_eq!(
        v["error"], "forbidden",
        "no lab left: only system administrators"
    );
    assert!(
        app.state
            .store
            .find_user_by_email(EMAIL)
            .await
            .unwrap()
            .is_none()
    );
    let (chain, unchained) = app.state.store.audit_chain().await.unwrap();
    assert_eq!(unchained, 0);
    assert!(latchkey_server::audit::chain::verify(&chain).is_none());
});

both!(
    console_destructive_actions_ask_for_confirmation_and_need_csrf,
    async |app: &TestApp| {
        let la = make_user(app, &app.lab_id, "boss-a@lab.example").await;
        app.state
            .store
            .set_lab_admin(&UserId::new(&la), &app.lab(), true, &[])
            .await
            .unwrap();
        let b = Browser::new(app);
        console_token(app, &b, "boss-a@lab.example").await;
        let r = b.get("/admin").await;
        assert_eq!(r.status(), 303, "one lab: straight to it");
        let lab_page = location(&r);
        let html = b.get(&lab_page).await.text().await.unwrap();
        assert!(html.contains(EMAIL));
        let csrf = html_input(&html, "csrf").unwrap();
        let remove = format!("{lab_page}/members/{}/remove", app.user_id);
        let r = b.post_form(&remove, &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 200);
        let confirm = r.text().await.unwrap();
        assert!(confirm.contains("Remove this member from the lab?"));
        assert_eq!(html_input(&confirm, "confirm").as_deref(), Some("yes"));
        assert_eq!(
            app.state.store.user_labs(&app.user_id).await.unwrap().len(),
            1,
            "nothing removed before confirming"
        );
        let r = b
            .post_form(&remove, &[("csrf", "forged"), ("confirm", "yes")])
            .await;
        assert_eq!(r.status(), 422, "a forged CSRF token is refused");
        assert_eq!(
            app.state.store.user_labs(&app.user_id).await.unwrap().len(),
            1
        );
        let r = b
            .post_form(&remove, &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(r.status(), 303);
        assert!(
            app.state
                .store
                .user_labs(&app.user_id)
                .await
                .unwrap()
                .is_empty()
        );
        // Another lab's page is refused to this lab's administrator.
        let other = app
            .state
            .store
            .create_lab("Lab B", |_| Vec::new())
            .await
            .unwrap()
            .id;
        let r = b.get(&format!("/admin/labs/{other}")).await;
        assert_eq!(r.status(), 403);
    }
);

both!(
    console_without_a_session_goes_to_sign_in,
    async |app: &TestApp| {
        let b = Browser::new(app);
        let r = b.get("/admin/labs/whatever").await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/admin/login?back="));
        let r = b
            .post_form(
                &format!("/admin/labs/{}/policy", app.lab_id),
                &[("min_acr", "none")],
            )
            .await;
        assert_eq!(r.status(), 303, "no change without signing in");
        // A forged callback (no login state) is refused.
        let r = b.get("/admin/callback?code=x&state=y").await;
        assert_eq!(r.status(), 400);
    }
);

both!(
    lab_admin_cannot_act_on_a_system_administrator,
    async |app: &TestApp| {
        let la = make_user(app, &app.lab_id, "boss-a@lab.example").await;
        app.state
            .store
            .set_lab_admin(&UserId::new(&la), &app.lab(), true, &[])
            .await
            .unwrap();
        let root = make_user(app, &app.lab_id, "root@lab.example").await;
        app.state
            .store
            .set_system_admin(&UserId::new(&root), true, &[])
            .await
            .unwrap();
        let t = console_token(app, &Browser::new(app), "boss-a@lab.example").await;
        for (m, p) in [
            (Method::GET, format!("/api/v1/users/{root}")),
            (Method::POST, format!("/api/v1/users/{root}/disable")),
            (Method::POST, format!("/api/v1/users/{root}/reset-factors")),
            (Method::POST, format!("/api/v1/users/{root}/end-sessions")),
            (Method::GET, format!("/api/v1/users/{root}/export")),
            (Method::DELETE, format!("/api/v1/users/{root}")),
        ] {
            let (s, _) = call(app, Some(&t), m.clone(), &p, None).await;
            assert_eq!(s, 403, "{m} {p}");
        }
        let u = app
            .state
            .store
            .user_info(&UserId::new(&root))
            .await
            .unwrap()
            .unwrap();
        assert!(!u.disabled && u.system_admin);
    }
);

both!(
    lab_admin_cannot_pull_in_existing_accounts_or_choose_passwords,
    async |app: &TestApp| {
        let la = make_user(app, &app.lab_id, "boss-a@lab.example").await;
        app.state
            .store
            .set_lab_admin(&UserId::new(&la), &app.lab(), true, &[])
            .await
            .unwrap();
        let other = app
            .state
            .store
            .create_lab("Lab B", |_| Vec::new())
            .await
            .unwrap()
            .id;
        let bob = make_user(app, &other, "bob@lab.example").await;
        let t = console_token(app, &Browser::new(app), "boss-a@lab.example").await;
        let members = format!("/api/v1/labs/{}/members", app.lab_id);
        let (s, e) = call(
            app,
            Some(&t),
            Method::POST,
            &members,
            Some(json!({"email": "bob@lab.example"})),
        )
        .await;
        // The same answer as for an address without an account (lab_admin_rules.rs).
        assert_eq!((s, e["field"].as_str()), (422, Some("email")), "{e}");
        assert_eq!(app.state.store.user_labs(&bob).await.unwrap(), vec![other]);
        let (s, e) = call(
            app,
            Some(&t),
            Method::POST,
            &members,
            Some(json!({"email": "carol@partner.example", "password": PASSWORD})),
        )
        .await;
        assert_eq!((s, e["field"].as_str()), (422, Some("email")), "{e}");
        assert!(
            app.state
                .store
                .find_user_by_email("carol@partner.example")
                .await
                .unwrap()
                .is_none(),
            "no account with a password the lab administrator knows"
        );
    }
);

both!(
    lab_audit_log_shows_nothing_a_member_did_in_another_lab,
    async |app: &TestApp| {
        let other = app
            .state
            .store
            .create_lab("Lab B", |_| Vec::new())
            .await
            .unwrap()
            .id;
        // A member of both labs administers lab B.
        let both_id = make_user(app, &app.lab_id, "dual@lab.example").await;
        app.state
            .store
            .add_membership(&both_id, &other, &[])
            .await
            .unwrap();
        app.state
            .store
            .set_lab_admin(&UserId::new(&both_id), &LabId::new(&other), true, &[])
            .await
            .unwrap();
        let dual = console_token(app, &Browser::new(app), "dual@lab.example").await;
        let (s, _) = call(
            app,
            Some(&dual),
            Method::PUT,
            &format!("/api/v1/labs/{other}/roles/secret-project"),
            Some(json!({"features": ["vault:read"]})),
        )
        .await;
        assert_eq!(s, 200);
        let sys = client_token(app, &app.lab_id).await;
        let (_, log) = call(
            app,
            Some(&sys),
            Method::GET,
            &format!("/api/v1/labs/{}/audit", app.lab_id),
            None,
        )
        .await;
        assert!(!log.to_string().contains("secret-project"), "{log}");
        assert!(
            log.to_string().contains("login."),
            "members' sign-ins are shown"
        );
    }
);

both!(
    invitation_survives_the_deletion_of_one_of_its_roles,
    async |app: &TestApp| {
        let sys = client_token(app, "*").await;
        let lab = &app.lab_id;
        for r in ["viewer", "temp"] {
            call(
                app,
                Some(&sys),
                Method::PUT,
                &format!("/api/v1/labs/{lab}/roles/{r}"),
                Some(json!({"features": []})),
            )
            .await;
        }
        let (_, inv) = call(
            app,
            Some(&sys),
            Method::POST,
            &format!("/api/v1/labs/{lab}/invitations"),
            Some(json!({"email": "nia@lab.example", "roles": ["viewer", "temp"]})),
        )
        .await;
        call(
            app,
            Some(&sys),
            Method::DELETE,
            &format!("/api/v1/labs/{lab}/roles/temp"),
            None,
        )
        .await;
        let path = inv["link"]
            .as_str()
            .unwrap()
            .strip_prefix(&app.base)
            .unwrap()
            .to_owned();
        let b = Browser::new(app);
        let html = b.get(&path).await.text().await.unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let r = b
            .post_form(&path, &[("csrf", &csrf), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status(), 200);
        let u = app
            .state
            .store
            .find_user_by_email("nia@lab.example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            app.state
                .store
                .member_grants(&u.id, lab)
                .await
                .unwrap()
                .roles,
            vec!["viewer"]
        );
    }
);

both!(
    console_sign_in_returns_only_to_console_pages,
    async |app: &TestApp| {
        let b = Browser::new(app);
        for back in [
            "/admin/../authorize?client_id=x",
            "/admin%0d%0aX: 1",
            "https://evil.example/admin",
            "//evil.example",
        ] {
            let r = b
                .get(&format!(
                    "/admin/login?back={}",
                    url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
                ))
                .await;
            assert_eq!(r.status(), 303);
            let cookie = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|c| c.starts_with("latchkey_admin_login="))
                .unwrap()
                .to_owned();
            // `{mac}.{the state as url-encoded JSON}`: sealed, readable.
            let sealed = cookie
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("latchkey_admin_login=");
            let decoded: String = url::form_urlencoded::parse(
                format!("v={}", sealed.split_once('.').unwrap().1).as_bytes(),
            )
            .next()
            .unwrap()
            .1
            .into_owned();
            let state: Value = serde_json::from_str(&decoded).unwrap();
            assert_eq!(state["back"], "/admin", "{back}");
        }
    }
);

// Validation errors name the field of the request body (or its JSON path), in the API's own
// words: never a word cut from command-line prose, never a `--flag`.
both!(
    api_validation_errors_name_the_request_body_field,
    async |app: &TestApp| {
        let sys = client_token(app, "*").await;
        for (body, field) in [
            // The authorization_code grant (the default) without a redirect URI.
            (json!({"name": "web"}), "redirect_uris"),
            (
                json!({"name": "web", "redirect_uris": ["ftp://x.example/cb"]}),
                "redirect_uris",
            ),
            (
                json!({"name": "web", "redirect_uris": ["https://x.example/cb"],
                       "post_logout_redirect_uris": ["not a uri"]}),
                "post_logout_redirect_uris",
            ),
            (
                json!({"name": "bot", "grant_types": ["client_credentials"], "public": true}),
                "public",
            ),
            (
                json!({"name": "bot", "grant_types": ["password"]}),
                "grant_types",
            ),
            (
                json!({"name": "bot", "grant_types": ["refresh_token"]}),
                "grant_types",
            ),
            (
                json!({"name": "web", "redirect_uris": ["https://x.example/cb"], "admin_of": "*"}),
                "admin_of",
            ),
            // A client that signs people in names its labs.
            (
                json!({"name": "web", "redirect_uris": ["https://x.example/cb"]}),
                "labs",
            ),
            (
                json!({"name": "web", "redirect_uris": ["https://x.example/cb"], "labs": ["*"],
                       "features": ["Not A Feature"]}),
                "features",
            ),
            (
                json!({"name": "", "grant_types": ["client_credentials"]}),
                "name",
            ),
        ] {
            let (s, e) = call(
                app,
                Some(&sys),
                Method::POST,
                "/api/v1/clients",
                Some(body.clone()),
            )
            .await;
            assert_eq!(s, 422, "{body}: {e}");
            assert_eq!(e["field"], field, "{body}: {e}");
            let text = e.to_string();
            assert!(
                !text.contains("--"),
                "no command-line flags in the API: {e}"
            );
        }
    }
);
