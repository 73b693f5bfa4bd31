//! Steps many tests share: an authorization URL, a whole login for tokens, the account page
//! and TOTP enrolment, client-credentials tokens, reading JWT claims and page text.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The PKCE pair every test flow uses (RFC 7636 appendix B).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The PKCE verifier of [`CHALLENGE`] (RFC 7636 appendix B).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A raw authorization URL; `extra` overrides or (with an empty value) removes parameters.
pub fn authorize_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id.into()),
        ("redirect_uri".into(), CALLBACK.into()),
        ("scope".into(), "openid email".into()),
        ("state".into(), "st4te".into()),
        ("nonce".into(), "n0nce".into()),
        ("code_challenge".into(), CHALLENGE.into()),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push(((*k).into(), (*v).into()));
        }
    }
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

pub fn select_text(html: &str, css: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(css).ok()?;
    doc.select(&sel)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_owned())
}

/// The TOTP code for `key` (base32, spaces allowed) at `now + offset` seconds.
pub fn totp_code(key: &str, offset: i64) -> String {
    totp_at(key, latchkey_server::store::now() + offset)
}

fn totp_at(key: &str, at: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(key.replace(' ', "")).expect("base32 key");
    let t = totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .expect("totp");
    t.generate(at as u64).to_string()
}

/// Remembers the authenticator app `email` just set up with [`enrol_totp`] (its first code
/// used the step before the current one).
pub fn remember_totp(app: &TestApp, email: &str, key: &str) {
    let step = latchkey_server::store::now() / 30 - 1;
    app.totp
        .lock()
        .unwrap()
        .insert(email.to_owned(), (key.to_owned(), step));
}

/// A code of `email`'s authenticator app (set up through [`console_token`] or
/// [`remember_totp`]) from a time step not used yet: Latchkey accepts the current step and the
/// one before, each once, so this waits for the next step only when both are spent.
pub async fn next_totp_code(app: &TestApp, email: &str) -> String {
    let (key, last) = app
        .totp
        .lock()
        .unwrap()
        .get(email)
        .cloned()
        .unwrap_or_else(|| panic!("{email} has no authenticator app in this test"));
    // Latchkey accepts the current step and the one before (`totp_steps_back`), each once,
    // never a future one: the oldest unused of those, or wait for the next step to begin.
    let now_step = latchkey_server::store::now() / 30;
    let step = (last + 1).max(now_step - 1);
    if step > now_step {
        let wait = step * 30 - latchkey_server::store::now();
        tokio::time::sleep(std::time::Duration::from_secs(wait.max(0) as u64 + 1)).await;
    }
    app.totp
        .lock()
        .unwrap()
        .insert(email.to_owned(), (key.clone(), step));
    totp_at(&key, step * 30)
}

/// Signs `email` (password [`PASSWORD`]) in to the admin console in `b`, a browser without a
/// Latchkey session, and returns the console's access token (its cookie). The console demands
/// `admin.min_acr`, a second factor by default: someone without one is shown the enrolment
/// page, sets up an authenticator app from it and opens the console again, as a first
/// administrator does; someone with one steps up with a code.
pub async fn console_token(app: &TestApp, b: &Browser, email: &str) -> String {
    let r = b.get("/admin/login").await;
    assert_eq!(r.status(), 303);
    let authorize = location(&r);
    assert!(authorize.starts_with("/authorize?"), "{authorize}");
    let (flow, csrf) = b.open_login(&authorize).await;
    let r = b.submit_login(&flow, &csrf, email, PASSWORD).await;
    assert_eq!(r.status(), 303, "the password is right");
    let mut loc = location(&r);
    if loc.starts_with("/login/verify?") {
        let html = b.get(&loc).await.text().await.unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let code = next_totp_code(app, email).await;
        let r = b
            .post_form(
                "/login/verify",
                &[
                    ("flow", &flow),
                    ("csrf", &csrf),
                    ("method", "totp"),
                    ("code", &code),
                ],
            )
            .await;
        assert_eq!(r.status(), 303, "the code is right");
        loc = location(&r);
    }
    // The issuer may be `localhost` (`on_localhost`) where the browser's cookies are for
    // 127.0.0.1: follow the path.
    let loc = loc
        .strip_prefix(&app.state.issuer)
        .unwrap_or_else(|| panic!("back to the console: {loc}"))
        .to_owned();
    assert!(loc.starts_with("/admin/callback?"), "{loc}");
    let mut r = b.get(&loc).await;
    if loc.contains("error=unmet_authentication_requirements") {
        assert_eq!(r.status(), 403);
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Set up a second factor to administer"),
            "{html}"
        );
        let key = enrol_totp(b).await;
        remember_totp(app, email, &key);
        let again = link_href(&html, "console-again");
        let r2 = b.get(&again).await;
        let r3 = b.get(&location(&r2)).await;
        let loc = location(&r3);
        let loc = loc.strip_prefix(&app.state.issuer).unwrap_or(&loc);
        assert!(
            loc.starts_with("/admin/callback?code="),
            "the session now has a second factor: {loc}"
        );
        r = b.get(loc).await;
    }
    assert_eq!(r.status(), 303, "callback signs in");
    admin_cookie(&r).expect("the console keeps its access token in a cookie")
}

