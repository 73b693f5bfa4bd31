//! The protocol rules an independent review found missing (issue 15, part 1), each named after
//! the rule it enforces and run on both databases.

use crate::both;
use crate::common::*;
use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The built-in public client (the admin console): anyone may name it at the token endpoint
/// without credentials.
const CONSOLE: &str = "latchkey:admin";

struct Issued {
    client_id: String,
    secret: String,
    code: String,
}

async fn code_for(app: &TestApp, extra: &[(&str, &str)]) -> Issued {
    let c = app.client(|_| {}).await;
    let back = Browser::new(app)
        .login(&authorize_url(app, &c.client_id, extra), EMAIL, PASSWORD)
        .await;
    Issued {
        client_id: c.client_id,
        secret: c.client_secret.unwrap(),
        code: query_param(&back, "code").expect("code"),
    }
}

/// A token request; `client` is (id, Some(secret)) for HTTP Basic or (id, None) for a public
/// client naming itself in the body.
async fn token(app: &TestApp, client: (&str, Option<&str>), form: &[(&str, &str)]) -> (u16, Value) {
    let mut form = form.to_vec();
    let mut req = reqwest::Client::new().post(app.url("/token"));
    match client.1 {
        Some(secret) => req = req.basic_auth(client.0, Some(secret)),
        None => form.push(("client_id", client.0)),
    }
    let r = req.form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn exchange(app: &TestApp, i: &Issued, redirect_uri: &str, verifier: &str) -> (u16, Value) {
    token(
        app,
        (&i.client_id, Some(&i.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &i.code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The code presented by the console client, as anyone holding a leaked code could.
async fn exchange_as_console(app: &TestApp, code: &str) -> (u16, Value) {
    token(
        app,
        (CONSOLE, None),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn refresh(
    app: &TestApp,
    client: (&str, Option<&str>),
    refresh_token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    token(app, client, &form).await
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

// Item 2: a code is tied to its client (and redirect URI, and verifier) before it is consumed
// or a replay is acted on.

both!(
    rfc6749_4_1_3_code_of_another_client_is_not_consumed,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        // Another registered client, and the credential-less console client, present it.
        let other = app.client(|_| {}).await;
        let (s, body) = token(
            app,
            (&other.client_id, other.client_secret.as_deref()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &i.code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        // Answered as an unknown code (RFC 6749 section 5.2): nothing tells whoever holds the
        // code that it is valid.
        let (_, unknown) = token(
            app,
            (&other.client_id, other.client_secret.as_deref()),
            &[
                ("grant_type", "authorization_code"),
                ("code", "no-such-code"),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_eq!(body, unknown);
        let (s, body) = exchange_as_console(app, &i.code).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        assert_eq!(body, unknown);
        // The code's own client still gets its tokens.
        let (s, body) = exchange(app, &i, CALLBACK, VERIFIER).await;
        assert_eq!(s, 200, "the code was burnt by another client: {body}");
    }
);

both!(
    rfc9700_4_5_2_replay_by_another_client_revokes_nothing,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (s, first) = exchange(app, &i, CALLBACK, VERIFIER).await;
        assert_eq!(s, 200, "{first}");
        let at = str_of(&first, "access_token").to_owned();
        let rt = str_of(&first, "refresh_token").to_owned();
        // A replay without the client's credentials is refused and changes nothing.
        let (s, body) = exchange_as_console(app, &i.code).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        assert_eq!(
            userinfo_status(app, &at).await,
            200,
            "the victim's tokens were revoked"
        );
        let (s, body) = refresh(app, (&i.client_id, Some(&i.secret)), &rt, None).await;
        assert_eq!(s, 200, "{body}");
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        assert!(
            !chain.iter().any(|s| s.entry.action == "code.replayed"),
            "no replay was recorded"
        );
        // The client's own replay still revokes (RFC 6749 4.1.2).
        let (s, body) = exchange(app, &i, CALLBACK, VERIFIER).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        assert_eq!(userinfo_status(app, &at).await, 401);
    }
);

both!(
    rfc7636_4_6_wrong_verifier_or_redirect_uri_does_not_consume_the_code,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let wrong = "x".repeat(43);
        let (s, body) = exchange(app, &i, CALLBACK, &wrong).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        let (s, body) = exchange(app, &i, "http://127.0.0.1:9/other", VERIFIER).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        let (s, body) = exchange(app, &i, CALLBACK, VERIFIER).await;
        assert_eq!(s, 200, "{body}");
    }
);

// Item 3: one path for every refresh.

both!(
    rfc9700_4_14_2_reuse_is_detected_with_a_scope_parameter,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let me = (i.client_id.as_str(), Some(i.secret.as_str()));
        let (_, first) = exchange(app, &i, CALLBACK, VERIFIER).await;
        let rt1 = str_of(&first, "refresh_token").to_owned();
        let (s, second) = refresh(app, me, &rt1, None).await;
        assert_eq!(s, 200, "{second}");
        let rt2 = str_of(&second, "refresh_token").to_owned();
        let at2 = str_of(&second, "access_token").to_owned();
        // The used token again, narrowing the scope: reuse, and the family dies.
        let (s, body) = refresh(app, me, &rt1, Some("openid")).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        let (s, body) = refresh(app, me, &rt2, None).await;
        assert_eq!(
            (s, error_of(&body)),
            (400, "invalid_grant"),
            "the family outlived a reuse: {body}"
        );
        assert_eq!(userinfo_status(app, &at2).await, 401);
    }
);

both!(
    rfc6749_5_2_refresh_refusals_reveal_nothing_about_the_token,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let me = (i.client_id.as_str(), Some(i.secret.as_str()));
        let (_, first) = exchange(app, &i, CALLBACK, VERIFIER).await;
        let rt1 = str_of(&first, "refresh_token").to_owned();
        let other = app.client(|_| {}).await;
        let them = (other.client_id.as_str(), other.client_secret.as_deref());
        // Another client presenting a current token: refused, not consumed, nothing revoked.
        let unknown = refresh(app, them, "lk_rt_nosuchtoken", Some("openid profile")).await;
        assert_eq!((unknown.0, error_of(&unknown.1)), (400, "invalid_grant"));
        for scope in [None, Some("openid"), Some("openid profile")] {
            let foreign = refresh(app, them, &rt1, scope).await;
            assert_eq!(foreign, unknown, "another client's token, scope {scope:?}");
        }
        let (s, second) = refresh(app, me, &rt1, None).await;
        assert_eq!(s, 200, "{second}");
        let rt2 = str_of(&second, "refresh_token").to_owned();
        // Another client presenting a used token: the same answer, and no revocation.
        for scope in [None, Some("openid"), Some("openid profile")] {
            let foreign = refresh(app, them, &rt1, scope).await;
            assert_eq!(
                foreign, unknown,
                "another client's used token, scope {scope:?}"
            );
        }
        let (s, third) = refresh(app, me, &rt2, None).await;
        assert_eq!(s, 200, "another client revoked the family: {third}");
        // The client's own used token, with a scope it never had: the same answer again.
        let used = refresh(app, me, &rt1, Some("openid profile")).await;
        assert_eq!(used, unknown, "a used token answers like an unknown one");
    }
);

both!(
    rfc6749_6_a_wider_scope_does_not_burn_the_refresh_token,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let me = (i.client_id.as_str(), Some(i.secret.as_str()));
        let (_, first) = exchange(app, &i, CALLBACK, VERIFIER).await;
        let rt1 = str_of(&first, "refresh_token").to_owned();
        let (s, body) = refresh(app, me, &rt1, Some("openid profile")).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_scope"), "{body}");
        let (s, body) = refresh(app, me, &rt1, Some("openid")).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(str_of(&body, "scope"), "openid");
    }
);

// Item 4: error_description is restricted to RFC 6749's character set wherever it is sent.

/// Input that must not come back as it is: quotes, markup, CR/LF, NUL, a backslash, a bidi
/// override, non-ASCII.
const HOSTILE: &str = "x\"<script>\\\r\nSet-Cookie: a=b\0\u{202e}gnp.exe caf\u{e9} \u{1F600}";

fn in_rfc6749_set(d: &str) -> bool {
    !d.is_empty()
        && d.chars()
            .all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

both!(
    rfc6749_5_2_error_description_is_limited_to_its_character_set,
    async |app: &TestApp| {
        let c = app
            .client(|c| c.grant_types.push("client_credentials".into()))
            .await;
        let me = (c.client_id.as_str(), c.client_secret.as_deref());
        // Echoed by the grant type, and by a parameter repeated.
        let (s, body) = token(app, me, &[("grant_type", HOSTILE)]).await;
        assert_eq!((s, error_of(&body)), (400, "unsupported_grant_type"));
        let d = str_of(&body, "error_description");
        assert!(in_rfc6749_set(d), "{d:?}");
        assert!(d.contains("x'<script>/??Set-Cookie"), "{d:?}");
        let (s, body) = token(
            app,
            me,
            &[
                ("grant_type", "client_credentials"),
                (HOSTILE, "1"),
                (HOSTILE, "2"),
            ],
        )
        .await;
        assert_eq!((s, error_of(&body)), (400, "invalid_request"));
        let d = str_of(&body, "error_description");
        assert!(in_rfc6749_set(d), "{d:?}");
    }
);

both!(
    rfc6749_4_1_2_1_error_description_in_a_redirect_is_limited_to_its_character_set,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let b = Browser::new(app);
        // By query: an unsupported response_mode is echoed.
        let r = b
            .get(&authorize_url(
                app,
                &c.client_id,
                &[("response_mode", HOSTILE)],
            ))
            .await;
        assert_eq!(r.status(), 303);
        let back = url::Url::parse(&location(&r)).unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request")
        );
        let d = query_param(&back, "error_description").unwrap();
        assert!(in_rfc6749_set(&d), "{d:?}");
        // By form_post: an unknown prompt value is echoed.
        let r = b
            .get(&authorize_url(
                app,
                &c.client_id,
                &[("response_mode", "form_post"), ("prompt", HOSTILE)],
            ))
            .await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert_eq!(
            html_input(&html, "error").as_deref(),
            Some("invalid_request")
        );
        let d = html_input(&html, "error_description").unwrap();
        assert!(in_rfc6749_set(&d), "{d:?}");
        assert!(d.contains("x'<script>/"), "{d:?}");
    }
);

// Item 6 (a): loopback redirect URIs of native apps (RFC 8252 section 7.3).

both!(
    rfc8252_7_3_loopback_ip_redirect_uri_accepts_any_port,
    async |app: &TestApp| {
        // Registered as http://127.0.0.1:9/cb; the app listens on another port today.
        let c = app.client(|_| {}).await;
        let client = (c.client_id.clone(), c.client_secret.clone().unwrap());
        let native = "http://127.0.0.1:54321/cb";
        let back = Browser::new(app)
            .login(
                &authorize_url(app, &c.client_id, &[("redirect_uri", native)]),
                EMAIL,
                PASSWORD,
            )
            .await;
        assert!(back.as_str().starts_with(native), "{back}");
        let code = query_param(&back, "code").unwrap();
        let me = (client.0.as_str(), Some(client.1.as_str()));
        let form = |uri: &'static str| {
            [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", uri),
                ("code_verifier", VERIFIER),
            ]
        };
        // The token request repeats the authorization request's URI, port included.
        let (s, body) = token(app, me, &form(CALLBACK)).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
        let (s, body) = token(app, me, &form(native)).await;
        assert_eq!(s, 200, "{body}");
    }
);

both!(
    rfc8252_8_3_localhost_redirect_uri_keeps_its_port,
    async |app: &TestApp| {
        let c = app
            .client(|c| c.redirect_uris = vec!["http://localhost:9/cb".into()])
            .await;
        let b = Browser::new(app);
        for (uri, status) in [
            ("http://localhost:9/cb", 303),
            ("http://localhost:54321/cb", 400),
            ("http://127.0.0.1:9/cb", 400),
        ] {
            let r = b
                .get(&authorize_url(app, &c.client_id, &[("redirect_uri", uri)]))
                .await;
            assert_eq!(r.status(), status, "{uri}");
            if status == 400 {
                assert!(r.headers().get("location").is_none(), "{uri}");
            }
        }
    }
);

// Item 6 (b): HTTP Basic credentials are form-urlencoded (RFC 6749 section 2.3.1).

/// Gives the client a secret of our choosing (secrets are generated; this one is not).
async fn set_secret(app: &TestApp, client_id: &str, secret: &str) {
    let hash = latchkey_server::secret::TokenHash::of(secret).to_vec();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let literal = if app.state.config.database_url().starts_with("postgres") {
        format!("decode('{hex}', 'hex')")
    } else {
        format!("X'{hex}'")
    };
    tamper(
        app,
        &format!("UPDATE clients SET secret_hash = {literal} WHERE id = '{client_id}'"),
    )
    .await;
}

async fn basic_cc(app: &TestApp, user: &str, password: &str) -> (u16, Value) {
    use base64::Engine;
    let header = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("authorization", format!("Basic {header}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

both!(
    rfc6749_2_3_1_basic_credentials_are_form_urlencoding_decoded,
    async |app: &TestApp| {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let cc = |c: &mut latchkey_server::provision::NewClient| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
        };
        let secret = "s&e%c:r+t =x/%41";
        let c = app.client(cc).await;
        set_secret(app, &c.client_id, secret).await;
        let (s, body) = basic_cc(app, &enc(&c.client_id), &enc(secret)).await;
        assert_eq!(s, 200, "{body}");
        // Sent as is, the same secret is not the same secret.
        let (s, _) = basic_cc(app, &c.client_id, secret).await;
        assert_eq!(s, 401);
        // A `&` is decoded as part of the value, not as the end of a query parameter: a client
        // that leaves it unencoded (nothing else is ambiguous in this secret) gets in too.
        let plain = "abc&def";
        let d = app.client(cc).await;
        set_secret(app, &d.client_id, plain).await;
        let (s, body) = basic_cc(app, &d.client_id, plain).await;
        assert_eq!(s, 200, "{body}");
        let (s, body) = basic_cc(app, &d.client_id, &enc(plain)).await;
        assert_eq!(s, 200, "{body}");
    }
);

// Item 6 (c): the CSP of pages that lead to a custom-scheme redirect URI.

both!(
    csp3_form_action_allows_a_private_use_scheme_redirect_uri,
    async |app: &TestApp| {
        let native = "com.example.app:/cb";
        let c = app.client(|c| c.redirect_uris = vec![native.into()]).await;
        let b = Browser::new(app);
        let (flow, csrf) = b
            .open_login(&authorize_url(
                app,
                &c.client_id,
                &[("redirect_uri", native)],
            ))
            .await;
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        let consent = location(&r);
        assert!(consent.starts_with("/consent?flow="), "{consent}");
        let page = b.get(&consent).await;
        assert_eq!(page.status(), 200);
        let csp = page
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            csp.contains("form-action 'self' com.example.app:;"),
            "{csp}"
        );
        assert!(!csp.contains("null"), "{csp}");
        // And the consent leads there.
        let html = page.text().await.unwrap();
        let r = b
            .post_form(
                "/consent",
                &[
                    ("flow", &html_input(&html, "flow").unwrap()),
                    ("csrf", &html_input(&html, "csrf").unwrap()),
                    ("decision", "allow"),
                ],
            )
            .await;
        assert!(
            location(&r).starts_with("com.example.app:/cb?code="),
            "{}",
            location(&r)
        );
    }
);

// Item 6 (d): offline_access needs consent (OIDC Core section 11).

both!(
    oidc_core_11_offline_access_is_not_granted_silently_to_a_skip_consent_client,
    async |app: &TestApp| {
        let c = app.client(|c| c.skip_consent = true).await;
        let client = (c.client_id.clone(), c.client_secret.clone().unwrap());
        let scope = ("scope", "openid offline_access");
        let b = Browser::new(app);
        // No consent page, so no offline_access: the other scopes are granted.
        let back = b
            .login(&authorize_url(app, &client.0, &[scope]), EMAIL, PASSWORD)
            .await;
        let t = tokens(app, &client, &back).await;
        assert_eq!(t["scope"], "openid", "{t}");
        // prompt=consent asks, even a skip-consent client.
        let r = b
            .get(&authorize_url(
                app,
                &client.0,
                &[scope, ("prompt", "consent")],
            ))
            .await;
        assert!(
            location(&r).starts_with("/consent?flow="),
            "{}",
            location(&r)
        );
        let back = url::Url::parse(&b.consent_if_asked(r, "allow").await).unwrap();
        let t = tokens(app, &client, &back).await;
        assert_eq!(t["scope"], "openid offline_access", "{t}");
        // Once allowed, it is remembered.
        let r = b.get(&authorize_url(app, &client.0, &[scope])).await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        assert_eq!(t["scope"], "openid offline_access", "{t}");
    }
);

// Item 6 (e): browser sessions end after an idle time.

fn idle_hour(c: &mut latchkey_server::Config) {
    c.tokens.session_idle_timeout_secs = 3600;
}

/// A silent authorization: a code when the browser's session is live.
async fn silent(app: &TestApp, b: &Browser, client_id: &str) -> Option<String> {
    let r = b
        .get(&authorize_url(app, client_id, &[("prompt", "none")]))
        .await;
    assert_eq!(r.status(), 303);
    let back = url::Url::parse(&location(&r)).unwrap();
    query_param(&back, "code")
}

crate::both_with!(
    session_idle_timeout_ends_an_unused_session,
    idle_hour,
    async |app: &TestApp| {
        let c = app.client(|c| c.skip_consent = true).await;
        let b = Browser::new(app);
        b.login(&authorize_url(app, &c.client_id, &[]), EMAIL, PASSWORD)
            .await;
        assert!(silent(app, &b, &c.client_id).await.is_some());
        // Used 59 minutes ago: still live, and this use counts.
        tamper(
            app,
            "UPDATE sessions SET last_seen_at = last_seen_at - 3540",
        )
        .await;
        assert!(silent(app, &b, &c.client_id).await.is_some());
        tamper(app, "UPDATE sessions SET last_seen_at = last_seen_at - 120").await;
        assert!(
            silent(app, &b, &c.client_id).await.is_some(),
            "the use before was recorded"
        );
        // Unused for an hour: over, although its absolute lifetime is not.
        tamper(
            app,
            "UPDATE sessions SET last_seen_at = last_seen_at - 3601",
        )
        .await;
        assert_eq!(silent(app, &b, &c.client_id).await, None);
        let r = b.get(&authorize_url(app, &c.client_id, &[])).await;
        assert!(location(&r).starts_with("/login?flow="), "{}", location(&r));
    }
);

// Item 5: PKCE for every client, with an opt-out for legacy confidential clients.

both!(
    rfc9700_2_1_1_pkce_is_required_unless_a_legacy_client_opted_out,
    async |app: &TestApp| {
        let no_pkce = [("code_challenge", ""), ("code_challenge_method", "")];
        let b = Browser::new(app);
        // A confidential client, registered as usual.
        let c = app.client(|_| {}).await;
        let r = b.get(&authorize_url(app, &c.client_id, &no_pkce)).await;
        assert_eq!(r.status(), 303);
        let back = url::Url::parse(&location(&r)).unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request"),
            "{back}"
        );
        assert!(
            query_param(&back, "error_description")
                .unwrap()
                .contains("PKCE is required")
        );
        // A legacy client registered through the API with the opt-out: no PKCE needed, and
        // the attribute is visible in the client list.
        let sys = client_token(app, "*").await;
        let (s, created) = call(
            app,
            Some(&sys),
            reqwest::Method::POST,
            "/api/v1/clients",
            Some(serde_json::json!({
                "name": "legacy", "redirect_uris": [CALLBACK], "pkce_optional": true, "labs": ["*"]
            })),
        )
        .await;
        assert_eq!(s, 200, "{created}");
        let legacy = str_of(&created["client"], "client_id").to_owned();
        assert_eq!(created["client"]["pkce_optional"], true);
        let (_, list) = call(
            app,
            Some(&sys),
            reqwest::Method::GET,
            "/api/v1/clients",
            None,
        )
        .await;
        let listed = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == legacy.as_str())
            .unwrap();
        assert_eq!(listed["pkce_optional"], true);
        let r = b.get(&authorize_url(app, &legacy, &no_pkce)).await;
        assert!(location(&r).starts_with("/login?flow="), "{}", location(&r));
        // A public client cannot opt out.
        let (s, e) = call(
            app,
            Some(&sys),
            reqwest::Method::POST,
            "/api/v1/clients",
            Some(serde_json::json!({
                "name": "spa", "redirect_uris": [CALLBACK], "public": true, "pkce_optional": true,
                "labs": ["*"]
            })),
        )
        .await;
        assert_eq!((s, e["field"].as_str()), (422, Some("public")), "{e}");
    }
);

// A client_id with a NUL byte names no client: PostgreSQL cannot hold one in text, so it must
// be refused before any query, like any unknown client, not fail as a server error.

both!(
    client_id_with_a_nul_byte_is_refused_not_a_server_error,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let nul = format!("{}\0", c.client_id);
        let http = reqwest::Client::new();
        // The authorization endpoint: its error page, not a redirect (the client is unknown).
        let r = Browser::new(app).get(&authorize_url(app, &nul, &[])).await;
        assert_eq!(r.status(), 400, "/authorize");
        // RP-initiated logout names a client too.
        let mut u = url::Url::parse(&app.url("/logout")).unwrap();
        u.query_pairs_mut().append_pair("client_id", &nul);
        let r = http.get(u).send().await.unwrap();
        assert_eq!(r.status(), 400, "/logout");
        for path in ["/token", "/introspect", "/revoke"] {
            let form: &[(&str, &str)] = match path {
                "/token" => &[("grant_type", "client_credentials")],
                _ => &[("token", "lk_at_whatever")],
            };
            // In the form, with and without a secret; and with HTTP Basic, where the id is
            // form-urlencoded (RFC 6749 section 2.3.1): `%00`.
            let mut with_secret = form.to_vec();
            with_secret.extend([("client_id", nul.as_str()), ("client_secret", &secret)]);
            let mut public = form.to_vec();
            public.push(("client_id", nul.as_str()));
            for (how, req) in [
                ("form", http.post(app.url(path)).form(&with_secret)),
                ("public", http.post(app.url(path)).form(&public)),
                (
                    "basic",
                    http.post(app.url(path))
                        .basic_auth(format!("{}%00", c.client_id), Some(&secret))
                        .form(form),
                ),
            ] {
                let r = req.send().await.unwrap();
                let s = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert!(s == 400 || s == 401, "{path} {how}: {s} {v}");
                assert_eq!(v["error"], "invalid_client", "{path} {how}: {v}");
            }
        }
    }
);
