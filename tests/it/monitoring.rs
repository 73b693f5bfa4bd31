//! What tells operators about the service (issue 12): `/metrics` read by a Prometheus
//! text-format parser, the intrusion detectors, and their signed webhooks delivered to a real
//! HTTP receiver and retried. Both databases.

use crate::common::*;
use crate::throttle::{actions, behind_loopback_proxy, sign_in_urls, submit_from};
use latchkey_server::config::Config;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef0123456789";
const HOOK_SECRET: &str = "hook-secret-0123456789abcdef0123456789ab";

fn with_metrics_token(c: &mut Config) {
    c.metrics.token = Some(latchkey_server::secret::Secret::new(METRICS_TOKEN.into()));
}

/// Parses a `/metrics` body with the `prometheus-parse` crate.
fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of `name`'s sample whose labels include `labels`.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

async fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let r = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse(&r.text().await.unwrap())
}

crate::both!(
    metrics_are_not_served_unless_configured,
    async |app: &TestApp| {
        let r = reqwest::get(app.url("/metrics")).await.unwrap();
        assert_eq!(r.status(), 404);
    }
);

crate::both_with!(
    metrics_need_the_configured_bearer_token,
    with_metrics_token,
    async |app: &TestApp| {
        let http = reqwest::Client::new();
        for token in [
            None,
            Some("wrong"),
            Some(&METRICS_TOKEN[..METRICS_TOKEN.len() - 1]),
        ] {
            let mut r = http.get(app.url("/metrics"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 401, "{token:?}");
            assert!(r.headers().contains_key("www-authenticate"));
        }
    }
);

crate::both_with!(
    metrics_count_requests_logins_tokens_and_report_the_argon2_queue_keys_and_pools,
    with_metrics_token,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let t = user_tokens(app, &c.client_id, &secret, "openid").await;
        assert!(t["access_token"].is_string());
        let b = Browser::new(app);
        let url = authorize_url(app, &c.client_id, &[("prompt", "login")]);
        let (flow, csrf) = b.open_login(&url).await;
        let r = b
            .submit_login(&flow, &csrf, EMAIL, "not the password")
            .await;
        assert_eq!(r.status(), 401);
        let _ = reqwest::get(app.url("/no/such/page/42")).await.unwrap();
        let s = scrape(app).await;
        let at_least = |name: &str, labels: &[(&str, &str)], n: f64| {
            let v = value(&s, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"));
            assert!(v >= n, "{name} {labels:?} = {v}");
        };
        at_least(
            "latchkey_http_requests_total",
            &[("route", "/token"), ("method", "POST"), ("status", "200")],
            1.0,
        );
        at_least(
            "latchkey_http_requests_total",
            &[("route", "/login"), ("method", "POST"), ("status", "401")],
            1.0,
        );
        // An unrouted path is one label, not one per path.
        assert!(
            !s.samples
                .iter()
                .any(|x| x.labels.get("route") == Some("/no/such/page/42"))
        );
        at_least(
            "latchkey_http_request_duration_seconds_count",
            &[("route", "/authorize")],
            2.0,
        );
        at_least(
            "latchkey_logins_total",
            &[("outcome", "success"), ("acr", "pwd")],
            1.0,
        );
        at_least("latchkey_logins_total", &[("outcome", "failure")], 1.0);
        at_least(
            "latchkey_tokens_issued_total",
            &[("grant_type", "authorization_code")],
            1.0,
        );
        assert_eq!(value(&s, "latchkey_argon2_queue_depth", &[]), Some(0.0));
        at_least(
            "latchkey_signing_key_age_seconds",
            &[("alg", "RS256"), ("state", "active")],
            0.0,
        );
        at_least(
            "latchkey_signing_key_age_seconds",
            &[("alg", "ES256"), ("state", "active")],
            0.0,
        );
        at_least("latchkey_db_pool_connections", &[("state", "max")], 1.0);
    }
);

crate::both_with!(
    metrics_bind_serves_metrics_alone_without_a_token,
    |c: &mut Config| c.metrics.bind = Some("127.0.0.1:0".parse().unwrap()),
    async |app: &TestApp| {
        let addr = app.metrics_addr().expect("metrics listener");
        let r = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let s = parse(&r.text().await.unwrap());
        assert!(value(&s, "latchkey_argon2_queue_depth", &[]).is_some());
        // Nothing else is served there, and the main listener still needs a token.
        let r = reqwest::get(format!("http://{addr}/authorize"))
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = reqwest::get(app.url("/metrics")).await.unwrap();
        assert_eq!(r.status(), 404);
    }
);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    delivery: String,
    attempt: String,
    body: String,
}

