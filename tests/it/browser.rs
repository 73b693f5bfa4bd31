//! End to end in a real browser: headless Chromium (Debian's) driven by playwright-core signs
//! in on the hosted login page; the `openidconnect` crate is the relying party that exchanges
//! the code and verifies the ID token. A screenshot of the login page is saved under
//! `target/browser-output/`.

use crate::common::*;
use crate::oidc_flow::{rp_client, rp_http};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, Scope, TokenResponse};

/// Where the browser tests' screenshots go (`target/browser-output/`), with `stale` removed
/// so that only this run's can be found there.
pub(crate) fn browser_output(stale: &[&str]) -> std::path::PathBuf {
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    for shot in stale {
        let _ = std::fs::remove_file(out_dir.join(shot));
    }
    out_dir
}

/// Runs `tests/browser/<script>` with node and `vars` in its environment; returns the JSON of
/// its last line of output (the script fails the test if it fails or takes 5 minutes).
pub(crate) async fn run_browser_script(script: &str, vars: &[(&str, &str)]) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let output = tokio::process::Command::new("node")
        .arg(path)
        .envs(vars.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), output)
        .await
        .expect("the browser script finishes within 5 minutes")
        .expect("node runs (scripts/test installs playwright-core and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_the_hosted_login() {
    let app = TestApp::new(Backend::Sqlite).await;
    let created = app.client(|_| {}).await;
    let (client, _) = rp_client(&app, &created.client_id, created.client_secret.as_deref()).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/login.mjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env("AUTHORIZE_URL", auth_url.as_str())
        .env("CALLBACK_PREFIX", CALLBACK)
        .env("LOGIN_EMAIL", EMAIL)
        .env("LOGIN_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &out_dir)
        .output()
        .await
        .expect("node runs (scripts/test installs playwright-core and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert!(out_dir.join("login-page.png").exists(), "screenshot saved");
    assert_eq!(
        result["wrongPasswordMessage"],
        "The email or password is not correct."
    );
    let back = url::Url::parse(result["callback"].as_str().unwrap()).unwrap();
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(&back, "code").unwrap();
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http())
        .await
        .unwrap();
    let claims = token
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.subject().as_str(), app.user_id);
    app.stop().await;
}

