//! Password guessing under load (issue 12): a legitimate user's complete logins from the
//! browser they signed in with before (a known device), first idle, then while `in_flight`
//! anonymous wrong-password requests are kept in flight from several source addresses
//! (`X-Forwarded-For` from the loopback proxy the server trusts), against the user's e-mail
//! and against e-mails that are no account. Records the user's login latency in both phases
//! and the attack's answers by status.

use crate::login::{self, Target, hidden_input, location};
use crate::stats::Latencies;
use anyhow::{Context, Result, anyhow, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, HeaderName, HeaderValue};
use reqwest::cookie::CookieStore;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Source addresses the attack comes from.
pub const SOURCES: usize = 8;
/// The legitimate user's address.
const USER_ADDRESS: &str = "192.0.2.10";

pub struct AttackRun {
    /// The known-device user's complete logins, idle.
    pub idle: Latencies,
    /// The same, while the attack runs.
    pub under_attack: Latencies,
    pub user_errors: u64,
    pub first_user_error: Option<String>,
    /// The attack's answers: status → latency of each.
    pub answers: BTreeMap<u16, Latencies>,
    pub attack_errors: u64,
}

/// Logins in browser `http` for `duration`.
async fn user_logins(
    http: &reqwest::Client,
    t: &Target,
    duration: Duration,
    lat: &mut Latencies,
) -> (u64, Option<String>) {
    let (mut errors, mut first) = (0, None);
    let started = Instant::now();
    while started.elapsed() < duration {
        let t0 = Instant::now();
        match login::login_in(http, t, &[("prompt", "login")], USER_ADDRESS).await {
            Ok(_) => lat.record(t0.elapsed()),
            Err(e) => {
                errors += 1;
                first.get_or_insert_with(|| format!("{e:#}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    (errors, first)
}

/// One attacker: a flow from its address, then wrong passwords on it until `stop`. The flow
/// is opened with reqwest (a cookie jar); the guesses go out on one keep-alive connection of
/// hyper's low-level client, as cheap to send as `load`'s requests: the attacker's CPU on
/// this machine is CPU the server under test does not get, which a real attacker, on other
/// machines, would not take.
async fn attacker(t: Target, i: usize, stop: Instant) -> Result<(BTreeMap<u16, Latencies>, u64)> {
    let source = format!("10.66.{}.1", i % SOURCES);
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let authorize = url::Url::parse_with_params(
        &format!("{}/authorize", t.base),
        &[
            ("response_type", "code"),
            ("client_id", t.client_id.as_str()),
            ("redirect_uri", login::REDIRECT_URI),
            ("scope", "openid"),
            ("state", "s"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    )?;
    let r = http
        .get(authorize)
        .header("x-forwarded-for", &source)
        .send()
        .await
        .context("attacker GET /authorize")?;
    let loc = location(&r);
    ensure!(
        loc.starts_with("/login?flow="),
        "attacker: no login page ({})",
        r.status()
    );
    let html = http
        .get(format!("{}{loc}", t.base))
        .header("x-forwarded-for", &source)
        .send()
        .await?
        .text()
        .await?;
    let flow = hidden_input(&html, "flow").ok_or_else(|| anyhow!("no flow"))?;
    let csrf = hidden_input(&html, "csrf").ok_or_else(|| anyhow!("no csrf"))?;
    let base = url::Url::parse(&t.base)?;
    let cookies = jar
        .cookies(&base)
        .ok_or_else(|| anyhow!("attacker: no browser cookie"))?;
    let addr = base
        .socket_addrs(|| None)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("attacker: no address for {base}"))?;
    let headers = [
        (HOST, HeaderValue::from_str(&addr.to_string())?),
        (COOKIE, cookies),
        (
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(&source)?,
        ),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        ),
    ];
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let form = format!(
        "flow={}&csrf={}&password=a+wrong+guess&username=",
        enc(&flow),
        enc(&csrf)
    );
    let real = enc(login::EMAIL);
    let mut sender = None;
    let mut answers: BTreeMap<u16, Latencies> = BTreeMap::new();
    let mut errors = 0;
    let mut n = 0u64;
    while Instant::now() < stop {
        n += 1;
        // Every other guess at the real account, the rest at e-mails that are no account.
        let body = if n.is_multiple_of(2) {
            format!("{form}{real}")
        } else {
            format!("{form}nobody-{i}-{n}%40lab.example")
        };
        let mut req = Request::post("/login").body(Full::new(Bytes::from(body)))?;
        req.headers_mut().extend(headers.iter().cloned());
        let t0 = Instant::now();
        let answer = async {
            // A connection the server closed is opened again (not counted as an error).
            let s = match sender.as_mut() {
                Some(s) => s,
                None => sender.insert(crate::load::connect(addr).await?),
            };
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status().as_u16();
            // The body is read: the answer is complete when it has arrived.
            resp.into_body().collect().await?;
            anyhow::Ok(status)
        }
        .await;
        match answer {
            Ok(status) => answers
                .entry(status)
                .or_insert(Latencies::new()?)
                .record(t0.elapsed()),
            Err(_) => {
                errors += 1;
                sender = None;
            }
        }
    }
    Ok((answers, errors))
}

pub async fn run(t: &Target, in_flight: usize, duration: Duration) -> Result<AttackRun> {
    // The user's browser signs in once: from then on it is a known device.
    let mine = login::browser()?;
    login::login_in(&mine, t, &[], USER_ADDRESS)
        .await
        .context("first login")?;
    let mut idle = Latencies::new()?;
    let (idle_errors, idle_first) = user_logins(&mine, t, duration, &mut idle).await;

    // The attack runs on a thread (and runtime) of its own, so the user's logins are timed
    // without waiting behind the attackers' tasks in this process. One second to get it
    // going, then the user's logins for `duration`.
    let stop = Instant::now() + duration + Duration::from_secs(1);
    let target = t.clone();
    let attack = std::thread::spawn(move || -> Result<(BTreeMap<u16, Latencies>, u64)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..in_flight {
                set.spawn(attacker(target.clone(), i, stop));
            }
            let mut answers: BTreeMap<u16, Latencies> = BTreeMap::new();
            let mut errors = 0;
            while let Some(joined) = set.join_next().await {
                let (a, e) = joined.context("attacker panicked")??;
                errors += e;
                for (status, lat) in a {
                    answers
                        .entry(status)
                        .or_insert(Latencies::new()?)
                        .add(&lat)?;
                }
            }
            Ok((answers, errors))
        })
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    if std::env::var_os("LATCHKEY_BENCH_STEPS").is_some() {
        eprintln!("steps: under attack from here");
    }
    let mut under_attack = Latencies::new()?;
    let (errors, first) = user_logins(&mine, t, duration, &mut under_attack).await;
    let (answers, attack_errors) = attack
        .join()
        .map_err(|_| anyhow!("the attack thread panicked"))??;
    Ok(AttackRun {
        idle,
        under_attack,
        user_errors: idle_errors + errors,
        first_user_error: idle_first.or(first),
        answers,
        attack_errors,
    })
}
