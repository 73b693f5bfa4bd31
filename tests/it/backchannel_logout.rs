//! OpenID Connect Back-Channel Logout 1.0, end to end: a relying party's receiver (actix-web
//! with `latchkey-client`'s `BackchannelLogout` extractor, the real RP library) is told when
//! the session it got tokens from ends, the token is checked again by `jose` (a third-party
//! Node library), failed deliveries are retried, and registration refuses logout URIs the
//! specification does not allow.

use crate::both_with;
use crate::client::lab_service;
use crate::common::*;
use actix_web::{App, HttpResponse, HttpServer, web};
use latchkey_client::actix::BackchannelLogout;
use latchkey_client::{LogoutToken, Verifier, VerifierOptions};
use latchkey_core::names::{ClientId, UserId};
use latchkey_server::admin::Admin;
use latchkey_server::admin::ops;
use latchkey_server::provision::CreatedClient;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a relying party's receiver saw.
#[derive(Default)]
struct Seen {
    /// Tokens the `BackchannelLogout` extractor accepted (its sessions would end).
    verified: Mutex<Vec<LogoutToken>>,
    /// Raw `logout_token` values posted to `/raw`.
    raw: Mutex<Vec<String>>,
    /// Requests to `/bcl` to answer 503 before accepting.
    fail_first: AtomicUsize,
}

/// A relying party's listening socket on 127.0.0.1, and its origin (clients are registered
/// with it before the receiver, which needs their id, starts).
fn bind() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", l.local_addr().unwrap());
    (l, origin)
}

