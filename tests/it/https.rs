//! HTTPS served by Latchkey itself (`[tls]`): a relying party signs a user in over TLS,
//! every HTTPS response carries `Strict-Transport-Security`, old protocol versions are
//! refused, a certificate swapped on disk is served without a restart (and a broken one is
//! not), and the plain-HTTP listener only redirects to the issuer.

use crate::common::*;
use crate::oidc_flow::LkProviderMetadata;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, TokenResponse,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A test certificate authority and the server certificates it signs for `localhost`.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Latchkey test CA");
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A fresh certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM, DER).
    fn leaf(&self) -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()
    }
}

/// Writes `contents` to `path` the way deployment tools do: a new file renamed over the old.
fn replace_file(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Certificate files in a fresh directory, and the config tweak that serves them on
/// `https://localhost:PORT`.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(cert: &str, key: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        Files { dir }
    }
    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    fn tweak(&self) -> impl FnOnce(&mut latchkey_server::Config) + use<> {
        let (cert, key) = (self.cert(), self.key());
        move |c| {
            on_localhost(c);
            c.issuer = c.issuer.take().map(|i| i.replace("http://", "https://"));
            c.tls.cert_file = Some(cert);
            c.tls.key_file = Some(key);
            c.tls.reload_secs = 1;
        }
    }
}

/// An HTTPS client trusting `ca` that reaches `localhost` at the test server's address.
fn https_client(app: &TestApp, ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(ca.root())
        .resolve("localhost", app.addr())
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
        .build()
        .unwrap()
}

/// The certificate a new client is served: a new client, because a client that connected
/// before resumes its TLS session and keeps the certificate it saw then.
async fn served_certificate(app: &TestApp, ca: &TestCa) -> Result<Vec<u8>, String> {
    let r = https_client(app, ca)
        .get(app.url("/health"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let info = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .ok_or("no TLS info")?;
    Ok(info.peer_certificate().ok_or("no certificate")?.to_vec())
}

async fn https_app(ca: &TestCa) -> (TestApp, Files, Vec<u8>) {
    let (cert, key, der) = ca.leaf();
    let files = Files::new(&cert, &key);
    let mut app = TestApp::with_config(Backend::Sqlite, files.tweak()).await;
    app.base = app.state.issuer.clone();
    (app, files, der)
}

const HSTS: &str = "max-age=31536000";

/// A relying party (the `openidconnect` crate) discovers, signs a user in and exchanges the
/// code over HTTPS; every response on the way, pages, JSON, errors and 404s alike, carries
/// `Strict-Transport-Security`, and the session cookies are `Secure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_whole_sign_in_with_hsts_on_every_response() {
    let ca = TestCa::new();
    let (app, _files, _) = https_app(&ca).await;
    assert!(app.base.starts_with("https://localhost:"), "{}", app.base);
    let created = app.client(|_| {}).await;
    let http = https_client(&app, &ca);

    let meta = LkProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
        .await
        .expect("discovery over HTTPS");
    assert!(
        meta.token_endpoint()
            .unwrap()
            .as_str()
            .starts_with("https://")
    );
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(created.client_id.clone()),
        created.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::over(&app, https_client_with_cookies(&app, &ca));
    let r = browser.get(auth_url.as_str()).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["strict-transport-security"], HSTS);
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert!(!cookies.is_empty());
    for c in cookies {
        assert!(c.to_str().unwrap().contains("Secure"), "{c:?}");
    }
    let back = browser.login(auth_url.as_str(), EMAIL, PASSWORD).await;
    let code = query_param(&back, "code").expect("code");
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange over HTTPS");
    let claims = token
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), app.user_id);
    assert_eq!(claims.issuer().as_str(), app.base);

    let post = |path: &'static str| http.post(app.url(path)).form(&[("grant_type", "nope")]);
    for (what, r) in [
        ("health", http.get(app.url("/health")).send().await.unwrap()),
        (
            "jwks",
            http.get(app.url("/jwks.json")).send().await.unwrap(),
        ),
        (
            "404",
            http.get(app.url("/nothing-here")).send().await.unwrap(),
        ),
        ("oauth error", post("/token").send().await.unwrap()),
        ("login page", browser.get("/login").await),
    ] {
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some(HSTS),
            "{what} ({})",
            r.status()
        );
    }
    app.stop().await;
}

