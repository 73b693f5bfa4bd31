//! The test kit: `TestApp` starts the real server in process on an ephemeral port, on a fresh
//! SQLite file or a fresh PostgreSQL database, and `Browser` walks the hosted pages the way a
//! browser without JavaScript does (cookies, forms, no automatic redirects).

use latchkey_core::SigningAlg;
use latchkey_core::names::{LabId, UserId};
use latchkey_server::app::AppState;
use latchkey_server::config::{Argon2Config, Config};
use latchkey_server::provision::{self, CreatedClient, NewClient};
use latchkey_server::{App, Server};
use std::sync::Arc;

mod flows;
pub mod smtp;
mod webauthn;
pub use flows::*;
pub use webauthn::*;

pub const PASSWORD: &str = "violet tractor sings at dawn";
pub const EMAIL: &str = "ada@lab.example";
pub const CALLBACK: &str = "http://127.0.0.1:9/cb";
pub const LOGOUT_CALLBACK: &str = "http://127.0.0.1:9/signed-out";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub state: Arc<AppState>,
    pub lab_id: String,
    pub user_id: String,
    /// The authenticator apps tests set up, by email: the key and the last TOTP time step
    /// used (Latchkey accepts each step once). See [`next_totp_code`].
    pub totp: std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>,
    server: Option<Server>,
    pg_db: Option<String>,
    _dir: tempfile::TempDir,
}

fn pg_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn pg_admin(sql: &str) {
    let (client, conn) = tokio_postgres::connect(&pg_base_url(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must be reachable at TEST_POSTGRES_URL (scripts/test starts it)");
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = task.await;
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, |_| {}).await
    }

    pub async fn with_config(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let base = format!("http://127.0.0.1:{port}");
        let mut config = Config {
            issuer: Some(base.clone()),
            data_dir: dir.path().to_owned(),
            workers: 2,
            // Small Argon2 parameters keep tests fast; the benchmark uses the defaults.
            argon2: Argon2Config {
                memory_kib: 1024,
                iterations: 1,
                ..Argon2Config::default()
            },
            ..Config::default()
        };
        let mut pg_db = None;
        if backend == Backend::Postgres {
            let name = format!("lk_test_{}", uuid::Uuid::new_v4().simple());
            pg_admin(&format!("CREATE DATABASE {name}")).await;
            let mut url = url::Url::parse(&pg_base_url()).expect("pg url");
            url.set_path(&name);
            config.database_url = Some(url.to_string());
            pg_db = Some(name);
        }
        tweak(&mut config);
        let app = App::load(config).await.expect("load app");
        let state = app.state();
        let server = app.start_on(listener).expect("start");
        let lab = provision::create_lab(&state.store, "Lab 42")
            .await
            .expect("lab");
        let user = provision::create_user(
            &state.store,
            &state.config,
            &state.hasher,
            &lab.id,
            EMAIL,
            Some("Ada Lovelace"),
            PASSWORD,
        )
        .await
        .expect("user");
        TestApp {
            base,
            state,
            lab_id: lab.id,
            user_id: user.id,
            totp: Default::default(),
            server: Some(server),
            pg_db,
            _dir: dir,
        }
    }

    /// Serves a database that already holds the test lab and user (a restored backup) on
    /// `port` with `config` as is: nothing is provisioned. `pg_db` is dropped by `stop`.
    pub async fn on_database(
        config: Config,
        port: u16,
        lab_id: &str,
        user_id: &str,
        pg_db: Option<String>,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let base = config.issuer();
        let app = App::load(config).await.expect("load app");
        let state = app.state();
        let server = app.start_on(listener).expect("start");
        TestApp {
            base,
            state,
            lab_id: lab_id.to_owned(),
            user_id: user_id.to_owned(),
            totp: Default::default(),
            server: Some(server),
            pg_db,
            _dir: dir,
        }
    }

    /// A new, empty PostgreSQL database (migrated on first open): its URL and name.
    pub async fn new_pg_database() -> (String, String) {
        let name = format!("lk_test_{}", uuid::Uuid::new_v4().simple());
        pg_admin(&format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&pg_base_url()).expect("pg url");
        url.set_path(&name);
        (url.to_string(), name)
    }

    pub async fn client(&self, f: impl FnOnce(&mut NewClient)) -> CreatedClient {
        let mut c = NewClient {
            name: "Invoice app".into(),
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec![LOGOUT_CALLBACK.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            public: false,
            access_token_ttl_secs: None,
            id_token_alg: SigningAlg::RS256,
            skip_consent: false,
            min_acr: None,
            admin_of: None,
            pkce_optional: false,
            require_par: false,
            require_dpop: false,
            backchannel_logout_uri: None,
            resource_uri: None,
            resources: vec![],
            jwks: None,
            jwks_uri: None,
            expires_at: None,
            labs: vec!["*".into()],
            features: vec![],
        };
        f(&mut c);
        provision::create_client(&self.state.store, c)
            .await
            .expect("client")
    }

    /// The test lab's id, typed as the store and the admin operations take it.
    pub fn lab(&self) -> LabId {
        LabId::new(&self.lab_id)
    }

    /// The test user's id, typed as the store and the admin operations take it.
    pub fn user(&self) -> UserId {
        UserId::new(&self.user_id)
    }

    /// Where `/metrics` is served without a token, when `metrics.bind` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().and_then(|s| s.metrics_addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("running").addr
    }

    /// The plain-HTTP redirect listener's address, when `tls.redirect_bind` is set.
    pub fn redirect_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().and_then(|s| s.redirect_addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        if let Some(db) = self.pg_db.take() {
            pg_admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
        }
    }
}

