//! Throttling that slows guessing and never shuts the real user out (NIST SP 800-63B 5.2.2,
//! OWASP's device cookie): password budgets per source, account, account and source, and
//! known device; equal answers for known and unknown e-mails; the code lock and its absolute
//! limit; the trusted-proxy client address; the administrator's reset. Both databases.

use crate::common::*;
use latchkey_server::audit::Action;
use latchkey_server::config::Config;
use latchkey_server::protocol::throttle::CodeLock;
use latchkey_server::signin::throttle;
use std::time::{Duration, Instant};

/// Tests put the client's address in `X-Forwarded-For`, from the loopback proxy.
pub(crate) fn behind_loopback_proxy(c: &mut Config) {
    c.proxy.trusted = vec!["127.0.0.1/32".parse().unwrap()];
}

/// Submits the password form as if from `ip` (through the trusted loopback proxy).
pub(crate) async fn submit_from(
    app: &TestApp,
    b: &Browser,
    flow: &str,
    csrf: &str,
    email: &str,
    password: &str,
    ip: &str,
) -> reqwest::Response {
    b.http
        .post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .header("user-agent", "guesser/1.0")
        .form(&[
            ("flow", flow),
            ("csrf", csrf),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// A client that skips consent: its authorization URL, and the same with `prompt=login`
/// (the password asked again, whatever session the browser has).
pub(crate) async fn sign_in_urls(app: &TestApp) -> (String, String) {
    let c = app.client(|c| c.skip_consent = true).await;
    (
        authorize_url(app, &c.client_id, &[]),
        authorize_url(app, &c.client_id, &[("prompt", "login")]),
    )
}

/// A second member of the lab, Grace, with the same password; returns her e-mail.
async fn grace(app: &TestApp) -> &'static str {
    let email = "grace@lab.example";
    latchkey_server::provision::create_user(
        &app.state.store,
        &app.state.config,
        &app.state.hasher,
        &app.lab_id,
        email,
        None,
        PASSWORD,
    )
    .await
    .unwrap();
    email
}

fn retry_after(r: &reqwest::Response) -> Option<i64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub(crate) async fn actions(app: &TestApp) -> Vec<(String, String, serde_json::Value)> {
    let (chain, _) = app.state.store.audit_chain().await.unwrap();
    chain
        .into_iter()
        .map(|e| {
            (
                e.entry.action.clone(),
                e.entry.target.clone(),
                serde_json::from_str(&e.entry.details).unwrap(),
            )
        })
        .collect()
}

crate::both_with!(
    owasp_device_cookie_a_thousand_guesses_from_many_sources_sign_nobody_in_and_the_known_device_signs_in_at_once,
    behind_loopback_proxy,
    async |app: &TestApp| {
        let (url, again) = sign_in_urls(app).await;
        // The real user signed in from this browser before: it is a known device.
        let mine = Browser::new(app);
        mine.login(&url, EMAIL, PASSWORD).await;

        let attacker = Browser::new(app);
        let (flow, csrf) = attacker.open_login(&url).await;
        let (mut checked, mut throttled) = (0, 0);
        for i in 0..1000 {
            let ip = format!("10.{}.{}.{}", i / 250, i % 250, 7);
            let guess = format!("guess number {i} for the account");
            let r = submit_from(app, &attacker, &flow, &csrf, EMAIL, &guess, &ip).await;
            match r.status().as_u16() {
                401 => checked += 1,
                429 => {
                    assert!(retry_after(&r).is_some_and(|s| s > 0), "Retry-After");
                    throttled += 1;
                }
                s => panic!("guess {i}: unexpected {s}"),
            }
        }
        let limit = app.state.config.throttle.per_account;
        assert_eq!(checked, limit, "only the account's budget was checked");
        assert_eq!(throttled, 1000 - limit);

        // The known device signs in at once with the right password (its session aside).
        let (flow, csrf) = mine.open_login(&again).await;
        let r = mine.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 303, "the known device is not held back");

        // A browser the account has never seen waits, told why, with nothing checked.
        let stranger = Browser::new(app);
        let (flow, csrf) = stranger.open_login(&url).await;
        let r = submit_from(app, &stranger, &flow, &csrf, EMAIL, PASSWORD, "192.0.2.50").await;
        assert_eq!(r.status(), 429);
        let body = r.text().await.unwrap();
        assert!(body.contains("Too many sign-in attempts"), "{body}");
        assert!(body.contains("passkey"), "{body}");

        // One entry for the account's spent budget, naming the user, source and agent.
        let spent: Vec<_> = actions(app)
            .await
            .into_iter()
            .filter(|(a, _, d)| a == Action::LoginThrottled.as_str() && d["budget"] == "account")
            .collect();
        assert_eq!(spent.len(), 1, "{spent:?}");
        assert_eq!(spent[0].1, app.user_id);
        assert_eq!(spent[0].2["user_agent"], "guesser/1.0");
        assert!(spent[0].2["source"].as_str().unwrap().starts_with("10."));
    }
);

crate::both_with!(
    nist_800_63b_5_2_2_a_spent_budget_refuses_even_the_right_password_unchecked_from_that_source_only,
    behind_loopback_proxy,
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&url).await;
        let limit = app.state.config.throttle.per_account_source;
        for _ in 0..limit {
            let r = submit_from(app, &b, &flow, &csrf, EMAIL, "not the password", "198.51.100.1").await;
            assert_eq!(r.status(), 401);
        }
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "198.51.100.1").await;
        assert_eq!(r.status(), 429, "the right password is not checked either");
        let wait = retry_after(&r).unwrap();
        let window = app.state.config.throttle.window_secs;
        assert!(wait > window - 60 && wait <= window, "{wait}");
        // From another source, the account's budget still has room.
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "198.51.100.2").await;
        assert_eq!(r.status(), 303);
    }
);