/// A relying party's back-channel logout receiver on `listener`: the example lab service
/// (`/backchannel-logout`, `/whoami`, …) for the client `audience`; `/bcl` verifies with
/// `latchkey-client` too and records what it accepts; `/raw` keeps the token as posted.
async fn receive(app: &TestApp, listener: std::net::TcpListener, audience: &str, seen: Arc<Seen>) {
    let verifier = Verifier::discover(VerifierOptions::new(app.base.clone(), audience).any_lab())
        .await
        .unwrap();
    let verifier = web::Data::new(verifier);
    let data = web::Data::from(seen);
    let ended = web::Data::new(lab_service::EndedSessions::default());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .app_data(data.clone())
            .app_data(ended.clone())
            // The example lab service: its `/backchannel-logout` hook and its routes.
            .configure(lab_service::routes)
            .route(
                "/bcl",
                web::post().to(|seen: web::Data<Seen>, t: BackchannelLogout| async move {
                    if seen
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    seen.verified.lock().unwrap().push(t.0);
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/raw",
                web::post().to(
                    |seen: web::Data<Seen>, f: web::Form<Vec<(String, String)>>| async move {
                        for (k, v) in f.into_inner() {
                            if k == "logout_token" {
                                seen.raw.lock().unwrap().push(v);
                            }
                        }
                        HttpResponse::NoContent().finish()
                    },
                ),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap();
    tokio::spawn(server.run());
}

/// A confidential client on `origin` (a redirect URI there) whose logout tokens go to `path`.
async fn rp_client(app: &TestApp, origin: &str, path: Option<&str>) -> CreatedClient {
    let (cb, logout) = (format!("{origin}/cb"), path.map(|p| format!("{origin}{p}")));
    app.client(move |c| {
        c.skip_consent = true;
        c.redirect_uris = vec![CALLBACK.into(), cb];
        c.backchannel_logout_uri = logout;
    })
    .await
}

/// Signs in to `client` in `browser` (asking for the password only if the browser has no
/// session) and exchanges the code: the token response.
async fn sign_in(app: &TestApp, browser: &Browser, client: &CreatedClient) -> Value {
    let url = authorize_url(app, &client.client_id, &[]);
    let r = browser.get(&url).await;
    let back = if location(&r).starts_with("/login?flow=") {
        browser.login(&url, EMAIL, PASSWORD).await
    } else {
        url::Url::parse(&location(&r)).unwrap()
    };
    let code = query_param(&back, "code").expect("a code");
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Waits until `f` holds (logout tokens are sent by a background task).
async fn eventually(what: &str, f: impl AsyncFn() -> bool) {
    for _ in 0..150 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A relying party whose logout tokens go to `path` on a running receiver that verifies them
/// for it: what the receiver saw, and the client.
async fn relying_party(app: &TestApp, path: &str) -> (Arc<Seen>, CreatedClient) {
    let seen = Arc::new(Seen::default());
    let (listener, origin) = bind();
    let a = rp_client(app, &origin, Some(path)).await;
    receive(app, listener, &a.client_id, seen.clone()).await;
    (seen, a)
}

async fn deliveries(app: &TestApp, client: &str) -> Vec<ops::LogoutDeliveryView> {
    ops::client_logout_deliveries(&app.state, &Admin::cli(), &ClientId::new(client))
        .await
        .unwrap()
}

/// RP-initiated logout of `browser`'s session, confirmed on Latchkey's page.
async fn log_out(browser: &Browser, client: &str) {
    let page = browser.get(&format!("/logout?client_id={client}")).await;
    assert_eq!(page.status(), 200);
    let csrf = html_input(&page.text().await.unwrap(), "csrf").unwrap();
    let r = browser
        .post_form(
            "/logout",
            &[
                ("csrf", &csrf),
                ("client_id", client),
                ("decision", "logout"),
            ],
        )
        .await;
    assert!(r.status().is_redirection() || r.status().is_success());
}

fn fast(c: &mut latchkey_server::Config) {
    c.backchannel_logout.interval_ms = 100;
    c.backchannel_logout.retry_secs = 1;
}

both_with!(
    bclogout_2_5_signing_out_sends_every_client_of_the_session_a_logout_token,
    fast,
    async |app: &TestApp| {
        let seen = Arc::new(Seen::default());
        let (listener, origin) = bind();
        // A: the example lab service's hook; B: kept raw, for jose; C: no logout URI.
        let a = rp_client(app, &origin, Some("/backchannel-logout")).await;
        let b = rp_client(app, &origin, Some("/raw")).await;
        let c = rp_client(app, &origin, None).await;
        receive(app, listener, &a.client_id, seen.clone()).await;
        let browser = Browser::new(app);
        let _ = sign_in(app, &browser, &b).await;
        let _ = sign_in(app, &browser, &c).await;
        let tokens_a = sign_in(app, &browser, &a).await;
        let id = jwt_claims(tokens_a["id_token"].as_str().unwrap());
        let at = tokens_a["access_token"].as_str().unwrap().to_owned();
        let whoami = async || {
            reqwest::Client::new()
                .get(format!("{origin}/whoami"))
                .bearer_auth(&at)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(whoami().await, 200);
        log_out(&browser, &a.client_id).await;
        eventually("B's logout token", async || {
            !seen.raw.lock().unwrap().is_empty()
        })
        .await;
        // A's service heard of it: its unexpired token from the ended session is refused.
        eventually("A's service to refuse the token", async || {
            whoami().await == 401
        })
        .await;
        // B's, verified by jose for B (signature from the JWKS, typ, iss, aud, events): the
        // session of the ID tokens, and the user.
        let raw = seen.raw.lock().unwrap().clone();
        assert_eq!(raw.len(), 1);
        let checked = crate::browser::run_browser_script(
            "logout_token.mjs",
            &[
                ("ISSUER", app.base.as_str()),
                ("CLIENT_ID", b.client_id.as_str()),
                ("LOGOUT_TOKEN", raw[0].as_str()),
            ],
        )
        .await;
        assert_eq!(checked["sid"], id["sid"]);
        assert_eq!(checked["sub"], app.user_id.as_str());
        assert_eq!(checked["typ"], "logout+jwt");
        assert_eq!(checked["alg"], "RS256");
        // Each delivery is listed as delivered, after one attempt; C registered no URI.
        let d = deliveries(app, &a.client_id).await;
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].status.as_str(), d[0].attempts), ("delivered", 1));
        assert_eq!(d[0].last_result.as_deref(), Some("HTTP 200"));
        assert_eq!(d[0].sid, id["sid"].as_str().unwrap());
        assert_eq!(
            deliveries(app, &b.client_id).await[0]
                .last_result
                .as_deref(),
            Some("HTTP 204")
        );
        assert!(deliveries(app, &c.client_id).await.is_empty());
        // The session is gone: ending it again tells no one again.
        log_out(&browser, &a.client_id).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(deliveries(app, &a.client_id).await.len(), 1);
    }
);

both_with!(
    bclogout_an_administrator_ending_the_sessions_logs_the_user_out_and_failures_are_retried,
    fast,
    async |app: &TestApp| {
        let seen = Arc::new(Seen::default());
        let (listener, origin) = bind();
        let a = rp_client(app, "http://127.0.0.1:9", None).await;
        receive(app, listener, &a.client_id, seen.clone()).await;
        // Registered after the client: the API's update.
        ops::update_client(
            &app.state,
            &Admin::cli(),
            &ClientId::new(&a.client_id),
            serde_json::from_value(serde_json::json!({
                "redirect_uris": [CALLBACK, format!("{origin}/cb")],
                "backchannel_logout_uri": format!("{origin}/bcl"),
            }))
            .unwrap(),
        )
        .await
        .unwrap();
        // Twice: two sessions (two browsers) of the same user.
        let tokens = sign_in(app, &Browser::new(app), &a).await;
        let _ = sign_in(app, &Browser::new(app), &a).await;
        // The receiver is down for the first attempt of one of them.
        seen.fail_first.store(1, Ordering::SeqCst);
        let n = ops::end_sessions(&app.state, &Admin::cli(), &UserId::new(&app.user_id))
            .await
            .unwrap();
        assert_eq!(n.count, 2);
        eventually("two verified logout tokens", async || {
            seen.verified.lock().unwrap().len() == 2
        })
        .await;
        let d = deliveries(app, &a.client_id).await;
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.status == "delivered"), "{d:?}");
        let mut attempts: Vec<i64> = d.iter().map(|d| d.attempts).collect();
        attempts.sort();
        assert_eq!(attempts, [1, 2], "the refused delivery was retried");
        let sids: Vec<Option<String>> = seen
            .verified
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.sid.clone())
            .collect();
        let first = jwt_claims(tokens["id_token"].as_str().unwrap());
        assert!(sids.contains(&first["sid"].as_str().map(str::to_owned)));
        assert!(
            seen.verified
                .lock()
                .unwrap()
                .iter()
                .all(|t| t.sub.as_deref() == Some(app.user_id.as_str()))
        );
    }
);