/// Passkeys and an authenticator app, enrolled and used in Chromium (`tests/browser/mfa.mjs`):
/// the account page enrols TOTP (the script computes the code from the key shown) and a passkey
/// held by a DevTools virtual authenticator; then, each time after signing out, the passkey
/// alone signs in at `phr` (with the button, then from the email field's autofill), a password
/// sign-in asked for `phr` steps up with the passkey, and one asked for `mfa` steps up with a
/// TOTP code. The codes are exchanged here. Screenshots go to `target/browser-output/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_passkey_and_totp_enrolment_and_step_up() {
    // WebAuthn RP ids cannot be IP addresses: the browser uses `localhost`.
    let app = TestApp::with_config(Backend::Sqlite, on_localhost).await;
    let base = app.base.replace("127.0.0.1", "localhost");
    let created = app.client(|c| c.skip_consent = true).await;
    let client = (created.client_id.clone(), created.client_secret.unwrap());
    let authorize = |extra: &[(&str, &str)]| {
        authorize_url(&app, &client.0, extra).replacen(&app.base, &base, 1)
    };
    let shots = [
        "account-page.png",
        "totp-setup.png",
        "account-with-passkey.png",
        "step-up.png",
        "step-up-totp.png",
        "enrol.png",
    ];
    // The script saves `mfa-failure.png` where it stops if it fails.
    let out_dir = browser_output(&[&shots[..], &["mfa-failure.png"]].concat());
    // A member of another lab that requires mfa with a grace period, without any factor.
    let strict = latchkey_server::provision::create_lab(&app.state.store, "Strict lab")
        .await
        .unwrap();
    latchkey_server::provision::create_user(
        &app.state.store,
        &app.state.config,
        &app.state.hasher,
        &strict.id,
        "bob@lab.example",
        None,
        PASSWORD,
    )
    .await
    .unwrap();
    app.state
        .store
        .set_lab_policy(
            &latchkey_core::names::LabId::new(&strict.id),
            Some(latchkey_core::Acr::Mfa),
            Some(14),
            None,
            &[],
        )
        .await
        .unwrap();
    let result = run_browser_script(
        "mfa.mjs",
        &[
            ("BASE_URL", &base),
            ("AUTHORIZE_URL_PLAIN", &authorize(&[])),
            ("AUTHORIZE_URL_PHR", &authorize(&[("acr_values", "phr")])),
            ("AUTHORIZE_URL_MFA", &authorize(&[("acr_values", "mfa")])),
            ("AUTHORIZE_URL_ENROL", &authorize(&[])),
            ("ENROL_EMAIL", "bob@lab.example"),
            ("CALLBACK_PREFIX", CALLBACK),
            ("LOGIN_EMAIL", EMAIL),
            ("LOGIN_PASSWORD", PASSWORD),
            ("SCREENSHOT_DIR", &out_dir.to_string_lossy()),
        ],
    )
    .await;
    for shot in shots {
        assert!(out_dir.join(shot).exists(), "screenshot {shot} saved");
    }
    assert_eq!(result["pageErrors"], serde_json::json!([]), "{result}");
    assert_eq!(result["cspViolations"], serde_json::json!([]), "{result}");
    // The account page: a password session, then mfa once the app (the first factor) is
    // proven; registering a passkey later does not raise the session: it counts once used.
    assert_eq!(result["accountAcr"], "pwd");
    assert_eq!(result["qrShown"], true);
    assert_eq!(result["totpOn"], true);
    assert_eq!(result["acrAfterTotp"], "mfa");
    assert_eq!(result["passkeyNames"], serde_json::json!(["Laptop"]));
    assert_eq!(
        result["residentCredentials"], 1,
        "a discoverable credential"
    );
    assert_eq!(result["acrAfterPasskey"], "mfa");
    let webauthn = app.state.store.list_webauthn(&app.user_id).await.unwrap();
    assert_eq!(webauthn.len(), 1);
    assert_eq!(webauthn[0].name, "Laptop");
    assert_eq!(webauthn[0].kind, "passkey");

    let claims = async |key: &str| {
        let back = url::Url::parse(result[key].as_str().unwrap()).unwrap();
        assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
        assert_eq!(query_param(&back, "iss").as_deref(), Some(base.as_str()));
        let t = tokens(&app, &client, &back).await;
        let id = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(id["nonce"], "n0nce");
        id
    };
    // The passkey alone: phishing resistant, user verified.
    let id = claims("passkeyCallback").await;
    assert_eq!(id["sub"], app.user_id.as_str());
    assert_eq!(id["acr"], "phr");
    assert_eq!(id["amr"], serde_json::json!(["swk", "user", "mfa"]));
    // The passkey picked from the email field's autofill.
    assert_eq!(result["autofillAvailable"], true);
    let id = claims("autofillCallback").await;
    assert_eq!(id["acr"], "phr");
    assert_eq!(id["amr"], serde_json::json!(["swk", "user", "mfa"]));
    // Password, then the passkey on the step-up page (which offers no TOTP for phr).
    assert_eq!(result["phrTotpOffered"], 0, "TOTP cannot reach phr");
    let id = claims("phrCallback").await;
    assert_eq!(id["acr"], "phr");
    let amr = id["amr"].as_array().unwrap();
    assert!(amr.contains(&"user".into()), "{amr:?}");
    assert!(amr.contains(&"swk".into()), "{amr:?}");
    assert!(
        !amr.contains(&"hwk".into()),
        "Chromium's virtual authenticator attests under a root nobody trusts: {amr:?}"
    );
    // Password, then a TOTP code.
    let id = claims("mfaCallback").await;
    assert_eq!(id["acr"], "mfa");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    // The member without a factor deferred enrolment during the grace: a password token.
    let id = claims("enrolCallback").await;
    assert_ne!(id["sub"], app.user_id.as_str());
    assert_eq!(id["acr"], "pwd");
    app.stop().await;
}