/// A real HTTP server (actix-web) that answers 500 to the first `fail_first` requests and
/// 204 after, keeping what it got.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let kept = got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = actix_web::HttpServer::new(move || {
        let kept = kept.clone();
        actix_web::App::new().route(
            "/hook",
            actix_web::web::post().to(move |req: actix_web::HttpRequest, body: String| {
                let kept = kept.clone();
                async move {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let mut g = kept.lock().unwrap();
                    g.push(Received {
                        signature: h("latchkey-signature"),
                        delivery: h("latchkey-delivery"),
                        attempt: h("latchkey-attempt"),
                        body,
                    });
                    if g.len() <= fail_first {
                        actix_web::HttpResponse::InternalServerError().finish()
                    } else {
                        actix_web::HttpResponse::NoContent().finish()
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .disable_signals()
    .run();
    tokio::spawn(server);
    (url, got)
}

/// Checks `Latchkey-Signature: t=…,v1=…` over `<t>.<body>` as a receiver would.
fn signature_is_valid(header: &str, body: &str) -> bool {
    let Some((t, v1)) = header.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HOOK_SECRET.as_bytes());
    let Ok(mac) = hex::decode(v1) else {
        return false;
    };
    ring::hmac::verify(&key, format!("{t}.{body}").as_bytes(), &mac).is_ok()
}

fn alerting(c: &mut Config, url: &str) {
    behind_loopback_proxy(c);
    c.detection.interval_secs = 1;
    c.detection.spraying_accounts = 3;
    c.detection.brute_force_failures = 4;
    c.alerts.webhook_urls = vec![url.to_owned()];
    c.alerts.webhook_secret = Some(latchkey_server::secret::Secret::new(HOOK_SECRET.into()));
    c.alerts.webhook_retry_secs = 1;
    with_metrics_token(c);
}

/// Waits until `f` holds, up to 20 s.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..80 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what} did not happen within 20 s");
}

async fn password_spraying_is_alerted_once_by_a_signed_webhook_retried_until_accepted(
    backend: Backend,
) {
    let (url, got) = receiver(1).await;
    let app = TestApp::with_config(backend, |c| alerting(c, &url)).await;
    let (sign_in, _) = sign_in_urls(&app).await;
    let b = Browser::new(&app);
    let (flow, csrf) = b.open_login(&sign_in).await;
    // One source, three e-mails (two unknown): spraying at the threshold.
    for email in [EMAIL, "nobody@lab.example", "nobody2@lab.example", EMAIL] {
        let r = submit_from(&app, &b, &flow, &csrf, email, "wrong", "203.0.113.7").await;
        assert_eq!(r.status(), 401);
    }
    eventually("a delivered retry", async || got.lock().unwrap().len() >= 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = got.lock().unwrap().clone();
    // Refused once (500), accepted on the retry; not sent again after.
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].delivery, got[1].delivery);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        (got[0].attempt.as_str(), got[1].attempt.as_str()),
        ("1", "2")
    );
    for g in &got {
        assert!(signature_is_valid(&g.signature, &g.body), "{g:?}");
        assert!(!signature_is_valid(
            &g.signature,
            &g.body.replace("203", "204")
        ));
    }
    let p: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(p["type"], "security.alert");
    assert_eq!(p["detector"], "password_spraying");
    assert_eq!(p["subject"], "203.0.113.7");
    assert_eq!(p["source"], "203.0.113.7");
    assert_eq!(p["user_agent"], "guesser/1.0");
    assert_eq!(p["issuer"], app.base.as_str());
    assert_eq!(p["details"]["accounts"], 3);
    assert_eq!(p["details"]["failures"], 4);
    // The audit entry, with source and user agent; the delivery's status.
    let entries = actions(&app).await;
    let alerts: Vec<_> = entries
        .iter()
        .filter(|(a, _, _)| a == "security.alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].2["detector"], "password_spraying");
    assert_eq!(alerts[0].2["source"], "203.0.113.7");
    assert_eq!(alerts[0].2["user_agent"], "guesser/1.0");
    assert_eq!(alerts[0].2["alert"], p["id"]);
    let recent = app.state.store.recent_alerts(10).await.unwrap();
    assert_eq!(recent.len(), 1);
    let d = &recent[0].deliveries[0];
    assert_eq!((d.status.as_str(), d.attempts), ("delivered", 2));
    assert_eq!(d.last_result.as_deref(), Some("HTTP 204"));
    let s = scrape(&app).await;
    assert_eq!(
        value(
            &s,
            "latchkey_security_alerts_total",
            &[("detector", "password_spraying")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "latchkey_webhook_deliveries_total",
            &[("outcome", "retry")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "latchkey_webhook_deliveries_total",
            &[("outcome", "delivered")]
        ),
        Some(1.0)
    );
    // The admin API lists it with its delivery's status, to system administrators only.
    let system = client_token(&app, "*").await;
    let (status, alerts) = call(
        &app,
        Some(&system),
        reqwest::Method::GET,
        "/api/v1/security/alerts",
        None,
    )
    .await;
    assert_eq!(status, 200, "{alerts}");
    assert_eq!(alerts[0]["detector"], "password_spraying");
    assert_eq!(alerts[0]["payload"], p);
    let d = &alerts[0]["deliveries"][0];
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_result"], "HTTP 204");
    assert_eq!(d["url"], url.as_str());
    let lab_admin = client_token(&app, &app.lab_id).await;
    let (status, _) = call(
        &app,
        Some(&lab_admin),
        reqwest::Method::GET,
        "/api/v1/security/alerts",
        None,
    )
    .await;
    assert_eq!(status, 403);
    // The console's security page shows the hour's failures, the source and the delivery.
    app.state
        .store
        .set_system_admin(&app.user(), true, &[])
        .await
        .unwrap();
    let b = Browser::new(&app);
    console_token(&app, &b, EMAIL).await;
    let r = b.get("/admin").await;
    assert!(r.text().await.unwrap().contains("id=\"security-link\""));
    let r = b.get("/admin/security").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        select_text(&html, "#failed-total")
            .unwrap()
            .starts_with("4 failed sign-ins"),
        "{html}"
    );
    let doc = scraper::Html::parse_document(&html);
    let bars = scraper::Selector::parse("#failed-chart rect.bar").unwrap();
    assert_eq!(doc.select(&bars).count(), 24);
    let top = select_text(&html, "#top-sources tbody tr").unwrap();
    assert!(top.contains("203.0.113.7") && top.contains('4'), "{top}");
    // The spraying alert's row (the lab administrator's refused call above may have raised an
    // `admin_outside_policy` alert since, listed first when the detector ran in between).
    let rows = scraper::Selector::parse("#alerts tbody tr").unwrap();
    let alert = doc
        .select(&rows)
        .map(|r| r.text().collect::<String>())
        .find(|t| t.contains("password_spraying"))
        .unwrap_or_else(|| panic!("no password_spraying row: {html}"));
    assert!(
        alert.contains("delivered") && alert.contains("HTTP 204 after 2 attempts"),
        "{alert}"
    );
    app.stop().await;
}

mod password_spraying_is_alerted_once_by_a_signed_webhook_retried_until_accepted {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::password_spraying_is_alerted_once_by_a_signed_webhook_retried_until_accepted(
            Backend::Sqlite,
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::password_spraying_is_alerted_once_by_a_signed_webhook_retried_until_accepted(
            Backend::Postgres,
        )
        .await;
    }
}

/// The detectors that alert of the entries the node finds, by detector.
async fn alerted(app: &TestApp) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = app
        .state
        .store
        .recent_alerts(100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.detector, a.subject))
        .collect();
    v.sort();
    v
}