crate::both_with!(
    known_and_unknown_emails_get_the_same_answers_throttled_or_not,
    behind_loopback_proxy,
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let limit = app.state.config.throttle.per_account_source;
        let mut answers = Vec::new();
        for (email, ip) in [
            (EMAIL, "203.0.113.1"),
            ("nobody@lab.example", "203.0.113.2"),
        ] {
            let b = Browser::new(app);
            let (flow, csrf) = b.open_login(&url).await;
            let mut seen = Vec::new();
            for _ in 0..limit + 3 {
                let r = submit_from(app, &b, &flow, &csrf, email, "not the password", ip).await;
                let status = r.status().as_u16();
                let ra = retry_after(&r);
                let body = r.text().await.unwrap();
                let message = html_error(&body);
                seen.push((status, ra.is_some(), message));
            }
            answers.push(seen);
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0][0].0, 401);
        assert_eq!(answers[0][limit as usize].0, 429);
    }
);

/// The error message a hosted page shows.
fn html_error(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(".error, [role=alert]").unwrap();
    doc.select(&sel)
        .map(|e| e.text().collect::<String>().trim().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The median of some durations, in microseconds.
fn median(mut d: Vec<Duration>) -> f64 {
    d.sort();
    d[d.len() / 2].as_secs_f64() * 1e6
}

crate::both_with!(
    known_and_unknown_emails_take_the_same_time_checked_or_throttled,
    |c: &mut Config| {
        behind_loopback_proxy(c);
        // The real cost of a password check, so a skipped one would show.
        c.argon2 = Default::default();
        c.throttle.per_account = 150;
        c.throttle.per_account_source = 1000;
        c.throttle.per_source = 100_000;
        c.throttle.global = 100_000;
    },
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&url).await;
        let other = "nobody@lab.example";
        // 150 attempts on each e-mail are checked (the account budget), the next 150 are
        // throttled; interleaved, so load on the machine weighs on both alike.
        for (run, status) in [("checked", 401), ("throttled", 429)] {
            let (mut known, mut unknown) = (Vec::new(), Vec::new());
            for i in 0..150 {
                for (email, out) in [(EMAIL, &mut known), (other, &mut unknown)] {
                    let ip = format!("10.9.{}.{}", i / 200, i % 200);
                    let t = Instant::now();
                    let r = submit_from(app, &b, &flow, &csrf, email, "wrong", &ip).await;
                    out.push(t.elapsed());
                    assert_eq!(r.status(), status, "{run} {email} {i}");
                }
            }
            let (k, u) = (median(known), median(unknown));
            // 20 %, and a millisecond of scheduling noise for the fast throttled answers.
            assert!(
                (k - u).abs() <= 0.2 * k.max(u) + 1000.0,
                "{run}: known {k:.0} µs, unknown {u:.0} µs"
            );
        }
    }
);