/// A security key in Chromium (`tests/browser/securitykey.mjs`): a virtual USB authenticator
/// without user verification is registered from the account page ("Add a security key"),
/// then steps a password sign-in up to `mfa`. Chromium refuses registration options that ask
/// for credProtect `userVerificationRequired` with userVerification `preferred` before any
/// authenticator sees them; the SoftPasskey tests cannot see that, only a browser does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_registers_a_security_key_and_steps_up_with_it() {
    let app = TestApp::with_config(Backend::Sqlite, on_localhost).await;
    let base = app.base.replace("127.0.0.1", "localhost");
    let created = app.client(|c| c.skip_consent = true).await;
    let client = (created.client_id.clone(), created.client_secret.unwrap());
    let mfa =
        authorize_url(&app, &client.0, &[("acr_values", "mfa")]).replacen(&app.base, &base, 1);
    let shots = ["account-with-security-key.png", "step-up-security-key.png"];
    let out_dir = browser_output(&[&shots[..], &["securitykey-failure.png"]].concat());
    let result = run_browser_script(
        "securitykey.mjs",
        &[
            ("BASE_URL", &base),
            ("AUTHORIZE_URL_MFA", &mfa),
            ("CALLBACK_PREFIX", CALLBACK),
            ("LOGIN_EMAIL", EMAIL),
            ("LOGIN_PASSWORD", PASSWORD),
            ("SCREENSHOT_DIR", &out_dir.to_string_lossy()),
        ],
    )
    .await;
    for shot in shots {
        assert!(out_dir.join(shot).exists(), "screenshot {shot} saved");
    }
    assert_eq!(result["pageErrors"], serde_json::json!([]), "{result}");
    assert_eq!(result["cspViolations"], serde_json::json!([]), "{result}");
    assert_eq!(
        result["credentialNames"],
        serde_json::json!(["Security key"])
    );
    assert_eq!(result["residentCredentials"], 0, "{result}");
    let webauthn = app.state.store.list_webauthn(&app.user_id).await.unwrap();
    assert_eq!(webauthn.len(), 1);
    assert_eq!(webauthn[0].kind, "security_key");
    // Registration asked for attestation and Chromium's virtual authenticator gave one (its
    // statement verified), chained to a root Latchkey does not trust: a software key (`swk`).
    let cred: serde_json::Value = serde_json::from_str(&webauthn[0].credential).unwrap();
    assert_ne!(cred["attestation_format"], "none", "{cred}");
    assert_eq!(webauthn[0].attestation_root, None);
    let back = url::Url::parse(result["mfaCallback"].as_str().unwrap()).unwrap();
    assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
    let t = tokens(&app, &client, &back).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], app.user_id.as_str());
    assert_eq!(id["acr"], "mfa");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "swk", "mfa"]));
    app.stop().await;
}