crate::both_with!(
    brute_force_replays_and_refused_administrators_are_each_alerted,
    |c: &mut Config| {
        behind_loopback_proxy(c);
        c.detection.interval_secs = 1;
        c.detection.brute_force_failures = 4;
    },
    async |app: &TestApp| {
        // Brute force: four wrong passwords on Ada's account from four sources.
        let (sign_in, _) = sign_in_urls(app).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&sign_in).await;
        for i in 1..=4 {
            let ip = format!("198.51.100.{i}");
            let r = submit_from(app, &b, &flow, &csrf, EMAIL, "wrong", &ip).await;
            assert_eq!(r.status(), 401);
        }
        // A replayed authorization code and a replayed refresh token.
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let url = authorize_url(app, &c.client_id, &[]);
        let back = Browser::new(app).login(&url, EMAIL, PASSWORD).await;
        let code = query_param(&back, "code").unwrap();
        let exchange = async || {
            reqwest::Client::new()
                .post(app.url("/token"))
                .basic_auth(&c.client_id, Some(&secret))
                .header("x-forwarded-for", "192.0.2.66")
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", verifier),
                ])
                .send()
                .await
                .unwrap()
        };
        assert_eq!(exchange().await.status(), 200);
        // Replayed three times: refused each time, recorded once (the replay that revoked).
        for _ in 0..3 {
            assert_eq!(exchange().await.status(), 400);
        }
        let t = user_tokens(app, &c.client_id, &secret, "openid offline_access").await;
        let refresh = t["refresh_token"].as_str().unwrap().to_owned();
        for expect in [200, 400] {
            let r = reqwest::Client::new()
                .post(app.url("/token"))
                .basic_auth(&c.client_id, Some(&secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), expect);
        }
        // A lab's automation client tries a system administrator's operation.
        let lab_admin = client_token(app, &app.lab_id).await;
        let (status, _) = call(
            app,
            Some(&lab_admin),
            reqwest::Method::POST,
            "/api/v1/labs",
            Some(serde_json::json!({"name": "Another lab"})),
        )
        .await;
        assert_eq!(status, 403);
        // A member who administers nothing is refused the console, unrecorded.
        let b = Browser::new(app);
        console_token(app, &b, EMAIL).await;
        assert_eq!(b.get("/admin/security").await.status(), 403);
        // A lab administrator's console is refused the security page: recorded, unless
        // another site sent the browser there.
        app.state
            .store
            .set_lab_admin(&app.user(), &app.lab(), true, &[])
            .await
            .unwrap();
        let b = Browser::new(app);
        console_token(app, &b, EMAIL).await;
        let r = b
            .http
            .get(app.url("/admin/security"))
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(b.get("/admin/security").await.status(), 403);
        // Calls without a valid token are refused unrecorded.
        let (status, _) = call(
            app,
            Some("junk"),
            reqwest::Method::GET,
            "/api/v1/labs",
            None,
        )
        .await;
        assert_eq!(status, 401);
        eventually("five alerts", async || alerted(app).await.len() >= 5).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = alerted(app).await;
        let detectors: Vec<&str> = got.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(
            detectors,
            [
                "admin_outside_policy",
                "admin_outside_policy",
                "brute_force",
                "code_replay",
                "refresh_token_replay"
            ],
            "{got:?}"
        );
        assert!(got.contains(&("brute_force".into(), app.user_id.clone())));
        let entries = actions(app).await;
        let refused: Vec<_> = entries
            .iter()
            .filter(|(a, _, _)| a == "admin.refused")
            .collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert_eq!(refused[0].2["reason"], "forbidden");
        assert_eq!(refused[0].2["route"], "/api/v1/labs");
        assert_eq!(refused[1].2["route"], "/admin/security");
        assert_eq!(refused[1].1, app.user_id);
        let replays: Vec<_> = entries
            .iter()
            .filter(|(a, _, _)| a == "code.replayed")
            .collect();
        assert_eq!(replays.len(), 1, "{replays:?}");
        assert_eq!(replays[0].2["source"], "192.0.2.66");
        assert!(replays[0].2["grant"].is_string());
        let alert = entries
            .iter()
            .find(|(a, _, d)| a == "security.alert" && d["detector"] == "code_replay")
            .unwrap();
        assert_eq!(alert.2["source"], "192.0.2.66");
    }
);