both_with!(
    bclogout_2_2_a_logout_uri_off_the_clients_redirect_origins_is_refused,
    fast,
    async |app: &TestApp| {
        use latchkey_server::provision::{self, NewClient, ProvisionError};
        let try_create = async |uri: &str| {
            let mut c = NewClient {
                name: "Plate reader".into(),
                redirect_uris: vec!["https://reader.lab.example/cb".into()],
                post_logout_redirect_uris: vec![],
                grant_types: vec!["authorization_code".into()],
                public: false,
                access_token_ttl_secs: None,
                id_token_alg: latchkey_core::SigningAlg::RS256,
                skip_consent: false,
                min_acr: None,
                admin_of: None,
                pkce_optional: false,
                require_par: false,
                require_dpop: false,
                backchannel_logout_uri: Some(uri.into()),
                resource_uri: None,
                resources: vec![],
                jwks: None,
                jwks_uri: None,
                expires_at: None,
                labs: vec!["*".into()],
                features: vec![],
            };
            c.name = format!("Plate reader {}", uri.len());
            provision::create_client(&app.state.store, c).await
        };
        for bad in [
            // Another host, another port, another scheme than every redirect URI's.
            "https://evil.example/logout",
            "https://reader.lab.example:8443/logout",
            // Plain http off loopback; a fragment; credentials.
            "http://reader.lab.example/logout",
            "https://reader.lab.example/logout#f",
            "https://u:p@reader.lab.example/logout",
            "not a url",
        ] {
            match try_create(bad).await {
                Err(ProvisionError::Invalid { field, .. }) => {
                    assert_eq!(field.api_name(), "backchannel_logout_uri", "{bad}");
                }
                other => panic!("{bad} was not refused: {:?}", other.map(|c| c.client_id)),
            }
        }
        let ok = try_create("https://reader.lab.example/backchannel?tenant=1")
            .await
            .unwrap();
        let view = ops::get_client(&app.state, &Admin::cli(), &ClientId::new(&ok.client_id))
            .await
            .unwrap();
        assert_eq!(
            view.backchannel_logout_uri.as_deref(),
            Some("https://reader.lab.example/backchannel?tenant=1")
        );
        // Moving the redirect URIs to another origin would strand it: refused, unchanged.
        let patch = |v: Value| serde_json::from_value(v).unwrap();
        let e = ops::update_client(
            &app.state,
            &Admin::cli(),
            &ClientId::new(&ok.client_id),
            patch(serde_json::json!({"redirect_uris": ["https://other.lab.example/cb"]})),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "invalid", "{e}");
        let same = ops::get_client(&app.state, &Admin::cli(), &ClientId::new(&ok.client_id))
            .await
            .unwrap();
        assert_eq!(same.redirect_uris, ["https://reader.lab.example/cb"]);
        // "" stops back-channel logout.
        let v = ops::update_client(
            &app.state,
            &Admin::cli(),
            &ClientId::new(&ok.client_id),
            patch(serde_json::json!({"backchannel_logout_uri": ""})),
        )
        .await
        .unwrap();
        assert_eq!(v.backchannel_logout_uri, None);
    }
);

