//! Complete password logins, the way a browser without JavaScript does them: a fresh cookie
//! jar, `/authorize` with PKCE, the login page, the form post, then the client's code
//! exchange at `/token`.

use crate::stats::Latencies;
use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use std::time::{Duration, Instant};

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
pub const EMAIL: &str = "bench@lab.example";
pub const PASSWORD: &str = "violet tractor sings at dawn";

/// Where to log in, and as which client.
#[derive(Clone)]
pub struct Target {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
}

/// What a run of login workers produced.
pub struct LoginRun {
    pub logins: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Latencies,
    pub tokens: Vec<Tokens>,
}

/// What a login's code exchange issued.
#[derive(Clone)]
pub struct Tokens {
    pub refresh: String,
    pub access: String,
}

impl LoginRun {
    pub fn per_sec(&self) -> f64 {
        self.logins as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// When a run of logins ends.
#[derive(Clone, Copy)]
pub enum Until {
    /// Start no new login after this long.
    Elapsed(Duration),
    /// Stop once this many logins succeeded in all.
    Count(usize),
}

/// `workers` concurrent loops of complete logins.
pub async fn run(target: &Target, workers: usize, until: Until) -> Result<LoginRun> {
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let target = target.clone();
        let done = done.clone();
        set.spawn(async move {
            let mut run = LoginRun {
                logins: 0,
                errors: 0,
                first_error: None,
                elapsed: Duration::ZERO,
                latencies: Latencies::new()?,
                tokens: Vec::new(),
            };
            loop {
                let go_on = match until {
                    Until::Elapsed(d) => started.elapsed() < d,
                    Until::Count(n) => done.load(std::sync::atomic::Ordering::Relaxed) < n,
                };
                if !go_on {
                    break;
                }
                let t0 = Instant::now();
                match login_once(&target).await {
                    Ok(tokens) => {
                        run.latencies.record(t0.elapsed());
                        run.logins += 1;
                        run.tokens.push(tokens);
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        run.errors += 1;
                        if run.first_error.is_none() {
                            run.first_error = Some(format!("{e:#}"));
                        }
                        if run.errors > 100 && run.logins == 0 {
                            return Err(e.context("every login fails"));
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            anyhow::Ok(run)
        });
    }
    let mut total = LoginRun {
        logins: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Latencies::new()?,
        tokens: Vec::new(),
    };
    while let Some(joined) = set.join_next().await {
        let run = joined.context("login worker panicked")??;
        total.logins += run.logins;
        total.errors += run.errors;
        total.first_error = total.first_error.or(run.first_error);
        total.latencies.add(&run.latencies)?;
        total.tokens.extend(run.tokens);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// A browser: a cookie jar that does not follow redirects.
pub fn browser() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// One complete login in a new browser (new cookie jar, new connection) from a random
/// address (the server trusts the loopback proxy: as many people signing in); returns the
/// tokens the code exchange issued.
pub async fn login_once(t: &Target) -> Result<Tokens> {
    let b = random_bytes(3)?;
    let from = format!("10.{}.{}.{}", b[0], b[1], b[2]);
    login_in(&browser()?, t, &[], &from).await
}

/// One complete login in browser `http` (its cookies: a known device after its first
/// login), with `extra` authorization parameters (`prompt=login` to sign in again), from
/// address `from` (`X-Forwarded-For` through the trusted loopback proxy).
pub async fn login_in(
    http: &reqwest::Client,
    t: &Target,
    extra: &[(&str, &str)],
    from: &str,
) -> Result<Tokens> {
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes(32)?);
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", t.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email profile"),
        ("state", "s"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let authorize = url::Url::parse_with_params(&format!("{}/authorize", t.base), &params)?;
    let trace = std::env::var_os("LATCHKEY_BENCH_STEPS").is_some();
    let t0 = Instant::now();
    let mut steps = Vec::new();

    let r = http
        .get(authorize)
        .header("x-forwarded-for", from)
        .send()
        .await
        .context("GET /authorize")?;
    steps.push(t0.elapsed());
    let loc = location(&r);
    ensure!(
        r.status() == 303 && loc.starts_with("/login?flow="),
        "GET /authorize: expected 303 to /login?flow=, got {} to {loc:?}",
        r.status()
    );

    let r = http
        .get(format!("{}{loc}", t.base))
        .header("x-forwarded-for", from)
        .send()
        .await
        .context("GET /login")?;
    ensure!(
        r.status() == 200,
        "GET /login: expected 200, got {}",
        r.status()
    );
    let html = r.text().await?;
    steps.push(t0.elapsed());
    let flow = hidden_input(&html, "flow").ok_or_else(|| anyhow!("login page has no flow"))?;
    let csrf = hidden_input(&html, "csrf").ok_or_else(|| anyhow!("login page has no csrf"))?;

    let r = http
        .post(format!("{}/login", t.base))
        .header("x-forwarded-for", from)
        .form(&[
            ("flow", flow.as_str()),
            ("csrf", csrf.as_str()),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .context("POST /login")?;
    let loc = location(&r);
    ensure!(
        r.status() == 303 && loc.starts_with(&format!("{REDIRECT_URI}?")),
        "POST /login: expected 303 to the redirect URI, got {} to {loc:?}",
        r.status()
    );
    let back = url::Url::parse(&loc)?;
    steps.push(t0.elapsed());
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let code = param("code").ok_or_else(|| anyhow!("redirect without a code: {loc}"))?;
    ensure!(param("state").as_deref() == Some("s"), "state not returned");

    let r = http
        .post(format!("{}/token", t.base))
        .basic_auth(&t.client_id, Some(&t.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .context("POST /token")?;
    let status = r.status();
    let body = r.bytes().await?;
    steps.push(t0.elapsed());
    if status != 200 {
        bail!(
            "POST /token (authorization_code): {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    if trace {
        let ms: Vec<String> = steps
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .collect();
        eprintln!("steps {}", ms.join(" "));
    }
    let json: serde_json::Value = serde_json::from_slice(&body)?;
    ensure!(
        json.get("id_token").and_then(|v| v.as_str()).is_some(),
        "token response without an id_token"
    );
    let field = |k: &str| {
        json.get(k)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("token response without a {k}"))
    };
    Ok(Tokens {
        refresh: field("refresh_token")?,
        access: field("access_token")?,
    })
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| anyhow!("no randomness from the OS"))?;
    Ok(buf)
}

/// The value of `<input … name="NAME" … value="…">` in a page we rendered ourselves.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let len = tag[v..].find('"')?;
    Some(unescape(&tag[v..v + len]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hidden_inputs() {
        let html = r#"<form><input type="hidden" name="flow" value="abc_-1">
            <input type="hidden" name="csrf" value="x&amp;y"></form>"#;
        assert_eq!(hidden_input(html, "flow").as_deref(), Some("abc_-1"));
        assert_eq!(hidden_input(html, "csrf").as_deref(), Some("x&y"));
        assert_eq!(hidden_input(html, "nope"), None);
    }
}