/// A cookie-keeping HTTPS client for [`Browser::over`].
fn https_client_with_cookies(app: &TestApp, ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(ca.root())
        .resolve("localhost", app.addr())
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// TLS 1.3 and 1.2 are served; anything older is refused in the handshake (RFC 8996, NIST
/// SP 800-52r2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_below_1_2_is_refused() {
    let ca = TestCa::new();
    let (app, _files, _) = https_app(&ca).await;
    for (min, max) in [
        (
            reqwest::tls::Version::TLS_1_3,
            reqwest::tls::Version::TLS_1_3,
        ),
        (
            reqwest::tls::Version::TLS_1_2,
            reqwest::tls::Version::TLS_1_2,
        ),
    ] {
        let http = reqwest::Client::builder()
            .add_root_certificate(ca.root())
            .resolve("localhost", app.addr())
            .min_tls_version(min)
            .max_tls_version(max)
            .build()
            .unwrap();
        let r = http.get(app.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{max:?}");
    }
    // rustls cannot even offer TLS 1.1; OpenSSL can, when told to allow it.
    let port = app.addr().port();
    for version in ["-tls1_1", "-tls1"] {
        let out = tokio::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                "localhost",
                version,
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("openssl (Debian package `openssl`)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{version} was accepted");
        // "SSL alert number N": the server answered the ClientHello with an alert (rustls
        // sends handshake_failure when no version is shared); the client did offer it.
        assert!(
            err.contains("SSL alert number"),
            "{version}: the server must refuse it with an alert, not the client: {err}"
        );
    }
    app.stop().await;
}

/// A renewed certificate written over the files while clients keep connecting is served to
/// new connections within `tls.reload_secs`, with no failed request and no restart. A pair
/// that does not load (a key of another certificate, garbage) is not served: the previous
/// certificate stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let ca = TestCa::new();
    let (app, files, first) = https_app(&ca).await;
    assert_eq!(served_certificate(&app, &ca).await.unwrap(), first);
    let app = std::sync::Arc::new(app);
    let ca = std::sync::Arc::new(ca);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (app, ca, stop) = (app.clone(), ca.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match served_certificate(&app, &ca).await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e),
                }
            }
            (ok, failed)
        })
    };

    let wait_for = async |want: &[u8]| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if served_certificate(&app, &ca).await.unwrap() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the new certificate was not served"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    // Renewal, key first: for a moment the key does not fit the certificate on disk.
    let (cert, key, second) = ca.leaf();
    replace_file(&files.key(), &key);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        served_certificate(&app, &ca).await.unwrap(),
        first,
        "a key that does not fit the certificate is not served"
    );
    replace_file(&files.cert(), &cert);
    wait_for(&second).await;

    // A broken certificate file: still the second one.
    replace_file(&files.cert(), "-----BEGIN CERTIFICATE-----\nnot base64\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(served_certificate(&app, &ca).await.unwrap(), second);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(
        failed.is_empty(),
        "requests failed during the swaps: {failed:?}"
    );
    assert!(ok > 10, "the clients kept connecting ({ok} requests)");
    let Ok(app) = std::sync::Arc::try_unwrap(app) else {
        panic!("the load task still holds the app")
    };
    app.stop().await;
}