both_with!(
    bclogout_a_password_change_and_a_lab_removal_tell_the_clients_of_the_sessions_they_end,
    fast,
    async |app: &TestApp| {
        let (seen, a) = relying_party(app, "/bcl").await;
        let count = || seen.verified.lock().unwrap().len();
        // A password change that signs the other browsers out.
        let (here, elsewhere) = (Browser::new(app), Browser::new(app));
        let _ = sign_in(app, &here, &a).await;
        let other = sign_in(app, &elsewhere, &a).await;
        let csrf = account_csrf(&here).await;
        let new = "violet kettle drums at noon";
        let r = here
            .post_form(
                "/account/password",
                &[
                    ("csrf", csrf.as_str()),
                    ("current", PASSWORD),
                    ("new", new),
                    ("repeat", new),
                ],
            )
            .await;
        assert!(r.status().is_success() || r.status().is_redirection());
        eventually("the other browser's logout token", async || count() == 1).await;
        let other_sid = jwt_claims(other["id_token"].as_str().unwrap())["sid"].clone();
        assert_eq!(
            seen.verified.lock().unwrap()[0].sid.as_deref(),
            other_sid.as_str()
        );
        // Removal from the lab ends the remaining session.
        ops::remove_member(
            &app.state,
            &Admin::cli(),
            &app.lab(),
            &UserId::new(&app.user_id),
        )
        .await
        .unwrap();
        eventually("the last session's logout token", async || count() == 2).await;
    }
);

both_with!(
    bclogout_a_pending_delivery_follows_the_clients_registration,
    fast,
    async |app: &TestApp| {
        let (seen, a) = relying_party(app, "/bcl").await;
        // The receiver is down; the administrator then stops back-channel logout to it.
        seen.fail_first.store(usize::MAX, Ordering::SeqCst);
        let browser = Browser::new(app);
        let _ = sign_in(app, &browser, &a).await;
        log_out(&browser, &a.client_id).await;
        let first = async || deliveries(app, &a.client_id).await.remove(0);
        eventually("a first attempt", async || first().await.attempts > 0).await;
        assert_eq!(deliveries(app, &a.client_id).await[0].status, "pending");
        ops::update_client(
            &app.state,
            &Admin::cli(),
            &ClientId::new(&a.client_id),
            serde_json::from_value(serde_json::json!({"backchannel_logout_uri": ""})).unwrap(),
        )
        .await
        .unwrap();
        eventually("the delivery to end", async || {
            first().await.status != "pending"
        })
        .await;
        let d = first().await;
        assert_eq!(d.status, "failed", "{d:?}");
        assert_eq!(
            d.last_result.as_deref(),
            Some("the client no longer has a backchannel_logout_uri")
        );
        assert!(seen.verified.lock().unwrap().is_empty());
    }
);