/// The console's token set by a response (`latchkey_admin` cookie), if any.
pub fn admin_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("latchkey_admin="))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
        .filter(|t| !t.is_empty())
}

/// The `href` of the link with this id.
pub fn link_href(html: &str, id: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("a#{id}")).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("href"))
        .unwrap_or_else(|| panic!("no link #{id}"))
        .to_owned()
}

/// The claims of a JWT (not verified: the OIDC tests verify signatures).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("jwt payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

/// Signs the browser in to the account page with the test user's password.
pub async fn account_sign_in(b: &Browser) {
    let r = b.get("/account").await;
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with("/login?flow="), "{loc}");
    let html = b.get(&loc).await.text().await.unwrap();
    let flow = html_input(&html, "flow").unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    assert_eq!(location(&r), "/account");
}

pub async fn account_csrf(b: &Browser) -> String {
    let r = b.get("/account").await;
    assert_eq!(r.status(), 200);
    html_input(&r.text().await.unwrap(), "csrf").expect("account csrf")
}

/// Sets up an authenticator app from the account page; returns its key.
pub async fn enrol_totp(b: &Browser) -> String {
    let csrf = account_csrf(b).await;
    let r = b.post_form("/account/totp/setup", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("data:image/svg+xml;base64,"), "QR code shown");
    let key = select_text(&html, "#totp-key").expect("key as text");
    let wrong = b
        .post_form(
            "/account/totp/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), 400, "a wrong code does not activate it");
    // Too close to the end of a step, the code of "the step before" would be two steps old by
    // the time the server checks it: wait for the next step first.
    let into_step = latchkey_server::store::now().rem_euclid(30);
    if into_step >= 27 {
        tokio::time::sleep(std::time::Duration::from_secs((31 - into_step) as u64)).await;
    }
    let r = b
        .post_form(
            "/account/totp/confirm",
            // The step before the current one (accepted, `totp_steps_back`), so the current
            // step's code is still unused for the test's next sign-in.
            &[("csrf", &csrf), ("code", &totp_code(&key, -30))],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    key
}

/// Sends a code exchange to `token_url` ([`CALLBACK`], [`VERIFIER`], HTTP Basic); returns the
/// answer, whatever it is.
pub async fn exchange_code(token_url: &str, client: (&str, &str), code: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(token_url)
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
}

/// Exchanges a code; returns the token response.
pub async fn tokens(app: &TestApp, client: &(String, String), back: &url::Url) -> Value {
    let code = query_param(back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let r = exchange_code(&app.url("/token"), (&client.0, &client.1), &code).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn cc_token(app: &TestApp, client_id: &str, secret: &str) -> String {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// A user's tokens from a full browser login with PKCE.
pub async fn user_tokens(app: &TestApp, client_id: &str, secret: &str, scope: &str) -> Value {
    user_tokens_for(app, client_id, secret, scope, EMAIL).await
}

/// Like [`user_tokens`], for another user (password [`PASSWORD`]).
pub async fn user_tokens_for(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    scope: &str,
    email: &str,
) -> Value {
    let verifier = VERIFIER;
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", scope)
        .append_pair("nonce", "n-1")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let back = Browser::new(app).login(u.as_str(), email, PASSWORD).await;
    let code = query_param(&back, "code").unwrap();
    reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An automation client's admin token (client_credentials, scope `latchkey:admin`).
pub async fn client_token(app: &TestApp, admin_of: &str) -> String {
    let admin_of = admin_of.to_owned();
    let c = app
        .client(move |c| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
            c.admin_of = Some(admin_of);
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
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "latchkey:admin");
    t["access_token"].as_str().unwrap().to_owned()
}

/// An admin API request with an optional bearer token; returns the status and the JSON body
/// (`null` when the body is not JSON).
pub async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs SQL straight against the app's database, behind Latchkey's back.
pub async fn tamper(app: &TestApp, sql: &str) {
    let url = app.state.config.database_url();
    if url.starts_with("postgres") {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = task.await;
    } else {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let path = url.trim_start_matches("sqlite://").to_owned();
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut c = diesel::SqliteConnection::establish(&path).unwrap();
            c.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
            c.batch_execute(&sql).unwrap();
        })
        .await
        .unwrap();
    }
}

/// A sign-in request's sender from `ip`, without a known-device cookie.
pub fn requester(ip: &str) -> latchkey_server::signin::Requester {
    latchkey_server::signin::Requester {
        ip: ip.parse().expect("an IP address"),
        user_agent: "latchkey tests".into(),
        device: None,
    }
}

/// The newest audit entry: (actor, action, details).
pub async fn last_action(app: &TestApp) -> (String, String, Value) {
    let e = app
        .state
        .store
        .audit_snapshot()
        .await
        .unwrap()
        .chain
        .pop()
        .unwrap()
        .entry;
    (e.actor, e.action, serde_json::from_str(&e.details).unwrap())
}