/// Serves the test app as `http://localhost:PORT` (requests still go to 127.0.0.1): WebAuthn
/// relying-party ids cannot be IP addresses, so passkey tests need a host name.
pub fn on_localhost(c: &mut latchkey_server::Config) {
    c.issuer = c.issuer.take().map(|i| i.replace("127.0.0.1", "localhost"));
}

/// Generates one test per backend from one body: `both!(name, async |app: &TestApp| { ... })`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        $crate::both_with!($name, |_| {}, $body);
    };
}

/// Like `both!`, with a configuration tweak: `both_with!(name, tweak_fn, async |app| { ... })`.
#[macro_export]
macro_rules! both_with {
    ($name:ident, $tweak:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app =
                    $crate::common::TestApp::with_config($crate::common::Backend::Sqlite, $tweak)
                        .await;
                let f = $body;
                f(&app).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app =
                    $crate::common::TestApp::with_config($crate::common::Backend::Postgres, $tweak)
                        .await;
                let f = $body;
                f(&app).await;
                app.stop().await;
            }
        }
    };
}

/// A cookie-keeping HTTP client that does not follow redirects.
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
}

pub fn html_input(html: &str, name: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("input[name=\"{name}\"]")).ok()?;
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .map(str::to_owned)
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser::with_user_agent(app, "")
    }

    /// A browser that sends `User-Agent: ua` (none when empty).
    pub fn with_user_agent(app: &TestApp, ua: &str) -> Browser {
        let mut b = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none());
        if !ua.is_empty() {
            b = b.user_agent(ua.to_owned());
        }
        Browser {
            http: b.build().expect("client"),
            base: app.base.clone(),
        }
    }

    /// A browser on a client of the test's own making (e.g. one trusting a test CA).
    pub fn over(app: &TestApp, http: reqwest::Client) -> Browser {
        Browser {
            http,
            base: app.base.clone(),
        }
    }

    fn abs(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(self.abs(url)).send().await.expect("GET")
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.abs(url))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// Starts at an authorization URL and follows the flow to the login form; returns the
    /// form page's (path, flow, csrf).
    pub async fn open_login(&self, authorize_url: &str) -> (String, String) {
        let r = self.get(authorize_url).await;
        assert_eq!(
            r.status(),
            303,
            "authorize should redirect to the login page"
        );
        let loc = location(&r);
        assert!(loc.starts_with("/login?flow="), "unexpected redirect {loc}");
        let page = self.get(&loc).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("body");
        (
            html_input(&html, "flow").expect("flow input"),
            html_input(&html, "csrf").expect("csrf input"),
        )
    }

    /// Submits the login form; returns the response (303 on success, 401 form on failure).
    pub async fn submit_login(
        &self,
        flow: &str,
        csrf: &str,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.post_form(
            "/login",
            &[
                ("flow", flow),
                ("csrf", csrf),
                ("username", email),
                ("password", password),
            ],
        )
        .await
    }

    /// Answers the consent page if shown; returns the final redirect to the client.
    pub async fn consent_if_asked(&self, r: reqwest::Response, decision: &str) -> String {
        let loc = location(&r);
        if !loc.starts_with("/consent?flow=") {
            return loc;
        }
        let page = self.get(&loc).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("body");
        let flow = html_input(&html, "flow").expect("flow");
        let csrf = html_input(&html, "csrf").expect("csrf");
        let r = self
            .post_form(
                "/consent",
                &[("flow", &flow), ("csrf", &csrf), ("decision", decision)],
            )
            .await;
        assert_eq!(r.status(), 303);
        location(&r)
    }

    /// The whole login: authorize → login form → consent (allowed) → redirect to the client.
    pub async fn login(&self, authorize_url: &str, email: &str, password: &str) -> url::Url {
        let (flow, csrf) = self.open_login(authorize_url).await;
        let r = self.submit_login(&flow, &csrf, email, password).await;
        assert_eq!(r.status(), 303, "login should succeed");
        let loc = self.consent_if_asked(r, "allow").await;
        url::Url::parse(&loc).expect("redirect to the client")
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