/// The admin console in Chromium (`tests/browser/admin.mjs`), as the issue asks: a lab
/// administrator signs in to `/admin` through the hosted login (their password alone is
/// refused: the console's enrolment page leads them to set up an authenticator app first),
/// creates a role carrying
/// `invoices:approve` and gives it to a member, grants them `reports:export` directly, opens
/// a destructive action's confirmation page and cancels it, requires `mfa` with a 7-day grace
/// (the adoption chart drops to 0 of 2), and filters the lab's audit log. After signing out,
/// the member's next sign-in at a relying party asks them to enrol; "Not now" returns a code
/// whose tokens carry the new features. Every console page's controls have accessible names
/// and Tab reaches their buttons; no page error, no CSP violation. Screenshots go to
/// `target/browser-output/` (the ones in `docs/img/` come from here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_lab_admin_grants_a_feature_and_requires_mfa() {
    // The enrolment page offers passkeys, and WebAuthn wants a host name.
    let app = TestApp::with_config(Backend::Sqlite, on_localhost).await;
    let base = app.base.replace("127.0.0.1", "localhost");
    let admin_email = "lena@lab.example";
    let admin = latchkey_server::provision::create_user(
        &app.state.store,
        &app.state.config,
        &app.state.hasher,
        &app.lab_id,
        admin_email,
        Some("Lena Admin"),
        PASSWORD,
    )
    .await
    .unwrap();
    app.state
        .store
        .set_lab_admin(
            &latchkey_core::names::UserId::new(&admin.id),
            &app.lab(),
            true,
            &[],
        )
        .await
        .unwrap();
    let created = app.client(|c| c.skip_consent = true).await;
    let client = (created.client_id.clone(), created.client_secret.unwrap());
    let authorize = authorize_url(&app, &client.0, &[]).replacen(&app.base, &base, 1);
    let shots = [
        "admin-enrol.png",
        "admin-lab.png",
        "admin-member.png",
        "admin-confirm.png",
        "admin-policy-adoption.png",
        "admin-audit.png",
        "member-enrol.png",
        "admin-invitation.png",
        "invite-page.png",
    ];
    let out_dir = browser_output(&[&shots[..], &["admin-failure.png"]].concat());
    let (role, feature, direct) = ("approver", "invoices:approve", "reports:export");
    // An invitation a system administrator made: its link is what the invited person opens.
    let invite_link = latchkey_server::admin::ops::create_invitation(
        &app.state,
        &latchkey_server::admin::Admin::cli(),
        &app.lab(),
        latchkey_server::admin::ops::NewInvitation {
            email: "hal@lab.example".into(),
            roles: vec![],
            valid_days: None,
        },
    )
    .await
    .unwrap()
    .link
    .unwrap();
    let invite = invite_link.replace("127.0.0.1", "localhost");
    let r = run_browser_script(
        "admin.mjs",
        &[
            ("BASE_URL", &base),
            ("LAB_ID", &app.lab_id),
            ("MEMBER_ID", &app.user_id),
            ("ADMIN_EMAIL", admin_email),
            ("MEMBER_EMAIL", EMAIL),
            ("INVITE_EMAIL", "grace@lab.example"),
            ("INVITE_LINK", &invite),
            ("LOGIN_PASSWORD", PASSWORD),
            ("AUTHORIZE_URL", &authorize),
            ("CALLBACK_PREFIX", CALLBACK),
            ("ROLE", role),
            ("FEATURE", feature),
            ("DIRECT_FEATURE", direct),
            ("SCREENSHOT_DIR", &out_dir.to_string_lossy()),
        ],
    )
    .await;
    for shot in shots {
        assert!(out_dir.join(shot).exists(), "screenshot {shot} saved");
    }
    let empty = serde_json::json!([]);
    assert_eq!(r["pageErrors"], empty, "{r}");
    assert_eq!(r["cspViolations"], empty, "{r}");
    assert_eq!(
        r["unnamed"], empty,
        "controls without an accessible name: {r}"
    );
    assert_eq!(r["unreached"], empty, "buttons Tab does not reach: {r}");
    assert!(r["controlsChecked"].as_u64().unwrap() > 40, "{r}");
    assert!(r["tabStops"].as_u64().unwrap() > 40, "{r}");

    // Signed in through Latchkey after setting up a second factor, straight to the one lab
    // administered; the header says how.
    assert_eq!(
        r["adminEnrolHeading"],
        "Set up a second factor to administer"
    );
    assert_eq!(r["adminLevel"], "with a password and a second factor (mfa)");
    assert_eq!(r["labHeading"], "Lab 42");
    assert_eq!(r["signedInAs"], admin_email);
    assert_eq!(
        r["adoptionBefore"],
        "2 of 2 members (100%) already meet the policy."
    );
    // The invitation: recorded without a link for the lab administrator, who is told who
    // sends it; the link a system administrator issued opens the page to join the lab.
    assert_eq!(r["inviteLinksShown"], 0, "{r}");
    assert!(
        r["inviteNote"]
            .as_str()
            .unwrap()
            .contains("latchkey invitation link"),
        "{r}"
    );
    assert_eq!(r["invitePageHeading"], "Join Lab 42");
    let open = r["openInvitations"].as_array().unwrap();
    assert_eq!(open.len(), 2, "{r}");
    assert_eq!(
        open[0],
        "grace@lab.example as approver Withdraw the invitation for grace@lab.example"
    );
    // The role, given to the member, and the direct grant.
    assert_eq!(r["roleNotice"], "Role approver saved.");
    assert!(
        r["roleRow"].as_str().unwrap().contains(feature),
        "{}",
        r["roleRow"]
    );
    assert_eq!(
        r["rolesNotice"],
        "Roles saved. They apply to the next token."
    );
    assert_eq!(
        r["grantNotice"],
        "Feature reports:export saved. It applies to the next token."
    );
    assert_eq!(r["memberFeatures"], serde_json::json!([feature, direct]));
    assert_eq!(
        r["overrides"],
        serde_json::json!(["reports:export: allowed"])
    );
    // The confirmation page, cancelled: nothing happened.
    assert_eq!(
        r["confirmPath"],
        format!(
            "/admin/labs/{}/members/{}/reset-factors",
            app.lab_id, app.user_id
        )
    );
    assert_eq!(r["confirmQuestion"], "Reset this person's second factors?");
    assert_eq!(r["confirmButton"], "Reset factors");
    assert_eq!(r["noticeAfterCancel"], 0);
    assert_eq!(
        r["attemptsNotice"],
        "Sign-in attempts reset: they can try their password and codes again at once."
    );
    // The policy and the adoption chart.
    assert_eq!(
        r["policyNotice"],
        "MFA policy saved. It applies at members' next sign-in."
    );
    assert_eq!(
        r["policyText"],
        "Members must sign in with at least mfa, with 7 days to enrol."
    );
    // The administrator's authenticator app meets it; the member has none yet.
    assert_eq!(
        r["adoptionAfter"],
        "1 of 2 members (50%) already meet the policy."
    );
    assert_eq!(r["adoptionRows"]["Meet the policy"], 1);
    assert_eq!(r["adoptionRows"]["Do not meet it yet"], 1);
    assert_eq!(r["adoptionRows"]["Password only"], 1);
    assert_eq!(r["adoptionRows"]["Second factor (mfa)"], 1);
    assert_eq!(r["chartBars"], 5);
    let policy = app.state.store.lab_policy(&app.lab()).await.unwrap();
    assert!(policy.is_some(), "the policy is stored");
    // The audit log: everything done above, filtered by action.
    assert!(r["auditAll"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(r["auditRole"], serde_json::json!(["role.put"]));
    assert_eq!(
        r["auditMember"],
        serde_json::json!(["member.feature", "member.roles"])
    );
    assert_eq!(r["badDate"], "Please check the form");
    // Signed out of the console and of Latchkey.
    assert_eq!(r["consoleAfterSignOut"], "/login");

    // The member's next sign-in: enrolment, put off during the grace.
    assert_eq!(r["enrolHeading"], "Set up two-step verification");
    let enrol = r["enrolText"].as_str().unwrap();
    assert!(
        enrol.contains("You can do this later: 7 days left."),
        "{enrol}"
    );
    let back = url::Url::parse(r["callback"].as_str().unwrap()).unwrap();
    assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
    let t = tokens(&app, &client, &back).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], app.user_id.as_str());
    assert_eq!(id["acr"], "pwd", "enrolment put off");
    assert_eq!(id["features"], serde_json::json!([feature, direct]));
    let access = jwt_claims(t["access_token"].as_str().unwrap());
    assert_eq!(access["features"], serde_json::json!([feature, direct]));
    assert_eq!(access["roles"], serde_json::json!([role]));
    app.stop().await;
}