crate::both_with!(
    a_right_password_gives_its_attempt_back_to_every_budget_but_the_global_one,
    |c: &mut Config| {
        behind_loopback_proxy(c);
        c.throttle.per_account_source = 3;
        c.throttle.per_source = 3;
        c.throttle.global = 5;
    },
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let mut statuses = Vec::new();
        // New browsers each time: none is a known device yet.
        for _ in 0..6 {
            let b = Browser::new(app);
            let (flow, csrf) = b.open_login(&url).await;
            let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "198.51.100.9").await;
            statuses.push(r.status().as_u16());
        }
        // The account's and the address's budgets (3) never ran out: right passwords give
        // back, so a lab behind one address is not throttled by its own people. Everyone's
        // (5) did: an attacker with an account of their own cannot refill it by signing in
        // between guesses at others.
        assert_eq!(statuses, [303, 303, 303, 303, 303, 429]);
    }
);

crate::both_with!(
    forwarded_headers_from_a_peer_that_is_not_a_trusted_proxy_do_not_change_the_source,
    |c: &mut Config| c.throttle.per_source = 3,
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&url).await;
        let mut statuses = Vec::new();
        for i in 0..5 {
            let email = format!("someone{i}@lab.example");
            let ip = format!("192.0.2.{i}");
            let r = submit_from(app, &b, &flow, &csrf, &email, "wrong", &ip).await;
            statuses.push(r.status().as_u16());
        }
        assert_eq!(statuses, [401, 401, 401, 429, 429]);
        let events = actions(app).await;
        let failed = events
            .iter()
            .find(|(a, _, _)| a == Action::LoginFailed.as_str())
            .unwrap();
        assert_eq!(failed.2["source"], "127.0.0.1", "the peer, not the header");
    }
);

crate::both_with!(
    a_device_cookie_is_known_only_to_its_own_account_and_a_forged_one_to_none,
    behind_loopback_proxy,
    async |app: &TestApp| {
        let other = grace(app).await;
        let (url, again) = sign_in_urls(app).await;
        // This browser is a known device of Ada's account only.
        let b = Browser::new(app);
        b.login(&url, EMAIL, PASSWORD).await;
        // Grace's shared budget is spent by guesses from elsewhere.
        let g = Browser::new(app);
        let (flow, csrf) = g.open_login(&url).await;
        let limit = app.state.config.throttle.per_account;
        for i in 0..limit {
            let ip = format!("10.1.0.{i}");
            submit_from(app, &g, &flow, &csrf, other, "wrong", &ip).await;
        }
        let (flow, csrf) = b.open_login(&again).await;
        let r = submit_from(app, &b, &flow, &csrf, other, PASSWORD, "10.2.0.1").await;
        assert_eq!(
            r.status(),
            429,
            "Ada's device is a stranger to Grace's account"
        );
        // A forged cookie is no device at all.
        let account = latchkey_server::signin::device::account(&app.state, other);
        let forged = format!("d1.{}.AAAAAAAAAAAAAAAAAAAAAA", "ab".repeat(16));
        assert_eq!(
            latchkey_server::signin::device::check(&app.state, &forged, &account),
            None
        );
        let real = latchkey_server::signin::device::cookie_value(&app.state, &account, None);
        assert!(latchkey_server::signin::device::check(&app.state, &real, &account).is_some());
        let ada = latchkey_server::signin::device::account(&app.state, EMAIL);
        assert_eq!(
            latchkey_server::signin::device::check(&app.state, &real, &ada),
            None
        );
    }
);