/// `tls.redirect_bind` answers every plain-HTTP request with a permanent redirect to the
/// same path and query on the issuer; the `Host` header cannot point it elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_http_listener_only_redirects_to_the_https_issuer() {
    let ca = TestCa::new();
    let (cert, key, _) = ca.leaf();
    let files = Files::new(&cert, &key);
    let tweak = files.tweak();
    let mut app = TestApp::with_config(Backend::Sqlite, |c| {
        tweak(c);
        c.tls.redirect_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    app.base = app.state.issuer.clone();
    let redirect = app.redirect_addr().expect("redirect listener");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, host) in [
        ("/authorize?client_id=a&state=x%20y", "localhost"),
        ("/", "evil.example"),
        ("//evil.example/login", "evil.example"),
        ("/token", "localhost"),
    ] {
        let r = http
            .get(format!("http://{redirect}{path}"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 308, "{path}");
        assert_eq!(location(&r), format!("{}{path}", app.base), "{path}");
        assert!(r.headers().get("strict-transport-security").is_none());
    }
    let r = http
        .post(format!("http://{redirect}/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        308,
        "a POST is redirected too (308 keeps the method)"
    );
    app.stop().await;
}

/// Plain HTTP gets no `Strict-Transport-Security` (browsers ignore it there), unless a
/// trusted proxy says the client used HTTPS; an untrusted peer saying so is not believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_goes_only_to_clients_that_used_https() {
    let plain = TestApp::new(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    let r = http
        .get(plain.url("/health"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "an untrusted peer cannot ask for HSTS"
    );
    plain.stop().await;

    let proxied = TestApp::with_config(Backend::Sqlite, |c| {
        c.proxy.trusted = vec!["127.0.0.1/32".parse().unwrap()];
        c.tls.hsts_include_subdomains = true;
    })
    .await;
    for (proto, hsts) in [
        (Some("https"), Some("max-age=31536000; includeSubDomains")),
        (Some("http"), None),
        (None, None),
    ] {
        let mut req = http.get(proxied.url("/health"));
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let r = req.send().await.unwrap();
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            hsts,
            "{proto:?}"
        );
    }
    proxied.stop().await;

    let ca = TestCa::new();
    let (cert, key, _) = ca.leaf();
    let files = Files::new(&cert, &key);
    let tweak = files.tweak();
    let mut off = TestApp::with_config(Backend::Sqlite, |c| {
        tweak(c);
        c.tls.hsts_max_age_secs = 0;
    })
    .await;
    off.base = off.state.issuer.clone();
    let r = https_client(&off, &ca)
        .get(off.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("strict-transport-security").is_none());
    off.stop().await;
}

/// A certificate that cannot be served stops the start (`App::load` loads it before the
/// database) with a message naming the file and what is wrong with it: missing, not a
/// certificate, a key of another certificate, expired, not yet valid, not a regular file (a
/// FIFO would hang the reader), or too large.
#[test]
fn a_certificate_that_cannot_be_served_is_refused_with_a_clear_error() {
    let ca = TestCa::new();
    let (cert, _, _) = ca.leaf();
    let (_, other_key, _) = ca.leaf();
    let files = Files::new(&cert, &other_key);
    let dir = files.dir.path();
    let dated = |from: i64, to: i64, name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let day = 86_400;
        let real_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let at = |offset_days: i64| {
            rcgen::date_time_ymd(1970, 1, 1)
                + std::time::Duration::from_secs((real_now + offset_days * day) as u64)
        };
        params.not_before = at(from);
        params.not_after = at(to);
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        )
    };
    let expired = dated(-30, -1, "expired");
    let future = dated(2, 30, "future");
    let fifo = dir.join("fifo.pem");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let huge = dir.join("huge.pem");
    std::fs::write(&huge, format!("{cert}{}", "\n".repeat(2 << 20))).unwrap();
    for ((cert_file, key_file), want) in [
        (
            (dir.join("missing.pem"), files.key()),
            "cannot read tls.cert_file",
        ),
        ((files.cert(), files.key()), "does not fit tls.cert_file"),
        ((files.key(), files.key()), "holds no certificate"),
        (expired, "expired on"),
        (future, "not valid before"),
        ((fifo, files.key()), "is not a regular file"),
        ((huge, files.key()), "bytes"),
    ] {
        let config = latchkey_server::config::TlsConfig {
            cert_file: Some(cert_file.clone()),
            key_file: Some(key_file),
            ..Default::default()
        };
        let err = match latchkey_server::tls::Certificates::load(&config, "https://localhost:8443")
        {
            Ok(_) => panic!("{} was accepted", cert_file.display()),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(want), "{err}");
    }
}