/// A member of another lab signs in at a client registered for the test lab only
/// (`tests/browser/refused.mjs`): Chromium lands on Latchkey's "Not available for your labs"
/// page (403), and the relying party's callback is never requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_a_non_member_the_lab_refusal() {
    let app = TestApp::new(Backend::Sqlite).await;
    let other = latchkey_server::provision::create_lab(&app.state.store, "Lab 7")
        .await
        .unwrap();
    latchkey_server::provision::create_user(
        &app.state.store,
        &app.state.config,
        &app.state.hasher,
        &other.id,
        "bea@lab.example",
        None,
        PASSWORD,
    )
    .await
    .unwrap();
    let lab = app.lab_id.clone();
    let created = app
        .client(move |c| {
            c.labs = vec![lab];
            c.skip_consent = true;
        })
        .await;
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/refused.mjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env(
            "AUTHORIZE_URL",
            authorize_url(&app, &created.client_id, &[]),
        )
        .env("CALLBACK_PREFIX", CALLBACK)
        .env("LOGIN_EMAIL", "bea@lab.example")
        .env("LOGIN_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &out_dir)
        .output()
        .await
        .expect("node runs (scripts/test installs playwright-core and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(result["heading"], "Not available for your labs", "{result}");
    assert_eq!(result["status"], 403, "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("Invoice app is only for members of the labs it serves"),
        "{result}"
    );
    assert!(
        result["callback"].is_null(),
        "the relying party was reached: {result}"
    );
    assert!(
        out_dir.join("not-a-member.png").exists(),
        "screenshot saved"
    );
    app.stop().await;
}

/// Withdrawing an application on the account page in Chromium (`tests/browser/account.mjs`):
/// after a sign-in where the user allowed the client, /account lists it and this browser's
/// session; cancelling the confirmation keeps it, confirming removes it. Then the consent is
/// gone, the code the relying party was sent but had not exchanged no longer works, and the
/// withdrawal is audited with the browser's user agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_withdraws_an_application_on_the_account_page() {
    let app = TestApp::with_config(Backend::Sqlite, on_localhost).await;
    let base = app.base.replace("127.0.0.1", "localhost");
    let created = app.client(|_| {}).await;
    let client = (created.client_id.clone(), created.client_secret.unwrap());
    let authorize = authorize_url(&app, &client.0, &[]).replacen(&app.base, &base, 1);
    let out_dir = browser_output(&["account-applications.png", "account-failure.png"]);
    let result = run_browser_script(
        "account.mjs",
        &[
            ("BASE_URL", &base),
            ("AUTHORIZE_URL", &authorize),
            ("CALLBACK_PREFIX", CALLBACK),
            ("CLIENT_ID", &client.0),
            ("LOGIN_EMAIL", EMAIL),
            ("LOGIN_PASSWORD", PASSWORD),
            ("SCREENSHOT_DIR", &out_dir.to_string_lossy()),
        ],
    )
    .await;
    assert!(out_dir.join("account-applications.png").exists());
    assert_eq!(result["pageErrors"], serde_json::json!([]), "{result}");
    assert_eq!(result["cspViolations"], serde_json::json!([]), "{result}");
    assert_eq!(result["listed"], 1, "{result}");
    assert_eq!(result["thisBrowser"], 1, "{result}");
    assert_eq!(result["listedAfterDismiss"], 1, "cancelled: {result}");
    assert_eq!(result["listedAfterWithdraw"], 0, "{result}");
    assert_eq!(result["noneYet"], 1, "{result}");
    assert_eq!(result["dialogs"].as_array().unwrap().len(), 2, "{result}");
    assert!(
        result["dialogs"][0]
            .as_str()
            .unwrap()
            .contains("Invoice app"),
        "{result}"
    );
    assert!(
        app.state
            .store
            .consents_of(&app.user_id)
            .await
            .unwrap()
            .is_empty()
    );
    let back = url::Url::parse(result["callback"].as_str().unwrap()).unwrap();
    let code = query_param(&back, "code").unwrap();
    let r = exchange_code(&app.url("/token"), (&client.0, &client.1), &code).await;
    assert_eq!(r.status(), 400, "the withdrawn application's code is void");
    let entries = app.state.store.audit_for(&app.user_id).await.unwrap();
    let withdrawn = entries
        .iter()
        .find(|e| e.action == "consent.withdrawn")
        .expect("audited");
    let d: serde_json::Value = serde_json::from_str(&withdrawn.details).unwrap();
    assert!(
        d["user_agent"].as_str().unwrap_or("").contains("Chrome"),
        "{d}"
    );
    app.stop().await;
}