crate::both_with!(
    parallel_guesses_from_one_address_never_pass_its_budget_or_spend_the_accounts,
    behind_loopback_proxy,
    async |app: &TestApp| {
        // 40 wrong passwords and the right one at once, from one address, in browsers the
        // account does not know.
        let client = app.client(|c| c.skip_consent = true).await;
        let url = authorize_url(app, &client.client_id, &[]);
        let mut ready = Vec::new();
        for i in 0..41 {
            let b = Browser::new(app);
            let (flow, csrf) = b.open_login(&url).await;
            let password = if i == 40 {
                PASSWORD.to_owned()
            } else {
                format!("wrong password number {i}")
            };
            ready.push((b, flow, csrf, password));
        }
        let login = app.url("/login");
        let mut tasks = Vec::new();
        for (b, flow, csrf, password) in ready {
            let login = login.clone();
            tasks.push(tokio::spawn(async move {
                b.http
                    .post(login)
                    .header("x-forwarded-for", "198.51.100.50")
                    .form(&[
                        ("flow", flow.as_str()),
                        ("csrf", csrf.as_str()),
                        ("username", EMAIL),
                        ("password", password.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let limit = app.state.config.throttle.per_account_source;
        // 401: checked; 429: a budget spent; 503: shed by the full hashing queue.
        assert!(
            answers[..40].iter().all(|s| [401, 429, 503].contains(s)),
            "{answers:?}"
        );
        let checked = answers[..40].iter().filter(|s| **s == 401).count() as i64;
        assert!(checked <= limit, "{checked} checked");
        assert!(
            [303, 429, 503].contains(&answers[40]),
            "the right password signs in or is told to wait, never that it is wrong: {}",
            answers[40]
        );
        // The account's shared budget took no more than the address's share.
        let account = latchkey_server::signin::device::account(&app.state, EMAIL);
        let key = latchkey_server::protocol::throttle::account_key(&account);
        let now = latchkey_server::store::now();
        let window = app.state.config.throttle.window_secs;
        let counters = app
            .state
            .store
            .throttle_counters(vec![key], now, window)
            .await
            .unwrap();
        assert!(counters.iter().all(|c| c.count <= limit), "{counters:?}");
        // So the real user, elsewhere, in a new browser, signs in.
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&url).await;
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "203.0.113.99").await;
        assert_eq!(r.status(), 303);
    }
);

crate::both_with!(
    one_browser_stays_known_to_each_account_that_signed_in_with_it,
    behind_loopback_proxy,
    async |app: &TestApp| {
        let other = grace(app).await;
        let (_, url) = sign_in_urls(app).await;
        // One browser, Ada then Grace (an administrator's two accounts, a shared computer).
        let b = Browser::new(app);
        for email in [EMAIL, other] {
            let (flow, csrf) = b.open_login(&url).await;
            let r = b.submit_login(&flow, &csrf, email, PASSWORD).await;
            assert_eq!(r.status(), 303);
        }
        // Ada's shared budget is spent by guesses from elsewhere.
        let g = Browser::new(app);
        let (flow, csrf) = g.open_login(&url).await;
        for i in 0..app.state.config.throttle.per_account {
            submit_from(
                app,
                &g,
                &flow,
                &csrf,
                EMAIL,
                "wrong",
                &format!("10.5.0.{i}"),
            )
            .await;
        }
        let (flow, csrf) = b.open_login(&url).await;
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "10.6.0.1").await;
        assert_eq!(r.status(), 303, "still a known device of Ada's account");
    }
);

crate::both_with!(
    nist_800_63b_5_2_2_codes_are_refused_after_max_code_failures_until_an_administrator_resets,
    |c: &mut Config| c.authentication.max_code_failures = 7,
    async |app: &TestApp| {
        let user = app.user_id.clone();
        let who = requester("192.0.2.1");
        let now = 1_900_000_000;
        let mut last = None;
        for _ in 0..7 {
            last = throttle::code_fail(&app.state, &user, &who, now)
                .await
                .unwrap();
        }
        assert_eq!(last, Some(CodeLock::Blocked));
        // A year later, still refused.
        let later = now + 300 * 86_400;
        assert_eq!(
            throttle::code_standing(&app.state, &user, later)
                .await
                .unwrap(),
            Some(CodeLock::Blocked)
        );
        assert!(CodeLock::Blocked.message().contains("administrator"));
        let blocked = actions(app)
            .await
            .into_iter()
            .filter(|(a, _, d)| a == Action::FactorLocked.as_str() && d["blocked"] == true)
            .count();
        assert_eq!(blocked, 1);
        // A system administrator resets the user's attempts through the admin API.
        let token = client_token(app, "*").await;
        let (s, body) = call(
            app,
            Some(&token),
            reqwest::Method::POST,
            &format!("/api/v1/users/{user}/reset-attempts"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["count"], 1);
        assert_eq!(
            throttle::code_standing(&app.state, &user, later)
                .await
                .unwrap(),
            None
        );
        let reset = actions(app)
            .await
            .into_iter()
            .find(|(a, _, _)| a == Action::UserResetAttempts.as_str())
            .unwrap();
        assert_eq!(reset.1, user);
        assert_eq!(reset.2["cleared"], 1);
    }
);

crate::both_with!(
    an_administrators_reset_lets_the_user_try_their_password_again_at_once,
    behind_loopback_proxy,
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&url).await;
        let limit = app.state.config.throttle.per_account;
        for i in 0..limit {
            submit_from(
                app,
                &b,
                &flow,
                &csrf,
                EMAIL,
                "wrong",
                &format!("10.3.0.{i}"),
            )
            .await;
        }
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "10.4.0.1").await;
        assert_eq!(r.status(), 429);
        // Only the account's budgets go; the sources' and the global one stay.
        let token = client_token(app, "*").await;
        let (s, body) = call(
            app,
            Some(&token),
            reqwest::Method::POST,
            &format!("/api/v1/users/{}/reset-attempts", app.user_id),
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
        assert!(body["count"].as_i64().unwrap() > limit, "{body}");
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "10.4.0.1").await;
        assert_eq!(r.status(), 303);
    }
);

crate::both_with!(
    under_load_anonymous_password_checks_are_shed_and_a_known_device_is_served,
    |c: &mut Config| {
        behind_loopback_proxy(c);
        c.argon2 = latchkey_server::config::Argon2Config {
            max_concurrent: 1,
            anonymous_queue: 1,
            ..Default::default()
        };
        c.throttle.per_account = 1000;
        c.throttle.per_account_source = 1000;
        c.throttle.per_source = 1000;
    },
    async |app: &TestApp| {
        let (url, again) = sign_in_urls(app).await;
        let mine = Browser::new(app);
        mine.login(&url, EMAIL, PASSWORD).await;
        let (my_flow, my_csrf) = mine.open_login(&again).await;
        // A flood of guesses from browsers the account does not know, all at once.
        let mut flows = Vec::new();
        for _ in 0..24 {
            let b = Browser::new(app);
            let (flow, csrf) = b.open_login(&url).await;
            flows.push((b, flow, csrf));
        }
        let base = app.base.clone();
        let mut tasks = Vec::new();
        for (i, (b, flow, csrf)) in flows.into_iter().enumerate() {
            let login = format!("{base}/login");
            tasks.push(tokio::spawn(async move {
                let r = b
                    .http
                    .post(login)
                    .header("x-forwarded-for", format!("10.7.0.{i}"))
                    .form(&[
                        ("flow", flow.as_str()),
                        ("csrf", csrf.as_str()),
                        ("username", EMAIL),
                        ("password", "a guess"),
                    ])
                    .send()
                    .await
                    .unwrap();
                let ra = r.headers().get("retry-after").is_some();
                (r.status().as_u16(), ra)
            }));
        }
        // The known device, in the middle of the flood.
        let r = submit_from(app, &mine, &my_flow, &my_csrf, EMAIL, PASSWORD, "10.8.0.1").await;
        assert_eq!(r.status(), 303, "a known device is queued, not shed");
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        assert!(
            answers.iter().all(|(s, _)| *s == 401 || *s == 503),
            "{answers:?}"
        );
        let shed: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
        assert!(
            !shed.is_empty(),
            "some anonymous checks were shed: {answers:?}"
        );
        assert!(shed.iter().all(|(_, ra)| *ra), "with Retry-After");
        // A hash leaves the queue just after its answer is sent: give it a moment.
        for _ in 0..50 {
            if app.state.hasher.depth() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(app.state.hasher.depth(), 0, "the queue drains");
    }
);

crate::both_with!(
    anonymous_requests_cannot_fill_the_database_with_login_flows,
    |c: &mut Config| {
        behind_loopback_proxy(c);
        c.throttle.flows_per_source = 5;
    },
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let url = authorize_url(app, &c.client_id, &[]);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let get = async |ip: &str| {
            http.get(&url)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap()
        };
        for _ in 0..5 {
            assert_eq!(get("203.0.113.77").await.status(), 303);
        }
        let r = get("203.0.113.77").await;
        assert_eq!(r.status(), 429);
        assert!(retry_after(&r).is_some_and(|s| s > 0));
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Too many sign-ins started")
        );
        // The account pages start flows too, under the same budget.
        let r = http
            .get(app.url("/account"))
            .header("x-forwarded-for", "203.0.113.77")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        // Another address is not concerned.
        assert_eq!(get("203.0.113.78").await.status(), 303);
    }
);

crate::both_with!(
    a_budget_seen_spent_refuses_the_next_attempts_from_memory_for_known_and_unknown_emails_alike,
    behind_loopback_proxy,
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&url).await;
        let limit = app.state.config.throttle.per_account_source;
        for email in [EMAIL, "nobody@lab.example"] {
            for _ in 0..limit {
                let r = submit_from(app, &b, &flow, &csrf, email, "wrong", "198.51.100.9").await;
                assert_eq!(r.status(), 401);
            }
            // The attempt that finds the budget spent reads it; the node remembers it.
            let r = submit_from(app, &b, &flow, &csrf, email, "wrong", "198.51.100.9").await;
            assert_eq!(r.status(), 429);
        }
        // Now refused before the sign-in page is even read (its flow is gone from the
        // database), with the same answer for an account and an e-mail that is none.
        tamper(app, "DELETE FROM login_flows").await;
        let mut pages = Vec::new();
        for email in [EMAIL, "nobody@lab.example"] {
            let r = submit_from(app, &b, &flow, &csrf, email, "x", "198.51.100.9").await;
            assert_eq!(r.status(), 429, "{email}");
            assert!(retry_after(&r).unwrap() > 0);
            pages.push(r.text().await.unwrap());
        }
        assert_eq!(pages[0], pages[1]);
        assert!(
            pages[0].contains("Too many sign-in attempts"),
            "{}",
            pages[0]
        );
        // Another address has room, so its attempt is read as usual (and finds no flow).
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, "x", "198.51.100.10").await;
        assert_eq!(r.status(), 400);
        // A form without this browser's CSRF token is never answered from memory.
        let r = submit_from(app, &b, &flow, "forged", EMAIL, "x", "198.51.100.9").await;
        assert_eq!(r.status(), 400);
    }
);

crate::both_with!(
    a_right_password_that_used_a_budget_up_leaves_it_open_for_the_next_sign_in,
    |c: &mut Config| {
        behind_loopback_proxy(c);
        c.throttle.per_account_source = 3;
    },
    async |app: &TestApp| {
        let (url, _) = sign_in_urls(app).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&url).await;
        for _ in 0..2 {
            let r = submit_from(app, &b, &flow, &csrf, EMAIL, "typo", "198.51.100.9").await;
            assert_eq!(r.status(), 401);
        }
        // The third attempt fills the budget and is right: it gives its attempt back, and the
        // node does not remember the budget as spent.
        let r = submit_from(app, &b, &flow, &csrf, EMAIL, PASSWORD, "198.51.100.9").await;
        assert_eq!(r.status(), 303);
        let other = Browser::new(app);
        let (flow, csrf) = other.open_login(&url).await;
        let r = submit_from(app, &other, &flow, &csrf, EMAIL, PASSWORD, "198.51.100.9").await;
        assert_eq!(r.status(), 303, "the budget has room again");
    }
);