/// RFC 9126 with a real relying-party library (`tests/browser/par.mjs`): panva's
/// openid-client discovers Latchkey, pushes its authorization request to `/par` with its
/// secret, sends Chromium to `/authorize` with only the `request_uri`, and redeems the code
/// (PKCE, state, nonce checked by the library). The client is one that must push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_relying_party_pushes_its_request_with_openid_client() {
    let app = TestApp::new(Backend::Sqlite).await;
    let created = app
        .client(|c| {
            c.skip_consent = true;
            c.require_par = true;
        })
        .await;
    let result = run_browser_script(
        "par.mjs",
        &[
            ("ISSUER", &app.base),
            ("CLIENT_ID", &created.client_id),
            ("CLIENT_SECRET", created.client_secret.as_deref().unwrap()),
            ("REDIRECT_URI", CALLBACK),
            ("LOGIN_EMAIL", EMAIL),
            ("LOGIN_PASSWORD", PASSWORD),
        ],
    )
    .await;
    assert_eq!(result["parEndpoint"], app.url("/par"));
    assert_eq!(result["requirePar"], false);
    let uri = result["requestUri"].as_str().unwrap();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{result}"
    );
    let authorize = url::Url::parse(result["authorizationUrl"].as_str().unwrap()).unwrap();
    let mut names: Vec<String> = authorize
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["client_id", "request_uri"],
        "nothing else in the browser"
    );
    assert_eq!(result["claims"]["sub"], app.user_id.as_str());
    assert_eq!(result["claims"]["iss"], app.base.as_str());
    app.stop().await;
}

/// `private_key_jwt` (RFC 7523) with a real relying-party library: openid-client signs an
/// assertion with the client's ES256 key (imported from PKCS#8 through WebCrypto) for `/par`
/// and again for `/token`; Latchkey verifies both against the registered JWK Set, and the
/// sign-in in Chromium completes. The client has no secret at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_relying_party_signs_in_with_private_key_jwt_with_openid_client() {
    use base64::Engine;
    let app = TestApp::new(Backend::Sqlite).await;
    let (key, pkcs8) =
        latchkey_server::crypto::SigningKey::generate(latchkey_core::SigningAlg::ES256).unwrap();
    let set = serde_json::json!({"keys": [key.jwk]}).to_string();
    let created = app
        .client(move |c| {
            c.skip_consent = true;
            c.jwks = Some(set);
        })
        .await;
    assert!(created.client_secret.is_none());
    let pkcs8 = base64::engine::general_purpose::STANDARD.encode(pkcs8);
    let result = run_browser_script(
        "par.mjs",
        &[
            ("ISSUER", &app.base),
            ("CLIENT_ID", &created.client_id),
            ("PRIVATE_KEY", &pkcs8),
            ("KEY_ID", key.kid()),
            ("REDIRECT_URI", CALLBACK),
            ("LOGIN_EMAIL", EMAIL),
            ("LOGIN_PASSWORD", PASSWORD),
        ],
    )
    .await;
    assert!(
        result["authMethods"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("private_key_jwt")),
        "{result}"
    );
    assert_eq!(result["claims"]["sub"], app.user_id.as_str());
    assert_eq!(result["claims"]["aud"], created.client_id.as_str());
    app.stop().await;
}

/// The device authorization grant (RFC 8628) with a real OAuth library on the device's side:
/// openid-client asks for a user code and polls the token endpoint while the user types the
/// code at `/device` in Chromium, signs in and confirms the device (the confirmation page shows
/// the code even though the client skips consent); the device then gets the user's tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_user_approves_a_device_polling_with_openid_client() {
    let app = TestApp::with_config(Backend::Sqlite, |c| {
        c.device_authorization.interval_secs = 1;
    })
    .await;
    let created = app
        .client(|c| {
            c.public = true;
            c.redirect_uris = vec![];
            c.grant_types = vec!["device_code".into(), "refresh_token".into()];
            c.skip_consent = true;
        })
        .await;
    let result = run_browser_script(
        "device.mjs",
        &[
            ("ISSUER", &app.base),
            ("CLIENT_ID", &created.client_id),
            ("LOGIN_EMAIL", EMAIL),
            ("LOGIN_PASSWORD", PASSWORD),
        ],
    )
    .await;
    assert_eq!(result["deviceEndpoint"], app.url("/device_authorization"));
    assert_eq!(result["shown"], result["userCode"], "{result}");
    assert_eq!(result["done"], "Device connected");
    assert_eq!(result["claims"]["sub"], app.user_id.as_str());
    assert_eq!(result["claims"]["aud"], created.client_id.as_str());
    assert_eq!(result["refreshToken"], true);
    app.stop().await;
}
